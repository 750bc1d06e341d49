"""`molmo finetune`: fine-tune a Molmo checkpoint (default: the embedded model) on your own-data JSONL, with
LoRA adapters or in full, through the normal trainer (resume, atomic checkpoints, one line per step, curve).

    molmo finetune --data my.jsonl --lora                       # rank-8 adapters on the embedded model
    molmo finetune --data my.jsonl --val my_val.jsonl --init /models/Molmo-7B-D-0924 --lora --rank 16 --steps 500
    molmo finetune --data my.jsonl --steps 100 --lr 1e-5        # full fine-tuning
    molmo finetune --data my.jsonl --init allenai/Molmo-7B-D-0924 --lora   # a Hub id works as --init

Writes OUT/model (merged, loads with `Molmo.from_pretrained(OUT/model)` or `--model OUT/model`), OUT/adapter
(LoRA only, PEFT format: `--adapter OUT/adapter` with the base), OUT/loss.png and OUT/metrics.jsonl.
Examples are never cut: the default sequence length is the model's context, and before training the log says
which examples keep their answers whole with fewer crops, which keep only the question-answer pairs that fit,
and which are skipped (`molmo data validate --model`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from molmo.cli_args import non_negative_int, positive_float, positive_int

if TYPE_CHECKING:  # imported where used, so `molmo finetune --help` does not load torch
    from molmo.train.config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="own-data JSONL to train on (format: docs/USER_GUIDE.md; check it with "
                             "`molmo data validate`)")
    parser.add_argument("--val", default=None, help="own-data JSONL for the validation loss (default: none)")
    parser.add_argument("--init", default=None,
                        help="checkpoint folder or Hub id, e.g. allenai/Molmo-7B-D-0924 (default: the embedded model)")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit for a Hub id --init")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    parser.add_argument("--rank", type=positive_int, default=8, help="LoRA rank (with --lora)")
    parser.add_argument("--alpha", type=positive_float, default=16.0,
                        help="LoRA scale numerator: updates are scaled by alpha / rank (with --lora)")
    parser.add_argument("--steps", type=positive_int, default=200, help="optimizer steps")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="peak learning rate (default: 1e-4 with --lora, else 1e-5)")
    parser.add_argument("--warmup", type=non_negative_int, default=20, help="linear warm-up steps")
    parser.add_argument("--batch", type=positive_int, default=8, help="examples per optimizer step")
    parser.add_argument("--micro-batch", type=positive_int, default=None,
                        help="examples per forward pass; gradients accumulate up to --batch (default: --batch)")
    parser.add_argument("--max-crops", type=positive_int, default=None,
                        help="high-resolution crop budget per image (default: the checkpoint's)")
    parser.add_argument("--sequence-length", type=positive_int, default=None,
                        help="tokens per example (default: the model's context); a longer example keeps its "
                             "answers whole with fewer crops or fewer question-answer pairs, or is skipped and "
                             "reported")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="training precision")
    parser.add_argument("--out", default="runs/finetune",
                        help="run folder: OUT/model, OUT/adapter, OUT/metrics.jsonl, OUT/loss.png; a rerun resumes")


def build_config(args: argparse.Namespace) -> TrainConfig:
    from molmo.data.owndata import read_own_data

    for path in (args.data, args.val):  # first, before torch loads or a Hub download starts
        if path:
            read_own_data(path, deep=True)  # every line and every image, naming file, line and reason
    from molmo.assets import DEFAULT_MODEL_DIR
    from molmo.checkpoint.hub import HubError, resolve_model
    from molmo.train.config import ConfigError, DataConfig, DataSource, GroupOptim, OptimConfig, TrainConfig
    from molmo.train.fit import own_data_plan, processor_for_checkpoint
    from molmo.checkpoint.lora import LoraConfig

    try:
        init = resolve_model(args.init, args.revision) if args.init else DEFAULT_MODEL_DIR
    except HubError as e:
        raise ConfigError(str(e)) from None
    if not (init / "config.json").exists():
        raise ConfigError(f"--init {init} is not a checkpoint folder (no config.json)")
    processor, context, default_crops = processor_for_checkpoint(init)
    max_crops = args.max_crops or default_crops
    length = args.sequence_length or context
    if length > context:
        raise ConfigError(f"--sequence-length {length} exceeds the model's context of {context} tokens")
    for path, seed in ((args.data, DataConfig.seed), (args.val, DataConfig.seed + 1)):
        if path:
            examples = read_own_data(path, deep=True)  # every line and every image now, naming file, line, reason
            # answers are never cut: say up front which examples get fewer crops or are skipped
            plan = own_data_plan(path, processor, max_crops=max_crops, sequence_length=length, examples=examples,
                                 seed=seed)
            print(f"{path}: {plan.summary()}", flush=True)
    lr = args.lr if args.lr is not None else (1e-4 if args.lora else 1e-5)
    group = GroupOptim(lr, args.warmup)
    val = (DataSource("val", "owndata", path=args.val),) if args.val else ()
    return TrainConfig(
        init=str(init),
        data=DataConfig(sources=(DataSource("own", "owndata", path=args.data),), validation=val, stage="sft",
                        sequence_length=length, max_crops=max_crops),
        optim=OptimConfig(connector=group, vit=group, llm=group, freeze_embedding=False),
        lora=LoraConfig(rank=args.rank, alpha=args.alpha, base_model=str(args.init or init)) if args.lora else LoraConfig(),
        steps=args.steps, global_batch=args.batch, micro_batch=args.micro_batch or args.batch,
        residual_dropout=0.0, response_residual_dropout=0.0, precision=args.precision, out_dir=args.out,
        save_every=max(1, min(100, args.steps)), eval_every=max(1, args.steps // 4) if val else 0,
        eval_batches=4)


def run(args: argparse.Namespace) -> int:
    from molmo.data.owndata import OwnDataError
    from molmo.train.config import ConfigError

    try:
        cfg = build_config(args)
    except (ConfigError, OwnDataError, FileNotFoundError) as e:
        print(f"molmo finetune: {e}", file=sys.stderr)
        return 2
    from molmo.train.trainer import train

    path = train(cfg)
    print(f"done: {path}" + (f" (adapter: {Path(cfg.out_dir) / 'adapter'})" if cfg.lora.rank else ""))
    return 0
