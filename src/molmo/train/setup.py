"""Building what a run trains: the model (from a preset or a checkpoint), its tokenizer and pre-processor,
dropout settings, and the parallel wrapping (FSDP2 `fully_shard` on ViT and LLM blocks with a bf16/fp32
`MixedPrecisionPolicy`, activation checkpointing, FlexAttention, torch.compile).

With several ranks and an `init` checkpoint the model is built on the meta device, sharded, and each rank
then reads only the rows of its own shards from the checkpoint (`load_sharded`), so no rank ever holds the
full model. From-scratch runs still initialise the full model on every rank before sharding.

    model, processor, tokenizer_dir = build_model_and_processor(cfg)
    model = shard_model(model, cfg, world_size, device)
    load_sharded(model, checkpoint_dir, device)   # a model built with on_meta=True
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn

from molmo.checkpoint.hub import HubError, resolve_model
from molmo.checkpoint.io import build_on_meta, load_molmo, load_plan, materialize, read_config
from molmo.checkpoint.streaming import stream_into
from molmo.model.config import MolmoConfig, preset
from molmo.model.init import image_token_scale, init_weights
from molmo.model.molmo import MolmoModel
from molmo.preprocess.config import PreprocessorConfig
from molmo.preprocess.processor import MolmoProcessor
from molmo.text.tokenizer import MolmoTokenizer, train_bpe_tokenizer
from molmo.train.config import Attention, ConfigError, DataSource, TrainConfig

TOKENIZER_SAMPLE = 300  # examples per source whose formatted text trains a from-scratch tokenizer


def preprocessor_for(cfg: TrainConfig, model: MolmoModel, checkpoint: Path | None) -> PreprocessorConfig:
    # The exported preprocessor_config.json states the crop budget training used, so inference defaults to it.
    overrides = {"max_crops": cfg.data.max_crops,
                 **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.preprocessor.items()}}
    if checkpoint is not None and (checkpoint / "preprocessor_config.json").exists():
        base = PreprocessorConfig.from_json(checkpoint / "preprocessor_config.json")
    elif checkpoint is not None:
        base = PreprocessorConfig.released()
    else:  # from scratch: crops and patches follow the model's ViT
        v = model.config.vision
        overrides = {"base_image_input_size": tuple(v.image_size), "patch_size": v.patch_size, **overrides}
        base = PreprocessorConfig.released()
    try:
        return base.replace(**overrides)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"preprocessor settings {overrides}: {e}") from None


def _tokenizer(cfg: TrainConfig, checkpoint: Path | None) -> tuple[MolmoTokenizer, Path]:
    source = Path(cfg.tokenizer) if cfg.tokenizer else checkpoint
    if source is not None:
        if not (source / "tokenizer.json").exists():
            raise ConfigError(f"no tokenizer.json in {source} (set --tokenizer=DIR)")
        return MolmoTokenizer.from_dir(source), source
    return _train_tokenizer(cfg), Path(cfg.out_dir)


def trains_tokenizer(cfg: TrainConfig) -> bool:
    """Whether the run trains its own tokenizer (a from-scratch model with none given and none saved yet)."""
    return not cfg.tokenizer and not cfg.init and not (Path(cfg.out_dir) / "tokenizer.json").exists()


def tokenizer_sources(cfg: TrainConfig) -> Iterator[DataSource]:
    """The sources whose first TOKENIZER_SAMPLE items a from-scratch tokenizer is trained on."""
    return itertools.chain(cfg.data.sources, cfg.data.tokenizer_sources)


def _train_tokenizer(cfg: TrainConfig) -> MolmoTokenizer:
    """A from-scratch model gets a BPE tokenizer trained on the formatted text of its own training data
    (rank 0 trains and saves it; other ranks wait and read it)."""
    out = Path(cfg.out_dir)
    path = out / "tokenizer.json"
    rank = dist.get_rank() if dist.is_initialized() else 0
    if rank == 0 and not path.exists():
        from molmo.data.formatter import Formatter
        from molmo.data.generators.cache import GeneratedCache
        from molmo.train.batches import open_source
        texts = []
        cache = GeneratedCache.at(cfg.data.generated_cache)
        for src in tokenizer_sources(cfg):
            items = open_source(src, cfg.data.root, cache)
            formatters = [Formatter(stage=stage, seed=cfg.data.seed) for stage in ("pretrain", "sft")]
            for i in range(min(len(items), TOKENIZER_SAMPLE)):
                item = items[i]
                for fmt in formatters:
                    try:
                        texts.extend("".join(m) for m in fmt.format(item, index=i))
                    except ValueError:
                        continue  # e.g. no caption to pre-train on
        size = preset(cfg.model).llm.embedding_size
        tok = train_bpe_tokenizer(texts, vocab_size=size)
        out.mkdir(parents=True, exist_ok=True)
        tok.save(out)
    if dist.is_initialized():
        dist.barrier()
    return MolmoTokenizer.from_dir(out)


def load_vit(model: MolmoModel, path: Path) -> None:
    """Replace the ViT weights by a vision pre-training result (all keys must match)."""
    from safetensors.torch import load_file
    if not path.exists():
        raise ConfigError(f"init_vit {path} does not exist (run `molmo train tiny-vision` first)")
    try:
        model.vision.vit.load_state_dict(load_file(str(path)))
    except RuntimeError as e:  # missing / unexpected keys or shape mismatches
        raise ConfigError(f"init_vit {path} does not fit the model's ViT: {str(e)[:300]}") from None


def from_scratch(config: MolmoConfig, seed: int, init_vit: Path | None = None) -> MolmoModel:
    """A randomly initialised model (with a pre-trained ViT when `init_vit` is given), built from its complete
    config: the weights are drawn on a first copy, the connector's image scale is measured on it (again after
    loading the ViT, whose features are far larger than a random one's: image tokens would otherwise start
    ~50x the text embeddings' scale), and the model is built from the config with that scale and takes the
    weights."""
    probe = MolmoModel(config)
    scale = image_token_scale(probe, init_weights(probe, seed=seed))
    if init_vit is not None:
        load_vit(probe, init_vit)
        scale = image_token_scale(probe, torch.Generator().manual_seed(seed), scale)
    with torch.random.fork_rng():  # the global RNG stream stays as if one model had been built
        model = MolmoModel(config.replace(connector=dataclasses.replace(config.connector, image_scale=scale)))
    model.load_state_dict(probe.state_dict())
    return model


def model_config(cfg: TrainConfig, checkpoint: Path | None, tokenizer: MolmoTokenizer) -> MolmoConfig:
    """The complete config of the model a run trains, before it is built: the checkpoint's or the preset's
    (a from-scratch model takes its EOS and image-token ids from the tokenizer trained for it), with the
    run's dropout (read by each decoder block, recipe-spec §3.1)."""
    if checkpoint is not None:
        config = read_config(checkpoint)
    else:
        try:
            config = preset(cfg.model)
        except (KeyError, ValueError) as e:
            raise ConfigError(str(e)) from None
        config = config.replace(eos_token_id=tokenizer.eos_token_id,
                                special_token_ids=tokenizer.image_token_ids.to_mapping())
    llm = dataclasses.replace(config.llm, residual_dropout=cfg.residual_dropout,
                              response_residual_dropout=cfg.response_residual_dropout,
                              attention_dropout=cfg.attention_dropout)
    return config.replace(llm=llm)


