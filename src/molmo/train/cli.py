"""`molmo train PRESET [--key.sub=value …]` and `python -m molmo.train PRESET …` (the torchrun entry point).

    molmo train tiny-vision                       # dense vision pre-training of the embedded model's ViT
    molmo train tiny-pretrain --steps=200 --out_dir=runs/try
    torchrun --nproc-per-node 8 -m molmo.train sft-7b-d --data_root=/data --init=runs/pretrain-7b-d/model
    molmo train sft-7b-d --data_root=/data --print-config    # the fully resolved config as JSON, then exit
    molmo train tiny-sft --pregenerate            # draw the run's generated images into the cache first, all CPUs

`--print-config` prints {"config": every field of the run's config, "resolved": what the run derives from it}:
the model architecture with the run's dropout, the pre-processor, each source's resolved path, and, when the
data is in place, the number of examples per source, the mixture's sampling rates and the number of steps
(for `epochs` > 0: `epochs * (n + global_batch - 1) // global_batch`); missing sources are listed instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from molmo.cli_args import non_negative_int
from molmo.train.config import ConfigError, TrainConfig, apply_overrides

ACCEPTS_OVERRIDES = True  # the dispatcher passes unknown `--key=value` arguments as args.overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from molmo.train.presets import PRESETS
    parser.add_argument("preset", help=f"one of: {', '.join(sorted(PRESETS))}")
    parser.add_argument("--print-config", action="store_true",
                        help="print the fully resolved config (JSON) and exit")
    parser.add_argument("--pregenerate", nargs="?", const=0, type=non_negative_int, default=None, metavar="WORKERS",
                        help="draw every generated image the run reads into the generated-image cache with WORKERS "
                             "processes (default: all CPUs), then exit (molmo.train.pregenerate)")
    parser.epilog = ("Any config field can be overridden as --field.sub=value (values parsed as JSON when possible); "
                     "--data_root=DIR is short for --data.root=DIR.")


def resolved(cfg: TrainConfig) -> dict[str, Any]:
    """What a run derives from its config (see the module docstring); reads the data when it is there."""
    from molmo.model.config import preset
    from molmo.preprocess.config import PreprocessorConfig
    from molmo.train.batches import DataError, missing_data, open_dataset, resolve_source, steps_for, validation_batches
    from molmo.train.inference_eval import missing_benchmarks

    out: dict[str, Any] = {}
    try:
        model = preset(cfg.model)
        llm = dataclasses.replace(model.llm, residual_dropout=cfg.residual_dropout,
                                  response_residual_dropout=cfg.response_residual_dropout,
                                  attention_dropout=cfg.attention_dropout)
        out["model"] = {"preset": cfg.model, **dataclasses.replace(model, llm=llm).to_dict()}
    except (KeyError, ValueError) as e:
        out["model"] = f"unresolved: {e}"
    init = Path(cfg.init) / "preprocessor_config.json" if cfg.init else None
    base = PreprocessorConfig.from_json(init) if init is not None and init.exists() else PreprocessorConfig.released()
    out["preprocessor"] = base.replace(**{k: tuple(v) if isinstance(v, list) else v
                                          for k, v in cfg.preprocessor.items()}).to_dict()
    root = cfg.data.root
    out["data_root"] = str(Path(root).resolve()) if root else ""
    out["sources"] = {s.name: {"path": resolve_source(s, root).path, **resolve_source(s, root).options}
                      for s in (*cfg.data.sources, *cfg.data.validation, *cfg.data.extra_validation)}
    missing = missing_data(cfg.data) + missing_benchmarks(cfg)
    if missing:
        out["missing"] = missing
        out["steps"] = (f"{cfg.epochs} * (n + {cfg.global_batch - 1}) // {cfg.global_batch}, n = training examples "
                        "(data missing)") if cfg.epochs > 0 else cfg.steps
        return out
    try:
        train = open_dataset(cfg)
    except (DataError, ValueError, OSError) as e:
        out["data_error"] = str(e)
        return out
    sizes = {n: len(c) for n, c in zip(train.names, train.collections)}
    out["examples"] = sizes
    out["rates"] = {n: round(r, 6) for n, r in train.rates.items()}
    out["steps"] = steps_for(cfg, sum(sizes.values()))
    if cfg.eval_every and (cfg.data.validation or cfg.data.extra_validation):
        out["validation_examples_per_eval"] = cfg.eval_examples or f"{cfg.eval_batches} batches of micro_batch x ranks"
        out["validation_batches_per_rank_on_1_rank"] = validation_batches(cfg, 1)
    return out


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
        config = dataclasses.asdict(cfg)
        extra = {} if isinstance(cfg, VisionPretrainConfig) else {"resolved": resolved(cfg)}
        print(json.dumps({"preset": args.preset, "config": config, **extra}, indent=2, default=str))
        return 0
    if args.pregenerate is not None:
        from molmo.train.pregenerate import cache_setting, pregenerate, with_cache
        cache, drawn, total = pregenerate(with_cache(cfg), workers=args.pregenerate or None)
        print(f"{total} images of the run in {cache.root} ({drawn} drawn now, {total - drawn} already there)")
        if not cache_setting(cfg):
            field = "data.generated_cache" if isinstance(cfg, TrainConfig) else "generated_cache"
            print(f"the preset draws its images afresh: train with --{field}=auto to read these")
        return 0
    from molmo.train.runs import RunFolderBusy
    try:
        path = train_vision(cfg) if isinstance(cfg, VisionPretrainConfig) else train(cfg)
    except RunFolderBusy as e:
        print(f"molmo train: {e}", file=sys.stderr)
        return 2
    print(f"done: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="molmo train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args, args.overrides = parser.parse_known_args(argv)
    return run(args)
