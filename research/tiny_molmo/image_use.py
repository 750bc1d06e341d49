"""Image use by task: how much a training run's checkpoint leans on the image, per data source, long before its
generated answers show it.

For each validation source of the run's config, the answer tokens' loss (teacher-forced, as the trainer's
validation loss) with each example's own image and with the image of the next example in the batch. The gap is
what the image is worth to the model on that task; on the plateau where answers come from the language prior it
is about zero. Run it on a training run as it goes (it reads the newest complete checkpoint, or `--step`):

    python -m research.tiny_molmo.image_use ~/.cache/molmo/runs/tiny-ground --examples 64
    python -m research.tiny_molmo.image_use RUN --kinds count point qa   # each source split by annotation kind

A point scene's answers mix kinds (a point list, "There are N", a bare count) whose image dependence differs;
`--kinds` scores each kind on its own (a source without a kind skips that row).

Swapping images needs the same image layout across a batch, so the run must train at one crop (`max_crops 1`:
every image is the global view plus one crop).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import DefaultLoadPlanner

from molmo.train.batches import Collator, DataError, MixtureDataset
from molmo.train.checkpointing import complete_checkpoints
from molmo.train.config import TrainConfig, from_dict
from molmo.train.setup import build_model_and_processor
from molmo.train.trainer import _autocast, micro_batch_loss

SWAPPED = ("images", "image_masks")  # what moves to the next example; the token layout stays


def checkpoint_at(run: Path, step: int | None = None) -> Path:
    """The run's complete checkpoint at `step`, or its newest."""
    found = complete_checkpoints(run / "checkpoints")
    if step is not None:
        found = [p for p in found if int(p.name[5:]) == step]
    if not found:
        raise SystemExit(f"no complete checkpoint{'' if step is None else f' at step {step}'} in {run}/checkpoints")
    return found[-1]


def load_checkpoint_weights(model: torch.nn.Module, checkpoint: Path) -> None:
    state = model.state_dict()
    dcp.load({"model": state}, checkpoint_id=str(checkpoint), planner=DefaultLoadPlanner(allow_partial_load=True))
    model.load_state_dict(state)


def run_config(run: Path) -> TrainConfig:
    return from_dict(TrainConfig, json.loads((run / "config.json").read_text()))


def model_at_step(cfg: TrainConfig, run: Path, step: int | None = None) -> tuple:
    """(model, processor, tokenizer folder, checkpoint) of the run's checkpoint at `step` (or its newest)."""
    checkpoint = checkpoint_at(run, step)
    model, processor, tokenizer_dir = build_model_and_processor(cfg)
    load_checkpoint_weights(model, checkpoint)
    return model, processor, tokenizer_dir, checkpoint


@torch.no_grad()
def answer_loss(model, batch: dict[str, torch.Tensor], autocast) -> float:
    ce, _, weight = micro_batch_loss(model, batch, 0.0, autocast)
    return float(ce) / max(float(weight), 1e-9)


def image_use(run: Path, examples: int = 64, batch: int = 16, step: int | None = None,
              kinds: tuple[str, ...] = ()) -> dict:
    cfg = run_config(run)
    if (cfg.data.max_crops or 0) != 1:
        raise SystemExit(f"{run} trains at max_crops {cfg.data.max_crops}; swapping images needs max_crops 1")
    model, processor, _, checkpoint = model_at_step(cfg, run, step)
    model.eval()
    autocast, collator = _autocast(cfg, torch.device("cpu")), Collator(cfg.data.sequence_length)
    scores = {"step": int(checkpoint.name[5:])}
    # a run without validation sources (the grounding check's) is scored on its training sources' first items
    sources = cfg.data.validation or cfg.data.sources
    if kinds:
        sources = [dataclasses.replace(s, name=f"{s.name}/{k}", annotation_kinds=(k,)) for s in sources for k in kinds]
    for source in sources:
        data = MixtureDataset((source,), cfg.data, processor, cfg.data.seed)
        keys = data.sampler.iterate(0)
        own = swapped = 0.0
        try:
            for _ in range(examples // batch):
                b = collator([data[next(keys)] for _ in range(batch)])
                own += answer_loss(model, b, autocast)
                swapped += answer_loss(model, {**b, **{k: b[k].roll(1, 0) for k in SWAPPED if k in b}}, autocast)
        except DataError:  # --kinds: this source has no annotation of the kind
            continue
        n = examples // batch
        scores[source.name] = {"own_image": round(own / n, 4), "next_image": round(swapped / n, 4),
                               "gap": round((swapped - own) / n, 4)}
    return scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a training run folder (config.json, checkpoints/)")
    p.add_argument("--examples", type=int, default=64, help="validation examples per source (default: 64)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--step", type=int, default=None, help="this checkpoint instead of the newest")
    p.add_argument("--kinds", nargs="+", default=(), help="score each source per annotation kind (count point qa)")
    p.add_argument("--log", type=Path, default=None, help="append the scores as one JSON line here")
    args = p.parse_args()
    scores = image_use(args.run, args.examples, args.batch, args.step, tuple(args.kinds))
    print(f"step {scores['step']}")
    print(f"{'source':28s} {'own image':>10s} {'next image':>11s} {'gap':>7s}")
    for name, s in scores.items():
        if name != "step":
            print(f"{name:28s} {s['own_image']:10.4f} {s['next_image']:11.4f} {s['gap']:7.4f}")
    if args.log:
        with open(args.log, "a") as f:
            f.write(json.dumps(scores) + "\n")


if __name__ == "__main__":
    main()
