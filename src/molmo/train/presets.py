"""Named training presets: functions returning a full TrainConfig. The released recipe (recipe-spec §3.2–3.3)
for each released size, and the tiny presets that train the embedded model on our generated data
(`molmo.train.tiny_presets`; its counting curriculum in `molmo.train.counting_presets`).

    molmo train tiny-vision && molmo train tiny-vision-regions && molmo train tiny-vision-clocks   # the ViT
    molmo train tiny-pretrain                     # caption pre-training of the embedded model (CPU is fine)
    molmo train tiny-sft                          # multitask fine-tuning from tiny-pretrain's model (v3)
    molmo train tiny-ground && molmo train tiny-ground-counts && molmo train tiny-sft-grounded   # the candidate:
                                                  # grounding, then counting, then the mixture
    python training/tiny-molmo/chain.py start     # all five, in the background, resuming where they stopped
    molmo train pretrain-7b-d --init=converted/7b-d-base --data_root=/data     # after `molmo data download`
    molmo train sft-7b-d --data_root=/data --print-config                      # the resolved configuration

The tiny presets' run folders live under `molmo.train.runs.runs_root()` ($MOLMO_RUNS, default
~/.cache/molmo/runs), each stage starting from the previous stage's output there.
"""

from __future__ import annotations

from typing import Callable

from molmo.train import counting_presets as counting, tiny_presets as tiny
from molmo.train.config import (ConfigError, DataConfig, DataSource, GroupOptim, InferenceEvalConfig, OptimConfig,
                                TrainConfig)

# Released sizes: model preset and the ViT layers / base checkpoints they start from.
RELEASED = {"7b-d": "molmo-7b-d", "7b-o": "molmo-7b-o", "72b": "molmo-72b", "1b": "molmoe-1b"}


PRETRAIN_DATA_SEED, SFT_DATA_SEED = 95818, 50189  # the released launch scripts' data seeds
DATA_ROOT = "data"  # default --data_root: the layout `molmo data download --root` writes
# Generation evaluations the released SFT run makes every 2,000 steps (ours: molmo.eval.benchmarks names; the
# released list also has AndroidControl-LL, which molmo.eval does not implement).
SFT_INFERENCE_EVALS = ("chartqa", "infovqa", "docvqa", "ai2d", "vqav2", "pixmo-points-eval", "countbenchqa")


def _cap(split: str, transcripts: bool = True) -> DataSource:
    """PixMo-Cap with every transcript (the formatter packs the caption and ONE of them) or captions only;
    `split` holds out 2,048 images as the validation set."""
    name = "pixmo_cap" if split == "train" else "pixmo_cap_validation" if transcripts else "pixmo_cap_caption_only"
    return DataSource(name, "pixmo:cap", path="pixmo/cap", options={"transcripts": transcripts, "split": split})


def released_pretrain(size: str) -> TrainConfig:
    """Caption pre-training: PixMo-Cap (caption + one random transcript per image, no sqrt(1/n) weighting),
    batch 128, 2304 tokens, connector 2e-4/200, ViT 6e-6/2000, LLM 2e-5/2000, response-only residual dropout
    0.1, 4 epochs (`4 * (n + 127) // 128` steps), validation losses on the 2,048 held-out images every 1,000
    steps, as the release reports them: caption + transcript (`val_loss`) and caption only
    (`val_loss/pixmo_cap_caption_only`)."""
    return TrainConfig(
        model=RELEASED[size], init=f"checkpoints/{size}-base",
        data=DataConfig(sources=(_cap("train"),), validation=(_cap("validation"),),
                        extra_validation=(_cap("validation", transcripts=False),), root=DATA_ROOT, stage="pretrain",
                        sequence_length=2304, max_crops=12, num_workers=8, multi_annotation_weighting="none",
                        seed=PRETRAIN_DATA_SEED),
        optim=OptimConfig(connector=GroupOptim(2e-4, 200), vit=GroupOptim(6e-6, 2000), llm=GroupOptim(2e-5, 2000)),
        steps=0, epochs=4, global_batch=128, micro_batch=4, residual_dropout=0.0, response_residual_dropout=0.1,
        attention_dropout=_attention_dropout(size), activation_checkpointing=True, out_dir=f"runs/pretrain-{size}",
        save_every=4000, eval_every=1000, eval_examples=2048)


def _attention_dropout(size: str) -> float:
    return 0.1 if size == "1b" else 0.0  # the OLMoE config keeps the 0.1 default; Qwen2 / OLMo set 0


