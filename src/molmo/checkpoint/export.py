"""`molmo export MODEL OUT [--base DIR_OR_ID]`: any checkpoint of ours (a fine-tune, a merged LoRA, `molmo
convert` output) -> the released Hugging Face layout that transformers' remote code and vLLM read:
`config.json` with the released keys, `model.safetensors` (or `model-0000k-of-0000n.safetensors` shards +
`model.safetensors.index.json`) with the released tensor names, the tokenizer files and a released-style
`preprocessor_config.json`. A folder already in the released format is copied unchanged.

    molmo export runs/finetune/model out/my-molmo --base allenai/Molmo-7B-D-0924
    vllm serve out/my-molmo --trust-remote-code

`--base` copies the base checkpoint's processor files and remote code (`*.py`), which this project never
writes or ships, and merges its config.json (auto_map, transformers_version, ...) under ours; it must be the
same architecture. Tiny or non-CLIP models get the conformance fixtures' extension keys (`vision_backbone`,
`vit_layers`, ...), which only this package's loader reads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from molmo.checkpoint.hub import HubError, resolve_model
from molmo.checkpoint.io import read_config, read_tensors, replace_dir
from molmo.checkpoint.names import to_released
from molmo.model.config import ConnectorConfig, LLMConfig, MolmoConfig, VisionConfig, from_hf_config
from molmo.preprocess.config import PreprocessorConfig

DEFAULT_MAX_SHARD_BYTES = 5 * 10**9
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "added_tokens.json", "generation_config.json")
# What --base contributes: processor + remote code (+ its config.json, merged under ours). Never its weights.
BASE_FILES = ("config.json", "*.py", "preprocessor_config.json", "processor_config.json", "tokenizer_config.json",
              "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt", "added_tokens.json")
RELEASED_PREPROCESSOR_KEYS = ("base_image_input_size", "do_normalize", "image_mean", "image_padding_mask",
                              "image_patch_size", "image_std", "image_token_length_h", "image_token_length_w",
                              "max_crops", "overlap_margins")
DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


class ExportError(ValueError):
    """The checkpoint cannot be written in the released layout (the message says why)."""


def released_config(cfg: MolmoConfig, torch_dtype: str = "float32") -> dict:
    """Our config -> the released `config.json` keys (plus the fixtures' vision keys for non-released vision
    sides). Raises ExportError when the released keys cannot express `cfg` (checked by reading it back)."""
    llm, vis, con = cfg.llm, cfg.vision, cfg.connector
    moe = llm.num_experts > 0
    out: dict = {
        "architectures": ["MOLMoEForCausalLM" if moe else "MolmoForCausalLM"],
        "auto_map": ({"AutoConfig": "config_molmoe.MolmoConfig", "AutoModelForCausalLM": "modeling_molmoe.MOLMoEForCausalLM"}
                     if moe else
                     {"AutoConfig": "config_molmo.MolmoConfig", "AutoModelForCausalLM": "modeling_molmo.MolmoForCausalLM"}),
        "model_type": "molmoe" if moe else "molmo",
        "attention_layer_norm": llm.qk_norm,
        "clip_qkv": llm.clip_qkv,
        "embedding_size": llm.embedding_size,
        "hidden_size": llm.d_model,
        "initializer_range": 0.02,
        "intermediate_size": llm.ffn_hidden if moe else 2 * llm.ffn_hidden,
        "layer_norm_eps": llm.norm_eps,
        "layer_norm_type": "rms",
        "max_position_embeddings": llm.max_position_embeddings,
        "norm_after": llm.norm_after,
        "num_attention_heads": llm.heads,
        "num_hidden_layers": llm.layers,
        # The OLMo-based release writes null for multi-head attention; the Qwen2 and MoE ones write the number.
        "num_key_value_heads": None if llm.kv_heads == llm.heads and not (moe or llm.qkv_bias) else llm.kv_heads,
        "qkv_bias": llm.qkv_bias,
        "rope_theta": llm.rope_theta,
        "tie_word_embeddings": False,
        "torch_dtype": torch_dtype,
        "use_cache": True,
        "use_position_ids": True,
        "vocab_size": llm.vocab_size,
        "weight_tying": False,
    }
    if llm.head_dim != llm.d_model // llm.heads:
        out["head_dim"] = llm.head_dim
    if moe:
        out.update(moe_num_experts=llm.num_experts, moe_top_k=llm.experts_top_k, norm_topk_prob=llm.norm_topk_prob)
    if cfg.eos_token_id is not None:
        out["eos_token_id"] = cfg.eos_token_id
    if vis != VisionConfig() or _connector(con) != ConnectorConfig():  # not the released vision side
        act = {"gelu_tanh": "gelu_pytorch_tanh"}.get(vis.activation, vis.activation)
        vb = {"image_default_input_size": list(vis.image_size), "image_patch_size": vis.patch_size,
              "image_emb_dim": vis.width, "image_num_heads": vis.heads, "image_num_key_value_heads": vis.heads,
              "image_num_layers": vis.layers, "image_head_dim": vis.head_dim, "image_mlp_dim": vis.mlp_dim,
              "image_mlp_activations": act, "image_num_pos": vis.num_positions, "image_norm_eps": vis.norm_eps}
        if vis.kind != ("siglip" if act == "gelu_pytorch_tanh" else "clip"):
            vb["kind"] = vis.kind
        out.update(vision_backbone=vb, vit_layers=list(con.vit_layers), image_pooling_2d=con.pooling,
                   image_pooling_h=con.pool_h, image_pooling_w=con.pool_w, image_projector=con.projector,
                   image_padding_embed=con.padding_embed, additional_vocab_size=llm.additional_vocab_size)
    if cfg.special_token_ids is not None:
        out["special_token_ids"] = dict(cfg.special_token_ids)
    _check_round_trip(cfg, out)
    return out


def _connector(con: ConnectorConfig) -> ConnectorConfig:
    return dataclasses.replace(con, image_scale=1.0)  # folded into the projector's weights on export


def _comparable(cfg: MolmoConfig) -> MolmoConfig:
    """What the released config describes: no training-only dropouts, the image scale folded into weights."""
    llm = dataclasses.replace(cfg.llm, residual_dropout=0.0, response_residual_dropout=0.0)
    return cfg.replace(llm=llm, connector=_connector(cfg.connector))


def _check_round_trip(cfg: MolmoConfig, out: dict) -> None:
    back, want = _comparable(from_hf_config(out)), _comparable(cfg)
    if back != want:
        diff = [f"{part}.{f.name}: {getattr(getattr(want, part), f.name)!r} -> {getattr(getattr(back, part), f.name)!r}"
                for part in ("vision", "connector", "llm") for f in dataclasses.fields(getattr(want, part))
                if getattr(getattr(want, part), f.name) != getattr(getattr(back, part), f.name)]
        raise ExportError(f"the released config.json keys cannot describe this model: {diff or [back, want]}")


def released_preprocessor(pre: PreprocessorConfig) -> dict:
    """The released `preprocessor_config.json` keys, plus our extension keys where settings differ from them."""
    ours = pre.to_dict()
    out = {k: ours[k] for k in RELEASED_PREPROCESSOR_KEYS if k in ours}
    out["do_normalize"] = True
    default = PreprocessorConfig().to_dict()
    for key in ("pool_h", "pool_w", "resize", "fix_image_padding", "use_col_tokens"):
        if ours[key] != default[key]:
            out[key] = ours[key]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(out.items())}


def released_state(path: Path, cfg: MolmoConfig, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Our tensors -> released names; a connector image_scale is folded into the projector's output weight."""
    state = read_tensors(path)
    scale = cfg.connector.image_scale
    if scale != 1.0:
        key = "vision.projector.w2.weight"
        state[key] = (state[key].double() * scale).to(state[key].dtype)
    try:
        out = to_released(state, cfg)
    except KeyError as e:
        raise ExportError(f"{path}: {e.args[0]}") from None
    if dtype is not None:
        out = {k: v.to(dtype) if v.is_floating_point() else v for k, v in out.items()}
    return out


