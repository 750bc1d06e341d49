"""Named training presets: functions returning a full TrainConfig. The released recipe (recipe-spec §3.2–3.3)
for each released size, and the tiny presets that train the embedded model on our generated data.

    molmo train tiny-vision && molmo train tiny-vision-regions   # the embedded model's ViT (dense labels)
    molmo train tiny-pretrain                     # caption pre-training of the embedded model (CPU is fine)
    molmo train tiny-sft                          # multitask fine-tuning from tiny-pretrain's model
    python training/tiny-molmo/chain.py start     # all four, in the background, resuming where they stopped

The tiny presets' run folders live under `molmo.train.runs.runs_root()` ($MOLMO_RUNS, default
~/.cache/molmo/runs), each stage starting from the previous stage's output there.
    molmo train pretrain-7b-d --init=converted/7b-d-base --data.sources.0.path=/data/pixmo-cap
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from molmo.train.config import ConfigError, DataConfig, DataSource, GroupOptim, OptimConfig, TrainConfig
from molmo.train.runs import run_dir

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


# Members of the released mixture -> (reader, options); data/<name> is where `molmo data download` puts them.
PIXMO_MEMBERS = {
    "pixmo_ask_model_anything": ("ask_model_anything", {}), "pixmo_cap": ("cap", {}), "pixmo_cap_qa": ("cap_qa", {}),
    "pixmo_pointing_explanations": ("point_explanations", {}),
    **{f"pixmo_docs_{c}": ("docs", {"config": c}) for c in ("charts", "tables", "other", "diagrams")},
    "pixmo_points": ("points", {"subset": "basic"}),
    "pixmo_points_counting": ("points", {"subset": "basic", "mode": "point_count"}),
    "pixmo_points_high_freq": ("points", {"subset": "high_frequency"}),
    "pixmo_points_high_freq_counting": ("points", {"subset": "high_frequency", "mode": "point_count"}),
    "pixmo_count": ("count", {}), "pixmo_count_counting": ("count", {"mode": "point_count"}),
}


def released_sources(mixture: str = "3.2-synthetic") -> tuple[DataSource, ...]:
    from molmo.data.mixture import preset_mixture
    out = []
    for name in preset_mixture(mixture).datasets:
        reader, options = PIXMO_MEMBERS.get(name, (None, {}))
        kind = f"pixmo:{reader}" if reader else f"academic:{name}"
        folder = name.removesuffix("_counting") if reader in ("points", "count") else name
        out.append(DataSource(name, kind, path=f"data/{folder}", options=options))
    return tuple(out)


def released_sft(size: str) -> TrainConfig:
    """Multitask fine-tuning on the 3.2-synthetic mixture: batch 256, 30k steps, connector/ViT 5e-6,
    LLM 1e-5, warm-up 200, residual dropout 0.1 everywhere."""
    return TrainConfig(
        model=RELEASED[size], init=f"runs/pretrain-{size}/model",
        data=DataConfig(sources=released_sources(), mixture="3.2-synthetic", stage="sft", sequence_length=2304,
                        max_crops=12, num_workers=8),
        optim=OptimConfig(connector=GroupOptim(5e-6, 200), vit=GroupOptim(5e-6, 200), llm=GroupOptim(1e-5, 200)),
        steps=30_000, global_batch=256, micro_batch=4, residual_dropout=0.1, response_residual_dropout=0.0,
        activation_checkpointing=True, out_dir=f"runs/sft-{size}", save_every=4000)


# --------------------------------------------------------------------------- the embedded tiny model
# Sized for 2 CPU cores: few crops, short sequences; bf16 autocast where the machine computes it fast
# (`precision="auto"`: some CPUs run bf16 matmuls tens of times slower than fp32). Stage 0 (`tiny-vision`) pre-trains the ViT with dense labels from the generators' scenes.
TINY_SIZE = 200_000  # distinct generated images per generator source
TINY_MODEL = "tiny-molmo-qk"  # the candidate the chain trains; `tiny-molmo` describes the shipped model

TINY_DATA = DataConfig(stage="sft", sequence_length=448, max_crops=4, num_workers=1, seed=6198)
TINY_PREPROCESSOR = {"overlap_margins": (2, 2)}  # 8x8-patch crops need margins below 8 patches


def _tiny_sources(stage: str) -> tuple[tuple[DataSource, ...], tuple[DataSource, ...]]:
    if stage == "pretrain":
        train = tuple(DataSource(f"captions_{s}", "generator:captions", size=TINY_SIZE, seed=1,
                                 options={"source": s}) for s in ("points", "clocks", "docs"))
    else:
        # Easy scenes (big objects, plain backgrounds, few distractors) beside normal ones: an easy share
        # lets the language model find the image signal early (a built-in curriculum).
        train = (DataSource("points_easy", "generator:points", size=TINY_SIZE, rate=0.2, seed=12,
                            options={"difficulty": "easy"}),
                 DataSource("points", "generator:points", size=TINY_SIZE, rate=0.25, seed=2),
                 DataSource("clocks_easy", "generator:clocks", size=TINY_SIZE, rate=0.1, seed=13,
                            options={"difficulty": "easy"}),
                 DataSource("clocks", "generator:clocks", size=TINY_SIZE, rate=0.15, seed=3),
                 DataSource("docs", "generator:docs", size=TINY_SIZE, rate=0.2, seed=4, options={"doc_kind": "bar"}),
                 DataSource("captions", "generator:captions", size=TINY_SIZE, rate=0.1, seed=5,
                            options={"source": "points"}),
                 # pre-training-style captions (`long_caption 65:` prompts) so `molmo caption` keeps working
                 *(DataSource(f"captions_pretrain_{s}", "generator:captions", size=TINY_SIZE, rate=0.02, seed=1,
                              options={"source": s}, stage="pretrain") for s in ("points", "clocks", "docs")))
    val = tuple(dataclasses.replace(s, name=f"val_{s.name}", size=64, seed=s.seed + 1000) for s in train)
    return train, val


def tiny_vision() -> "VisionPretrainConfig":
    from molmo.train.vision_pretrain import VisionPretrainConfig
    return VisionPretrainConfig(model=TINY_MODEL, steps=2000, precision="auto", out_dir=str(run_dir("tiny-vision")))


def tiny_vision_regions() -> "VisionPretrainConfig":
    """The vision stage's second part: `tiny-vision`'s ViT continued with the per-region heads (object shape,
    hand direction, bar value), with more clocks."""
    return dataclasses.replace(
        tiny_vision(), init_vit=str(run_dir("tiny-vision") / "vit.safetensors"), region_weight=1.0, steps=1400,
        sources=(("points", 0.35, {}), ("clocks", 0.45, {}), ("docs", 0.2, {"doc_kind": "bar"})),
        out_dir=str(run_dir("tiny-vision-regions")))


def tiny_pretrain() -> TrainConfig:
    """Caption pre-training of the embedded model: ViT from `tiny-vision-regions`, everything else from scratch
    (the tokenizer is trained on the captions and the fine-tuning texts). The pre-trained ViT stays frozen (it
    keeps its dense-label features and the step is faster); no embedding is frozen; LRs are higher than released."""
    train, val = _tiny_sources("pretrain")
    sft_text = tuple(s for s in _tiny_sources("sft")[0] if not s.options.get("difficulty") and not s.stage)
    return TrainConfig(
        model=TINY_MODEL, init_vit=str(run_dir("tiny-vision-regions") / "vit.safetensors"),
        preprocessor=TINY_PREPROCESSOR,
        data=dataclasses.replace(TINY_DATA, sources=train, validation=val, stage="pretrain",
                                 tokenizer_sources=sft_text),
        # The connector learns 10x slower than the LLM. At 2e-3, on captions that list objects one by one, its
        # tokens kept little of the per-colour amounts the ViT features state (the token probe, docs/tiny-molmo-research.md); at
        # 2e-4, on captions that open with the amounts, they keep most of them.
        optim=OptimConfig(connector=GroupOptim(2e-4, 50), vit=GroupOptim(2e-4, 50), llm=GroupOptim(2e-3, 50),
                          freeze_embedding=False, freeze_vit=True),
        steps=200, global_batch=16, micro_batch=8, residual_dropout=0.0, response_residual_dropout=0.0,
        z_loss=1e-4, precision="auto", out_dir=str(run_dir("tiny-pretrain")), save_every=50, eval_every=50,
        eval_batches=2)


def tiny_sft() -> TrainConfig:
    """Multitask fine-tuning of the embedded model on points / counting, clocks, bar charts and captions."""
    train, val = _tiny_sources("sft")
    return TrainConfig(
        model=TINY_MODEL, init=str(run_dir("tiny-pretrain") / "model"), preprocessor=TINY_PREPROCESSOR,
        data=dataclasses.replace(TINY_DATA, sources=train, validation=val),
        # The connector is held almost still, so the image tokens keep what caption pre-training gave them
        # while the language model learns to use them.
        optim=OptimConfig(connector=GroupOptim(1e-5, 50), vit=GroupOptim(2e-4, 50), llm=GroupOptim(1e-3, 50),
                          freeze_embedding=False, freeze_vit=True),
        steps=650, global_batch=16, micro_batch=8, residual_dropout=0.0, response_residual_dropout=0.0,
        z_loss=1e-4, precision="auto", out_dir=str(run_dir("tiny-sft")), save_every=50, eval_every=100,
        eval_batches=2)


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "tiny-vision": tiny_vision,
    "tiny-vision-regions": tiny_vision_regions,
    "tiny-pretrain": tiny_pretrain,
    "tiny-sft": tiny_sft,
    **{f"pretrain-{s}": (lambda s=s: released_pretrain(s)) for s in RELEASED},
    **{f"sft-{s}": (lambda s=s: released_sft(s)) for s in RELEASED},
}


def get(name: str):
    if name not in PRESETS:
        raise ConfigError(f"unknown training preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]()
