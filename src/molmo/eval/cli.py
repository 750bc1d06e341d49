"""`molmo eval`: score a model on benchmarks or on an own-data JSONL; writes OUT/metrics.json,
OUT/predictions.jsonl (resumable cache) and OUT/report.html.

    molmo eval --model PATH_OR_NAME --bench chartqa,docvqa --data-dir /data/benchmarks --out runs/eval1
    molmo eval --bench paper11 --data-dir /data/benchmarks --out runs/paper11        # embedded model
    molmo eval --model ckpt/ --data held_out.jsonl --out runs/own --batch-size 16 --limit 200
    molmo eval --data held_out.jsonl --out runs/own --judge-url http://127.0.0.1:8000/v1 --judge-model gpt-4o
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from molmo.cli_args import add_device_arguments, non_negative_int, positive_int
from molmo.eval.benchmarks import BENCHMARKS, SUITES, BenchmarkDataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="checkpoint folder or Hub id, e.g. allenai/Molmo-7B-D-0924 (default: the embedded model)")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit for a Hub id --model")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--bench", help=f"comma-separated benchmarks or suites: {', '.join(list(SUITES) + list(BENCHMARKS))}")
    src.add_argument("--data", help="own-data JSONL file to evaluate (format: docs/USER_GUIDE.md)")
    parser.add_argument("--data-dir", help="folder holding one sub-folder per benchmark (with --bench)")
    parser.add_argument("--out", required=True, help="output folder (predictions are cached here; reruns resume)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="items per batched generate call")
    parser.add_argument("--max-crops", type=positive_int, default=None,
                        help="override every item's crop budget (default: each benchmark's own; for own data the "
                             "model's, from its preprocessor_config.json)")
    parser.add_argument("--blind", action="store_true",
                        help="blind baseline: give the model a blank grey image of the same size instead")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="evaluate at most N items: with --data taken evenly across its tasks (the first of "
                             "each task, then the second, ...); with --bench the first N of each benchmark")
    parser.add_argument("--per-task", type=positive_int, default=None,
                        help="with --data: evaluate at most N items of each task (point, count, clock, caption, "
                             "and each qa metric)")
    parser.add_argument("--judge-url", default=None, help="OpenAI-compatible endpoint for caption F1 (default: exact judge)")
    parser.add_argument("--judge-model", default=None, help="model name for --judge-url")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="generation seed passed to every batch")
    add_device_arguments(parser)


def _judge(args):
    from molmo.eval.caption_f1 import ChatJudge, ExactJudge

    if args.judge_url:
        if not args.judge_model:
            raise ValueError("--judge-url needs --judge-model")
        return ChatJudge(args.judge_url, args.judge_model, api_key=os.environ.get("OPENAI_API_KEY"))
    return ExactJudge()


def run(args: argparse.Namespace, predictor=None) -> int:
    """`predictor` lets tests and callers pass their own (anything with `predict(items) -> list[str]`)."""
    from molmo.data.owndata import OwnDataError
    from molmo.eval import runner

    try:
        if args.bench and args.per_task:
            raise ValueError("--per-task applies to --data (own-data files); use --limit with --bench")
        if args.bench and not args.data_dir:
            raise ValueError("--bench needs --data-dir (the folder with one sub-folder per benchmark)")
        names = runner.expand_benchmark_names(args.bench) if args.bench else None
        if args.data:
            # refuse bad files (and missing or unreadable images) before loading the model
            items = runner.own_data_items(args.data, max_crops=args.max_crops, limit=args.limit,
                                          per_task=args.per_task)
            if not items:
                raise ValueError(f"{args.data}: no scorable lines")
        judge = _judge(args)
        if predictor is None:
            from molmo.serve.commands import announce

            predictor = runner.MolmoPredictor(args.model, revision=args.revision, dtype=args.dtype,
                                              device=args.device, seed=args.seed, quantize=args.quantize)
            announce(predictor.model)  # which model is scored, and its card's notice
        if args.blind:
            predictor = runner.BlindPredictor(predictor)
        if names:
            metrics = runner.evaluate_benchmarks(names, args.data_dir, predictor, args.out, args.batch_size,
                                                 args.limit, args.max_crops)
        else:
            metrics = runner.evaluate_own_data(args.data, predictor, args.out, args.batch_size, args.limit,
                                               args.max_crops, judge=judge, per_task=args.per_task)
    except (OwnDataError, BenchmarkDataError, ValueError, FileNotFoundError) as e:
        print(f"molmo eval: {e}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2))
    print(f"wrote {args.out}/metrics.json, predictions.jsonl, report.html")
    return 0