def write_shards(state: dict[str, torch.Tensor], folder: Path, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES) -> list[str]:
    """One `model.safetensors`, or shards of at most `max_shard_bytes` (a bigger tensor gets its own) + index."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name in sorted(state):
        t = state[name].contiguous()
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], str(folder / "model.safetensors"), metadata={"format": "pt"})
        return ["model.safetensors"]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards):
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return names


def _base_folder(base: str | Path, revision: str | None) -> Path:
    try:
        folder = resolve_model(base, revision, files=BASE_FILES)
    except HubError as e:
        raise ExportError(str(e)) from None
    if not (folder / "config.json").is_file():
        raise ExportError(f"--base {base}: no config.json")
    return folder


def export(model: str | Path, out: str | Path, *, base: str | Path | None = None, revision: str | None = None,
           base_revision: str | None = None, dtype: torch.dtype | None = None,
           max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES) -> Path:
    """Write `model` (folder or Hub id) to `out` in the released layout, atomically; returns `out`."""
    try:
        src = resolve_model(model, revision)
    except HubError as e:
        raise ExportError(str(e)) from None
    cfg = read_config(src)
    raw = json.loads((src / "config.json").read_text())
    base_dir = _base_folder(base, base_revision) if base is not None else None
    out = Path(out)
    if out.resolve() == src.resolve():
        raise ExportError(f"{out}: the output folder must differ from the checkpoint folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(tmp, 0o755)
    try:
        if raw.get("format") != "molmo":  # already released: unchanged
            for f in src.iterdir():
                if f.is_file():
                    shutil.copyfile(f, tmp / f.name)
        else:
            state = released_state(src, cfg, dtype)
            first = next(iter(state.values()))
            config = released_config(cfg, DTYPE_NAMES.get(first.dtype, "float32"))
            if base_dir is not None:
                base_raw = json.loads((base_dir / "config.json").read_text())
                _check_same_architecture(cfg, base_raw, base)
                config = {**base_raw, **config, "auto_map": base_raw.get("auto_map", config["auto_map"]),
                          "architectures": base_raw.get("architectures", config["architectures"])}
            write_shards(state, tmp, max_shard_bytes)
            (tmp / "config.json").write_text(json.dumps(config, indent=2))
            for name in TOKENIZER_FILES:
                if (src / name).is_file():
                    shutil.copyfile(src / name, tmp / name)
            if (src / "preprocessor_config.json").is_file():
                pre = released_preprocessor(PreprocessorConfig.from_json(src / "preprocessor_config.json"))
                (tmp / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
        if base_dir is not None:
            for f in base_dir.iterdir():
                if f.is_file() and f.name != "config.json" and (f.suffix == ".py" or f.name in BASE_FILES):
                    shutil.copyfile(f, tmp / f.name)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _check_same_architecture(cfg: MolmoConfig, base_raw: dict, base: str | Path) -> None:
    try:
        base_cfg = from_hf_config(base_raw)
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"--base {base}: cannot read its config.json ({e!r})") from None
    ours, theirs = _comparable(cfg), _comparable(base_cfg)
    diff = [f"llm.{f.name}: {getattr(ours.llm, f.name)!r} vs base {getattr(theirs.llm, f.name)!r}"
            for f in dataclasses.fields(LLMConfig) if getattr(ours.llm, f.name) != getattr(theirs.llm, f.name)]
    if "vision_backbone" in base_raw or ours.vision == VisionConfig():
        diff += [f"vision.{f.name}: {getattr(ours.vision, f.name)!r} vs base {getattr(theirs.vision, f.name)!r}"
                 for f in dataclasses.fields(VisionConfig) if getattr(ours.vision, f.name) != getattr(theirs.vision, f.name)]
    else:
        diff.append("vision: this model's ViT differs from the released CLIP ViT the base's remote code builds")
    if diff:
        raise ExportError(f"--base {base} is a different architecture than the model: {diff[:6]}")
