"""Package a trained tiny model as the embedded default: bf16 safetensors + config, tokenizer and
pre-processor config in `src/molmo/assets/tiny-molmo/`, plus one PNG with the curves of all the stages.

    python scripts/ship_tiny_molmo.py runs/tiny-sft/model            # after the five stages of STAGES
    python scripts/ship_tiny_molmo.py runs/tiny-sft-grounded/model --chain grounded   # the candidate's seven
    python scripts/ship_tiny_molmo.py runs/tiny-mix-crops/model --chain mix   # counting + pointing curricula
    python scripts/ship_tiny_molmo.py runs/tiny-mix-long/model --chain mix-long   # ... and the longer mixture
    python scripts/ship_tiny_molmo.py runs/tiny-sft/model --out /tmp/m --runs runs
    python scripts/ship_tiny_molmo.py runs/tiny-sft --latest     # the newest checkpoint of a run still in progress

A release script beside the library, not part of it: run it from the repository root (with the checkout's
`src/` importable, e.g. the editable install).

The weights are stored in bf16 (half the size); `Molmo.from_pretrained` loads them as float32.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from molmo.checkpoint.integrity import write_checksums
from molmo.checkpoint.io import load_molmo, save_state

ARTIFACTS = Path(__file__).resolve().parents[1] / "training" / "tiny-molmo"  # finished stages, with their metrics
STAGES = (("tiny-vision", "dense vision pre-training"), ("tiny-vision-regions", "+ per-region heads"),
          ("tiny-vision-clocks", "+ clock-face time, global views"), ("tiny-pretrain", "caption pre-training"),
          ("tiny-sft", "multitask fine-tuning"))
GROUNDED_STAGES = STAGES[:-1] + (("tiny-ground", "grounding, one crop"), ("tiny-ground-counts", "counting"),
                                 ("tiny-sft-grounded", "the mixture, one crop"))
MIX_STAGES = GROUNDED_STAGES[:-1] + (
    ("tiny-bind-circles", "counting circles, 0-4 a group"), ("tiny-point-single", "pointing, one target"),
    ("tiny-point-pairs", "pointing, two targets"), ("tiny-point-fours", "pointing, four targets"),
    ("tiny-point-scenes", "pointing, generated scenes"), ("tiny-point-range", "pointing, 0-10 a group"),
    ("tiny-mix-crops", "counting, pointing, clocks, charts; four crops"))
MIX_LONG_STAGES = MIX_STAGES + (("tiny-mix-numbers", "the mixture, bare counts"),
                                 ("tiny-mix-long", "the mixture, 3,000 steps"))
CHAINS = {"v3": STAGES, "grounded": GROUNDED_STAGES, "mix": MIX_STAGES, "mix-long": MIX_LONG_STAGES}
PANELS_PER_ROW = 5


def _read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


VISION_HEADS = ("part", "colour", "shape", "bar", "centre", "value", "offset", "position", "hands", "face_time",
                "hour", "minute", "count")


def _running_mean(values, window: int = 8):
    import numpy as np
    v = np.asarray(values, dtype=float)
    c = np.cumsum(np.insert(v, 0, 0.0))
    lo = np.maximum(np.arange(1, len(v) + 1) - window, 0)
    return (c[1:] - c[lo]) / (np.arange(1, len(v) + 1) - lo)


def stage_metrics(runs: Path, name: str) -> list[dict]:
    """A stage's metrics rows: from its run folder under `runs`, else from its committed artifact."""
    return _read_metrics(runs / name / "metrics.jsonl") or _read_metrics(ARTIFACTS / name / "metrics.jsonl")


def plot_stages(runs: Path, out: Path, stages=STAGES) -> None:
    """Training (and validation) loss of each stage, side by side."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = min(len(stages), PANELS_PER_ROW)
    rows_of_panels = -(-len(stages) // cols)
    fig, axes = plt.subplots(rows_of_panels, cols, figsize=(5 * cols, 3.6 * rows_of_panels), squeeze=False)
    for ax in axes.flat[len(stages):]:
        ax.set_visible(False)
    for ax, (name, title) in zip(axes.flat, stages):
        rows = stage_metrics(runs, name)
        if rows and "part" in rows[0]:  # vision stage: each head relative to its first value, smoothed
            for i, head in enumerate(VISION_HEADS):
                pts = [(r["step"], r[head]) for r in rows if head in r]
                if pts:
                    steps, values = zip(*pts)
                    ax.plot(steps, _running_mean(values) / values[0], label=head, lw=1, color=plt.cm.tab20(i))
            ax.set_yscale("log")
            ax.set_ylabel("head loss / its step-0 value")
            rows = []
        train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
        val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
        if train:
            ax.plot(*zip(*train), label="train loss", lw=1)
        if val:
            ax.plot(*zip(*val), "o-", label="validation loss", ms=3)
        ax.set_title(f"{name}: {title}")
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def export_latest(run_dir: Path) -> Path:
    """Export the newest resume checkpoint of a (possibly running) training run to run_dir/model-latest."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import DefaultLoadPlanner
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    from molmo.train import checkpointing
    from molmo.train.config import TrainConfig, from_dict
    from molmo.train.setup import build_model_and_processor
    cfg = from_dict(TrainConfig, json.loads((run_dir / "config.json").read_text()))
    path = checkpointing.latest(run_dir)
    if path is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint yet")
    model, processor, tokenizer_dir = build_model_and_processor(cfg)
    state = {"model": get_model_state_dict(model)}
    dcp.load(state, checkpoint_id=str(path), planner=DefaultLoadPlanner(allow_partial_load=True))
    set_model_state_dict(model, state["model"])
    print(f"exporting {path}")
    return checkpointing.export(run_dir / "model-latest", model, tokenizer_dir, processor, rank=0)


def ship(model_dir: Path, out: Path, runs: Path | None = None, stages=STAGES) -> Path:
    model, config = load_molmo(model_dir)
    extra = {name: model_dir / name for name in ("tokenizer.json", "preprocessor_config.json")}
    missing = [str(p) for p in extra.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{model_dir} lacks {missing}; ship an exported training checkpoint")
    for kept in ("MODEL_CARD.md", "model_info.json"):  # the folder is replaced whole: keep the card and its verdict
        if (out / kept).exists():
            extra[kept] = out / kept
    state = {k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}
    save_state(state, config, out, extra)
    # the checksums cover what loading reads; the card and its verdict stay editable after a release
    write_checksums(out, ["model.safetensors", "config.json", "tokenizer.json", "preprocessor_config.json"])
    if runs is not None:
        plot_stages(runs, out / "training_curve.png", stages)
    return out


def main(argv: list[str] | None = None) -> int:
    from molmo.assets import DEFAULT_MODEL_DIR
    parser = argparse.ArgumentParser(prog="python scripts/ship_tiny_molmo.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--runs", type=Path, default=None,
                        help="folder with the stages' run folders (default: $MOLMO_RUNS or ~/.cache/molmo/runs)")
    parser.add_argument("--chain", choices=sorted(CHAINS), default="v3",
                        help="the stages that made the model, for the curves (default: v3, the shipped chain)")
    parser.add_argument("--latest", action="store_true", help="model_dir is a run folder: ship its newest checkpoint")
    args = parser.parse_args(argv)
    model_dir = export_latest(args.model_dir) if args.latest else args.model_dir
    from molmo.train.runs import runs_root
    path = ship(model_dir, args.out, args.runs or runs_root(), CHAINS[args.chain])
    size = sum(f.stat().st_size for f in path.iterdir()) / 2**20
    print(f"shipped {args.model_dir} -> {path} ({size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
