"""Named training presets: functions returning a full TrainConfig. The released recipe (recipe-spec §3.2–3.3)
for each released size, and the tiny presets that train the embedded model on our generated data.

    molmo train tiny-pretrain                     # caption pre-training of the embedded model (CPU is fine)
    molmo train tiny-sft                          # multitask fine-tuning from runs/tiny-pretrain/model
    molmo train pretrain-7b-d --init=converted/7b-d-base --data.sources.0.path=/data/pixmo-cap
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from molmo.train.config import ConfigError, DataConfig, DataSource, GroupOptim, OptimConfig, TrainConfig

# Released sizes: model preset and the ViT layers / base checkpoints they start from.
RELEASED = {"7b-d": "molmo-7b-d", "7b-o": "molmo-7b-o", "72b": "molmo-72b", "1b": "molmoe-1b"}


def released_pretrain(size: str) -> TrainConfig:
    """Caption pre-training: PixMo-Cap with transcripts, batch 128, 2304 tokens, connector 2e-4/200,
    ViT 6e-6/2000, LLM 2e-5/2000, response-only residual dropout 0.1, ~4 epochs."""
    return TrainConfig(
        model=RELEASED[size], init=f"checkpoints/{size}-base",
        data=DataConfig(sources=(DataSource("pixmo_cap", "pixmo:cap", path="data/pixmo-cap"),), stage="pretrain",
                        sequence_length=2304, max_crops=12, num_workers=8),
        optim=OptimConfig(connector=GroupOptim(2e-4, 200), vit=GroupOptim(6e-6, 2000), llm=GroupOptim(2e-5, 2000)),
        steps=22_000, global_batch=128, micro_batch=4, residual_dropout=0.0, response_residual_dropout=0.1,
        activation_checkpointing=True, out_dir=f"runs/pretrain-{size}", save_every=4000)


def released_sft(size: str) -> TrainConfig:
    """Multitask fine-tuning on the 3.2-synthetic mixture: batch 256, 30k steps, connector/ViT 5e-6,
    LLM 1e-5, warm-up 200, residual dropout 0.1 everywhere."""
    from molmo.data.mixture import released_sources
    return TrainConfig(
        model=RELEASED[size], init=f"runs/pretrain-{size}/model",
        data=DataConfig(sources=released_sources(), stage="sft", sequence_length=2304, max_crops=12, num_workers=8),
        optim=OptimConfig(connector=GroupOptim(5e-6, 200), vit=GroupOptim(5e-6, 200), llm=GroupOptim(1e-5, 200)),
        steps=30_000, global_batch=256, micro_batch=4, residual_dropout=0.1, response_residual_dropout=0.0,
        activation_checkpointing=True, out_dir=f"runs/sft-{size}", save_every=4000)


# --------------------------------------------------------------------------- the embedded tiny model
TINY_SIZE = 200_000  # distinct generated images per generator source

TINY_DATA = DataConfig(stage="sft", sequence_length=640, max_crops=6, num_workers=2, seed=6198)
TINY_PREPROCESSOR = {"overlap_margins": (2, 2)}  # 8x8-patch crops need margins below 8 patches


def _tiny_sources(stage: str) -> tuple[tuple[DataSource, ...], tuple[DataSource, ...]]:
    if stage == "pretrain":
        train = tuple(DataSource(f"captions_{s}", "generator:captions", size=TINY_SIZE, seed=1,
                                 options={"source": s}) for s in ("points", "clocks", "docs"))
    else:
        train = (DataSource("points", "generator:points", size=TINY_SIZE, rate=0.45, seed=2),
                 DataSource("clocks", "generator:clocks", size=TINY_SIZE, rate=0.25, seed=3),
                 DataSource("docs", "generator:docs", size=TINY_SIZE, rate=0.2, seed=4, options={"doc_kind": "bar"}),
                 DataSource("captions", "generator:captions", size=TINY_SIZE, rate=0.1, seed=5,
                            options={"source": "points"}))
    val = tuple(DataSource(f"val_{s.name}", s.kind, size=256, rate=s.rate, seed=s.seed + 1000, options=s.options)
                for s in train)
    return train, val


def tiny_pretrain() -> TrainConfig:
    """Caption pre-training of the embedded model from scratch (the tokenizer is trained on the same data).
    Unlike the released recipe nothing is pre-trained, so no embedding is frozen and the LRs are higher."""
    train, val = _tiny_sources("pretrain")
    return TrainConfig(
        model="tiny-molmo", preprocessor=TINY_PREPROCESSOR,
        data=dataclasses.replace(TINY_DATA, sources=train, validation=val, stage="pretrain"),
        optim=OptimConfig(connector=GroupOptim(2e-3, 100), vit=GroupOptim(1e-3, 200), llm=GroupOptim(1e-3, 200),
                          freeze_embedding=False),
        steps=2000, global_batch=64, micro_batch=16, residual_dropout=0.0, response_residual_dropout=0.0,
        z_loss=1e-4, precision="bf16", out_dir="runs/tiny-pretrain", save_every=250, eval_every=250,
        eval_batches=4)


def tiny_sft() -> TrainConfig:
    """Multitask fine-tuning of the embedded model on points / counting, clocks, bar charts and captions."""
    train, val = _tiny_sources("sft")
    return TrainConfig(
        model="tiny-molmo", init="runs/tiny-pretrain/model", preprocessor=TINY_PREPROCESSOR,
        data=dataclasses.replace(TINY_DATA, sources=train, validation=val),
        optim=OptimConfig(connector=GroupOptim(1e-3, 100), vit=GroupOptim(5e-4, 100), llm=GroupOptim(5e-4, 100),
                          freeze_embedding=False),
        steps=4000, global_batch=64, micro_batch=16, residual_dropout=0.0, response_residual_dropout=0.0,
        z_loss=1e-4, precision="bf16", out_dir="runs/tiny-sft", save_every=250, eval_every=250, eval_batches=4)


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "tiny-pretrain": tiny_pretrain,
    "tiny-sft": tiny_sft,
    **{f"pretrain-{s}": (lambda s=s: released_pretrain(s)) for s in RELEASED},
    **{f"sft-{s}": (lambda s=s: released_sft(s)) for s in RELEASED},
}


def get(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown training preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]()
