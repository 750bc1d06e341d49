"""`molmo train PRESET [--key.sub=value …]` and `python -m molmo.train PRESET …` (the torchrun entry point).

    molmo train tiny-vision                       # dense vision pre-training of the embedded model's ViT
    molmo train tiny-pretrain --steps=200 --out_dir=runs/try
    torchrun --nproc-per-node 8 -m molmo.train sft-7b-d --init=runs/pretrain-7b-d/model
    molmo train tiny-sft --print-config        # show the resolved config and exit
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from molmo.train.config import ConfigError, apply_overrides

ACCEPTS_OVERRIDES = True  # the dispatcher passes unknown `--key=value` arguments as args.overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from molmo.train.presets import PRESETS
    parser.add_argument("preset", help=f"one of: {', '.join(sorted(PRESETS))}")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.epilog = "Any config field can be overridden as --field.sub=value (values parsed as JSON when possible)."


def run(args: argparse.Namespace) -> int:
    from molmo.train.presets import get
    from molmo.train.trainer import train
    from molmo.train.vision_pretrain import VisionPretrainConfig, train_vision
    try:
        cfg = apply_overrides(get(args.preset), getattr(args, "overrides", []))
    except ConfigError as e:
        print(f"molmo train: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(dataclasses.asdict(cfg), indent=2))
        return 0
    path = train_vision(cfg) if isinstance(cfg, VisionPretrainConfig) else train(cfg)
    print(f"done: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="molmo train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args, args.overrides = parser.parse_known_args(argv)
    return run(args)
