"""Micro-batches grouped by length (the trainer's StepCollator) against micro-batches in stream order: the padded
positions each step computes, its forward+backward time and its loss, on a preset's real steps, in one run.

    python benchmarks/bench_length_grouping.py [--preset tiny-ground] [--steps 4] [--repeats 2]

Both groupings hold the same examples and the loss is normalised over the whole step, so the two losses agree
(printed); only the padding differs. The model is the embedded one (the presets' architecture); the preset
gives the data, the crop budget, the batch and the micro-batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from molmo.api import DEFAULT_MODEL_DIR
from molmo.train.batches import Collator, StepCollator, open_dataset
from molmo.train.presets import get
from molmo.train.setup import build_model_and_processor
from molmo.train.trainer import _autocast, micro_batch_loss


def step_loss(model, batches, autocast) -> tuple[float, float]:
    """(loss over the step, seconds for its forward and backward), as the trainer normalises it."""
    weight = sum(((b["labels"] >= 0) * b["loss_masks"]).sum().float() for b in batches)
    t0 = time.perf_counter()
    total = 0.0
    for b in batches:
        ce, _, _ = micro_batch_loss(model, b, 0.0, autocast)
        (ce / weight).backward()
        total += float(ce.detach())
    return total / float(weight), time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny-ground")
    p.add_argument("--steps", type=int, default=4, help="the preset's first N steps")
    p.add_argument("--repeats", type=int, default=2, help="timed passes over the steps per grouping")
    args = p.parse_args()
    cfg = dataclasses.replace(get(args.preset), init=str(DEFAULT_MODEL_DIR))
    model, processor, _ = build_model_and_processor(cfg)
    data = open_dataset(cfg)
    data.processor = processor
    keys = data.sampler.iterate(0)
    steps = [[data[next(keys)] for _ in range(cfg.global_batch)] for _ in range(args.steps)]
    in_order = Collator(cfg.data.sequence_length)
    groupings = {
        "stream order": lambda ex: [in_order(ex[i:i + cfg.micro_batch]) for i in range(0, len(ex), cfg.micro_batch)],
        "grouped by length": StepCollator(cfg.data.sequence_length, cfg.micro_batch)}
    autocast = _autocast(cfg, torch.device("cpu"))
    rows = {name: {"positions": 0, "tokens": 0, "seconds": 0.0, "loss": []} for name in groupings}
    for _ in range(args.repeats):
        for examples in steps:
            for name, group in groupings.items():  # alternating, so load on the machine falls on both alike
                batches = group(examples)
                model.zero_grad(set_to_none=True)
                loss, seconds = step_loss(model, batches, autocast)
                r = rows[name]
                r["seconds"] += seconds
                if len(r["loss"]) < len(steps):
                    r["loss"].append(loss)
                    r["positions"] += sum(b["input_ids"].numel() for b in batches)
                    r["tokens"] += sum(int((b["input_ids"] >= 0).sum()) for b in batches)
    base = rows["stream order"]
    print(f"{args.preset}: {args.steps} steps of {cfg.global_batch} examples, micro-batch {cfg.micro_batch}, "
          f"max_crops {cfg.data.max_crops}, {args.repeats} timed passes")
    print("| grouping | positions computed | of them padding | s per step (fwd+bwd) | speed-up "
          "| loss, mean over steps |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        per_step = r["seconds"] / (args.repeats * args.steps)
        print(f"| {name} | {r['positions']} | {1 - r['tokens'] / r['positions']:.1%} | {per_step:.2f} | "
              f"{base['seconds'] / r['seconds']:.2f}x | {sum(r['loss']) / len(r['loss']):.5f} |")


if __name__ == "__main__":
    main()
