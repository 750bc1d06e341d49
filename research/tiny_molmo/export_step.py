"""A training run's checkpoint at some step, mid-run, as a model folder (our format: safetensors, config,
tokenizer, the run's preprocessor config) that `molmo eval` and `molmo ask` read, so a long stage can be scored
while it trains:

    python -m research.tiny_molmo.export_step ~/.cache/molmo/runs/tiny-ground /tmp/tiny-ground-1500 --step 1500
    python -m molmo.cli eval --model /tmp/tiny-ground-1500 --data ~/.cache/molmo/runs/heldout/data.jsonl --out ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from molmo.train import checkpointing
from research.tiny_molmo.image_use import model_at_step, run_config


def export_step(run: Path, out: Path, step: int | None = None) -> Path:
    model, processor, tokenizer_dir, _ = model_at_step(run_config(run), run, step)
    out.mkdir(parents=True, exist_ok=True)
    return checkpointing.export(out, model, tokenizer_dir, processor, rank=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a training run folder (config.json, checkpoints/)")
    p.add_argument("out", type=Path, help="the model folder to write")
    p.add_argument("--step", type=int, default=None, help="this checkpoint instead of the newest")
    args = p.parse_args()
    print(export_step(args.run, args.out, args.step))


if __name__ == "__main__":
    main()
