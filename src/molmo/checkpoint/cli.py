"""`molmo convert` and `molmo export` on the command line. The work is in `molmo.checkpoint.convert` and
`molmo.checkpoint.export`, imported when a command runs, so `--help` loads no torch.

    molmo convert --vision clip-vit-large-patch14-336 --llm Qwen2-7B --out molmo-7b-d-init --vit-num-layers 23
    molmo export runs/finetune/model out/my-molmo --base allenai/Molmo-7B-D-0924
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from molmo.cli_args import non_negative_int, positive_float, positive_int

COMMAND_TAKES_NAME = True
DEFAULT_MAX_SHARD_GB = 5.0  # molmo.checkpoint.export.DEFAULT_MAX_SHARD_BYTES / 1e9 (a test keeps them equal)


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    if name == "convert":
        parser.add_argument("--vision", required=True, type=Path, help="HF vision tower directory (CLIP/SigLIP/DINOv2)")
        parser.add_argument("--llm", required=True, type=Path, help="HF LLM directory (Qwen2/Olmo2/OLMoE)")
        parser.add_argument("--out", required=True, type=Path, help="output Molmo directory")
        parser.add_argument("--vit-num-layers", type=positive_int, default=None,
                            help="keep only the first N ViT layers (the released models keep 23 of CLIP's 24; "
                                 "default: all)")
        parser.add_argument("--vit-layers", default="-2,-9", help="ViT layers whose features are concatenated")
        parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the new connector weights")
        return
    parser.add_argument("model", help="checkpoint folder or Hub id to export")
    parser.add_argument("out", help="output folder (replaced atomically)")
    parser.add_argument("--base", default=None,
                        help="released base folder or Hub id whose processor files and remote code (*.py) to copy")
    parser.add_argument("--revision", default=None, help="Hub revision of MODEL")
    parser.add_argument("--base-revision", default=None, help="Hub revision of --base")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="cast the weights (default: keep the checkpoint's dtype)")
    parser.add_argument("--max-shard-size", type=positive_float, default=DEFAULT_MAX_SHARD_GB, help="GB per shard")


def run(args: argparse.Namespace) -> int:
    return _convert(args) if args.command == "convert" else _export(args)


def _convert(args: argparse.Namespace) -> int:
    from molmo.checkpoint.convert import build_molmo

    try:
        layers = tuple(int(x) for x in args.vit_layers.split(","))
    except ValueError:
        print(f"molmo convert: --vit-layers expects comma-separated integers, got {args.vit_layers!r}", file=sys.stderr)
        return 2
    out = build_molmo(args.vision, args.llm, args.out, vit_num_layers=args.vit_num_layers, vit_layers=layers,
                      seed=args.seed)
    print(f"wrote {out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import torch

    from molmo.checkpoint.export import ExportError, export
    from molmo.checkpoint.io import CheckpointError

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(args.dtype)
    try:
        out = export(args.model, args.out, base=args.base, revision=args.revision, base_revision=args.base_revision,
                     dtype=dtype, max_shard_bytes=int(args.max_shard_size * 1e9))
    except (ExportError, CheckpointError, FileNotFoundError) as e:
        print(f"molmo export: {e}", file=sys.stderr)
        return 2
    print(f"exported {args.model} -> {out} (released layout" + (f", processor and remote code from {args.base})"
                                                                if args.base else ")"))
    if "vision_backbone" in json.loads((out / "config.json").read_text()):
        print("note: its vision side is not the released CLIP ViT-L/14 setup, which transformers' remote code and "
              "vLLM build; only this package's loader reads the vision_backbone keys", file=sys.stderr)
    return 0
