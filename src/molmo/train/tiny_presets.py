"""The tiny presets: the embedded model's training stages on the project's generated data, sized for 2 CPU
cores (few crops, short sequences; bf16 autocast where the machine computes it fast). The shipped model (v3) is
tiny-vision -> tiny-vision-regions -> tiny-vision-clocks -> tiny-pretrain -> tiny-sft; the candidate after it
grounds first (tiny-ground, then the counting stages in `molmo.train.counting_presets`, then tiny-sft-grounded).

    molmo train tiny-pretrain --print-config      # the resolved configuration
    python training/tiny-molmo/chain.py start     # the stages in the background, resuming where they stopped

Run folders live under `molmo.train.runs.runs_root()` ($MOLMO_RUNS, default ~/.cache/molmo/runs), each stage
starting from the previous stage's output there.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from molmo.train.config import DataConfig, DataSource, GroupOptim, OptimConfig, TrainConfig
from molmo.train.runs import run_dir

if TYPE_CHECKING:
    from molmo.train.vision_pretrain import VisionPretrainConfig

# `precision="auto"`: some CPUs run bf16 matmuls tens of times slower than fp32. Stage 0 (`tiny-vision`)
# pre-trains the ViT with dense labels from the generators' scenes.
TINY_SIZE = 200_000  # distinct generated images per generator source
TINY_MODEL = "tiny-molmo"  # the shipped embedded model's architecture (v3)

# Generated images are kept on disk (~55 kB each: the chain's two trainer stages left 1.4 GB for 23,362 images),
# so a rerun or a `--pregenerate`d run reads them back.
TINY_DATA = DataConfig(stage="sft", sequence_length=448, max_crops=4, num_workers=1, seed=6198,
                       generated_cache="auto")
TINY_PREPROCESSOR = {"overlap_margins": (2, 2)}  # 8x8-patch crops need margins below 8 patches
GROUNDED_PREPROCESSOR = {**TINY_PREPROCESSOR, "use_col_tokens": False}  # the candidate after v3 (tiny-ground)


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


def tiny_vision_clocks() -> "VisionPretrainConfig":
    """The vision stage's third part: `tiny-vision-regions`' ViT on global views with clocks the majority, so
    every clock image carries the clock-face time target (`face_time`). In the mixed stages, where most views are
    crops that do not show both hands, face_time stayed near its start (tiny-vision: 0.55 -> 0.50 in 2,000
    steps); a clock-only run on global views took it from 0.50 to 0.061 in 3,000 steps and its ViT read the hour
    at 0.755 (docs/tiny-molmo-research.md). Points and bar charts stay in the mix so their features are kept."""
    return dataclasses.replace(
        tiny_vision(), init_vit=str(run_dir("tiny-vision-regions") / "vit.safetensors"), region_weight=1.0,
        steps=2000, warmup=50, views_per_image=1, images_per_step=32,
        sources=(("clocks", 0.25, {"difficulty": "easy"}), ("clocks", 0.35, {}), ("points", 0.25, {}),
                 ("docs", 0.15, {"doc_kind": "bar"})),
        out_dir=str(run_dir("tiny-vision-clocks")))


def tiny_pretrain() -> TrainConfig:
    """Caption pre-training of the embedded model: ViT from `tiny-vision-clocks`, everything else from scratch
    (the tokenizer is trained on the captions and the fine-tuning texts). The pre-trained ViT stays frozen (it
    keeps its dense-label features and the step is faster); no embedding is frozen; LRs are higher than released."""
    train, val = _tiny_sources("pretrain")
    sft_text = tuple(s for s in _tiny_sources("sft")[0] if not s.options.get("difficulty") and not s.stage)
    return TrainConfig(
        model=TINY_MODEL, init_vit=str(run_dir("tiny-vision-clocks") / "vit.safetensors"),
        preprocessor=TINY_PREPROCESSOR,
        data=dataclasses.replace(TINY_DATA, sources=train, validation=val, stage="pretrain",
                                 tokenizer_sources=sft_text),
        # The connector learns 10x slower than the LLM. At 2e-3, on captions that list objects one by one, its
        # tokens kept little of the per-colour amounts the ViT features state (the token probe, docs/tiny-molmo-research.md); at
        # 2e-4, on captions that open with the amounts, they keep most of them.
        optim=OptimConfig(connector=GroupOptim(2e-4, 50), vit=GroupOptim(2e-4, 50), llm=GroupOptim(2e-3, 50),
                          freeze_embedding=False, freeze_vit=True),
        steps=200, global_batch=16, micro_batch=8, residual_dropout=0.0, response_residual_dropout=0.0,
        # compiled blocks: 2.15 s vs 2.81 s per tiny-sft step in bf16 on 2 CPUs (benchmarks/bench_train.py --compile)
        z_loss=1e-4, precision="auto", compile=True, out_dir=str(run_dir("tiny-pretrain")), save_every=50,
        eval_every=50, eval_batches=2)


# The grounding layout's pools: clocks and charts cost ~0.1 s each to draw, so they come from smaller pools (kept
# on disk); point scenes stay fresh.
GROUND_POOLS = {"points_easy": TINY_SIZE, "points": TINY_SIZE, "clocks_easy": 4000, "clocks": 4000, "docs": 4000}


def _one_question(source: DataSource) -> DataSource:
    """A source in the grounding layout: one of an image's questions per example, from its pool if it has one."""
    return dataclasses.replace(source, size=GROUND_POOLS.get(source.name, source.size), annotations_per_example=1)