def build_model_and_processor(cfg: TrainConfig, on_meta: bool = False) -> tuple[MolmoModel, MolmoProcessor, Path]:
    """on_meta: with an `init` checkpoint, return the model on the meta device (weights not read; shard it,
    then `load_sharded`)."""
    try:  # a folder, or a Hub id fetched into the Hub cache
        checkpoint = resolve_model(cfg.init) if cfg.init else None
    except HubError as e:
        raise ConfigError(str(e)) from None
    if checkpoint is not None and not (checkpoint / "config.json").exists():
        raise ConfigError(f"init checkpoint {checkpoint} has no config.json")
    tokenizer, tokenizer_dir = _tokenizer(cfg, checkpoint)
    config = model_config(cfg, checkpoint, tokenizer)
    if tokenizer.vocab_size > config.llm.embedding_size + config.llm.additional_vocab_size:
        raise ConfigError(f"tokenizer has {tokenizer.vocab_size} ids but the model embeds only "
                          f"{config.llm.embedding_size + config.llm.additional_vocab_size}")
    if checkpoint is not None:
        model = build_on_meta(config, torch.float32) if on_meta else load_molmo(checkpoint, config=config)[0]
    else:
        model = from_scratch(config, cfg.seed, Path(cfg.init_vit) if cfg.init_vit else None)
    processor = MolmoProcessor(tokenizer, preprocessor_for(cfg, model, checkpoint),
                               max_sequence_length=None)
    return model, processor, tokenizer_dir


def use_flex_attention(cfg: TrainConfig, device: torch.device) -> bool:
    if cfg.attention == Attention.AUTO:  # FlexAttention has no attention dropout: SDPA's dense mask then
        return device.type == "cuda" and not cfg.attention_dropout
    if cfg.attention == Attention.FLEX and cfg.attention_dropout:
        raise ConfigError("attention='flex' cannot apply attention_dropout; use attention='sdpa' or 'auto'")
    return cfg.attention == Attention.FLEX


def shard_model(model: MolmoModel, cfg: TrainConfig, world: int, device: torch.device) -> nn.Module:
    model.llm.activation_checkpointing = cfg.activation_checkpointing
    model.llm.attention_backend = "flex" if use_flex_attention(cfg, device) else "sdpa"
    if cfg.compile:
        for block in itertools.chain(model.vision.vit.blocks, model.llm.blocks):
            block.compile()
    if world > 1:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        # bf16: parameters all-gathered and computed in bf16, gradients reduced in fp32, fp32 master weights
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
            if cfg.precision == "bf16" else MixedPrecisionPolicy()
        for block in itertools.chain(model.vision.vit.blocks, model.llm.blocks):
            fully_shard(block, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
    return model


def load_sharded(model: nn.Module, checkpoint: Path, device: torch.device) -> nn.Module:
    """Allocate a meta-built, sharded model on `device` and fill each rank's shards from the checkpoint
    (every rank reads only its own rows)."""
    model = materialize(model, device)
    stream_into(model, load_plan(checkpoint))
    return model