# Members of the released mixture -> (reader, options), under <data root>/pixmo/<reader>/ (hub snapshots).
# PixMo sets without a published validation split hold images out (split="train"); PixMo-Points also leaves
# out the pointing-eval images.
_POINTS = {"split": "train", "exclude": "pixmo/points_eval"}
PIXMO_MEMBERS = {
    "pixmo_ask_model_anything": ("ask_model_anything", {"split": "train"}),
    "pixmo_cap": ("cap", {"split": "train"}),  # captions only in fine-tuning
    "pixmo_cap_qa": ("cap_qa", {"split": "train"}),
    "pixmo_pointing_explanations": ("point_explanations", {"split": "train"}),
    **{f"pixmo_docs_{c}": ("docs", {"config": c, "split": "train"}) for c in ("charts", "tables", "other", "diagrams")},
    "pixmo_points": ("points", {"subset": "basic", **_POINTS}),
    "pixmo_points_counting": ("points", {"subset": "basic", "mode": "point_count", **_POINTS}),
    "pixmo_points_high_freq": ("points", {"subset": "high_frequency", **_POINTS}),
    "pixmo_points_high_freq_counting": ("points", {"subset": "high_frequency", "mode": "point_count", **_POINTS}),
    "pixmo_count": ("count", {"split": "train"}), "pixmo_count_counting": ("count", {"mode": "point_count", "split": "train"}),
}


def released_sources(mixture: str = "3.2-synthetic") -> tuple[DataSource, ...]:
    """Every member of the mixture as a source under the data root: PixMo sets in pixmo/<reader>/, academic
    sets in academic/<name>/ (molmo.data.academic's canonical names)."""
    from molmo.data.academic import ALIASES
    from molmo.data.mixture import preset_mixture
    out = []
    for name in preset_mixture(mixture).datasets:
        if name in PIXMO_MEMBERS:
            reader, options = PIXMO_MEMBERS[name]
            out.append(DataSource(name, f"pixmo:{reader}", path=f"pixmo/{reader}", options=dict(options)))
        else:
            out.append(DataSource(name, f"academic:{name}", path=f"academic/{ALIASES.get(name, name)}"))
    return tuple(out)


def released_sft(size: str) -> TrainConfig:
    """Multitask fine-tuning on the 3.2-synthetic mixture: batch 256, 30k steps, connector/ViT 5e-6,
    LLM 1e-5, warm-up 200, residual dropout 0.1 everywhere, generation evaluations every 2,000 steps."""
    return TrainConfig(
        model=RELEASED[size], init=f"runs/pretrain-{size}/model",
        data=DataConfig(sources=released_sources(), mixture="3.2-synthetic", root=DATA_ROOT, stage="sft",
                        sequence_length=2304, max_crops=12, num_workers=8, seed=SFT_DATA_SEED),
        optim=OptimConfig(connector=GroupOptim(5e-6, 200), vit=GroupOptim(5e-6, 200), llm=GroupOptim(1e-5, 200)),
        steps=30_000, global_batch=256, micro_batch=4, residual_dropout=0.1, response_residual_dropout=0.0,
        attention_dropout=_attention_dropout(size), activation_checkpointing=True, out_dir=f"runs/sft-{size}",
        save_every=4000, inference_eval=InferenceEvalConfig(every=2000, benchmarks=SFT_INFERENCE_EVALS))


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "tiny-vision": tiny.tiny_vision,
    "tiny-vision-regions": tiny.tiny_vision_regions,
    "tiny-vision-clocks": tiny.tiny_vision_clocks,
    "tiny-pretrain": tiny.tiny_pretrain,
    "tiny-ground": tiny.tiny_ground,
    "tiny-ground-counts": counting.tiny_ground_counts,
    "tiny-count-crops": counting.tiny_count_crops,
    "tiny-count-groups": counting.tiny_count_groups,
    "tiny-count-colours": counting.tiny_count_colours,
    "tiny-count-bind": counting.tiny_count_bind,
    "tiny-bind-circles": counting.tiny_bind_circles,
    "tiny-bind-scenes": counting.tiny_bind_scenes,
    "tiny-bind-range": counting.tiny_bind_range,
    "tiny-bind-crops": counting.tiny_bind_crops,
    "tiny-point-circles": counting.tiny_point_circles,
    "tiny-point-crops": counting.tiny_point_crops,
    "tiny-point-connector": counting.tiny_point_connector,
    "tiny-point-single": counting.tiny_point_single,
    "tiny-point-pairs": counting.tiny_point_pairs,
    "tiny-point-fours": counting.tiny_point_fours,
    "tiny-point-scenes": counting.tiny_point_scenes,
    "tiny-point-range": counting.tiny_point_range,
    "tiny-point-range-crops": counting.tiny_point_range_crops,
    "tiny-mix-crops": counting.tiny_mix_crops,
    "tiny-mix-numbers": counting.tiny_mix_numbers,
    "tiny-mix-long": counting.tiny_mix_long,
    "tiny-sft": tiny.tiny_sft,
    "tiny-sft-grounded": tiny.tiny_sft_grounded,
    **{f"pretrain-{s}": (lambda s=s: released_pretrain(s)) for s in RELEASED},
    **{f"sft-{s}": (lambda s=s: released_sft(s)) for s in RELEASED},
}


def get(name: str):
    if name not in PRESETS:
        raise ConfigError(f"unknown training preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]()