def tiny_ground() -> TrainConfig:
    """Grounding before the mixture: `tiny-pretrain`'s model fine-tuned on the image-dependent tasks only (points
    and counting, clocks, bar charts) at one crop and batch 32, long enough to leave the plateau where answers come
    from the language prior. In the grounding check (docs/tiny-molmo-research.md) counting alone stayed on that
    plateau for ~2,100 steps at this size and batch before the loss fell; every earlier `tiny-sft` stopped on it.
    One question per image, as in that check: a step holds ~2,500 tokens (5–8 s in fp32 on 2 CPUs without fast
    bf16), where packing a point scene's questions made it ~7,800. Clocks and charts cost ~0.1 s each to draw, so
    they come from smaller pools (kept on disk, asked another of their questions on each reuse). Image rows go
    without their closing `<im_col>`, which delayed the fall by ~200 steps there."""
    train, val = _tiny_sources("sft")
    return dataclasses.replace(
        tiny_sft(), init=str(run_dir("tiny-pretrain") / "model"), preprocessor=GROUNDED_PREPROCESSOR,
        data=dataclasses.replace(
            TINY_DATA, max_crops=1,
            sources=tuple(_one_question(s) for s in train if s.name in GROUND_POOLS),
            validation=tuple(_one_question(s) for s in val if s.name.removeprefix("val_") in GROUND_POOLS)),
        steps=3000, global_batch=32, micro_batch=16, save_every=100, eval_every=500,
        out_dir=str(run_dir("tiny-ground")))


def target_group_counts(source: DataSource) -> DataSource:
    """A point-scene source whose "how many" questions ask about the target group only (other sources as they are)."""
    if source.kind != "generator:points":
        return source
    return dataclasses.replace(source, options={**source.options, "count_questions": "target"})


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
        # 800 steps (12,800 examples, 55 min on 2 vCPUs in bf16 with compiled blocks). v3 was trained before the
        # loader kept crowded scenes' pairs that fit; a 1,000-step rerun with them did not beat it
        # (docs/tiny-molmo-research.md, "Crowded scenes that fit").
        steps=800, global_batch=16, micro_batch=8, residual_dropout=0.0, response_residual_dropout=0.0,
        z_loss=1e-4, precision="auto", compile=True, out_dir=str(run_dir("tiny-sft")), save_every=50, eval_every=100,
        eval_batches=2)


def tiny_sft_grounded() -> TrainConfig:
    """The candidate after v3: the grounded, counting model (`tiny-ground-counts`) on `tiny-sft`'s whole mixture
    (captions and point lists back in, so `molmo caption` keeps working) with the grounding stages' image layout
    and one question per image, at a fifth of tiny-ground's peak learning rates: a short stage that adds the captions without moving the
    grounded model far. Its point scenes' "how many" questions ask about the target group, as in the counting
    stage: with every expression's (mostly 0 or 1) the first run went back to the wording's prior in 400 steps.
    `tiny-sft`'s own layout (up to 4 crops, every question of an image packed) would make
    the steps longer and change the image tokens the grounded model learned to read."""
    ground = tiny_ground()
    train, val = _tiny_sources("sft")
    return dataclasses.replace(
        ground, init=str(run_dir("tiny-ground-counts") / "model"),
        data=dataclasses.replace(ground.data, sources=tuple(map(target_group_counts, map(_one_question, train))),
                                 validation=tuple(map(target_group_counts, map(_one_question, val)))),
        optim=dataclasses.replace(ground.optim, connector=GroupOptim(2e-6, 20), llm=GroupOptim(2e-4, 20)),
        steps=400, save_every=50, eval_every=200, out_dir=str(run_dir("tiny-sft-grounded")))
