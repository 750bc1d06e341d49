"""`molmo data`: generate synthetic PixMo-style data, show a gallery, validate own data, download images.

    molmo data generate points --n 1000 --out data/points [--seed 0] [--workers 4] [--difficulty hard]
    molmo data generate docs --n 100 --out data/docs --option kind=chart
    molmo data show data/points --out points.html [--n 50] [--sample]
    molmo data validate train.jsonl              # prints file:line: reason for every problem, exit 1 if any
    molmo data validate train.jsonl --deep       # also decodes every image in full
    molmo data validate train.jsonl --model allenai/Molmo-7B-D-0924   # + examples too long for the model
    molmo data download --root /data pixmo-cap pixmo-points pixmo-points-eval   # hub tables + images (layout)
    molmo data download pixmo-points/train.parquet --out images/ [--workers 16] [--retries 3] [--timeout 5]
    molmo data mixture 3.2-synthetic [--sizes sizes.json]   # rates of a mixture preset
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from molmo.cli_args import GUIDE_HINT, non_negative_float, non_negative_int, positive_float, positive_int

# Kept here (not imported from the generators / mixture modules) so `molmo data --help` loads nothing heavy;
# tests check they match.
GENERATOR_KINDS = ("points", "clocks", "docs", "captions")
MIXTURES = ("3.2-synthetic", "synthetic")


def _parse_option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)  # numbers, booleans, lists
    except json.JSONDecodeError:
        return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="{generate,show,validate,download,mixture}")

    def command(name: str, help_: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=description, epilog=GUIDE_HINT)

    gen = command("generate", "write N synthetic images + own-data JSONL",
                  "Generate N synthetic PixMo-style images with their annotations: OUT/images/, OUT/data.jsonl "
                  "(own-data JSONL, ready for `molmo finetune` / `molmo eval`) and OUT/scenes.jsonl.")
    gen.add_argument("kind", choices=GENERATOR_KINDS, help="generator kind")
    gen.add_argument("--n", type=positive_int, required=True, help="number of images")
    gen.add_argument("--out", required=True, help="output folder (images/, data.jsonl, scenes.jsonl)")
    gen.add_argument("--seed", type=non_negative_int, default=0, help="random seed (same seed, same data)")
    gen.add_argument("--workers", type=positive_int, default=None, help="processes (default: CPU count)")
    gen.add_argument("--difficulty", default=None, help="generator difficulty, e.g. easy / normal / hard")
    gen.add_argument("--option", type=_parse_option, action="append", default=[], metavar="KEY=VALUE",
                     help="extra generator option (repeatable)")

    show = command("show", "HTML gallery of an own-data file or generated folder",
                   "Write one self-contained HTML page with thumbnails of the images and their annotations "
                   "(points drawn, questions and answers listed).")
    show.add_argument("source", help="own-data .jsonl or a folder with data.jsonl")
    show.add_argument("--out", required=True, help="HTML page to write")
    show.add_argument("--n", type=positive_int, default=50, help="number of images shown")
    show.add_argument("--thumb", type=positive_int, default=320, help="thumbnail size in pixels")
    show.add_argument("--sample", action="store_true", help="n random images instead of the first n")
    show.add_argument("--seed", type=non_negative_int, default=0, help="random seed for --sample")

    val = command("validate", "check an own-data JSONL file",
                  "Check every line of an own-data JSONL file (fields, images, points) and print each problem as "
                  "FILE:LINE: reason; exit status 1 if there is any. The format is in the user guide.")
    val.add_argument("file", help="own-data JSONL file")
    val.add_argument("--deep", action="store_true", help="decode every image in full (catches truncated files)")
    val.add_argument("--model", default=None,
                     help="checkpoint folder or Hub id: also report examples too long for its sequence length")
    val.add_argument("--sequence-length", type=positive_int, default=None, help="with --model (default: its context)")
    val.add_argument("--max-crops", type=positive_int, default=None, help="with --model (default: its crop budget)")

    dl = command("download", "fetch PixMo sets into a data root, or the images of local tables (resumable)",
                 "With --root: download PixMo sets (tables and images) into ROOT/pixmo/. Else: download every "
                 "image URL of local PixMo tables into --out, each file named by the sha256 of its URL (where the "
                 "PixMo readers look). Files already there are skipped, so a rerun resumes; failures are listed in "
                 "missing.jsonl.")
    dl.add_argument("tables", nargs="+", help="with --root: PixMo set names (pixmo-cap, pixmo-points, …); else "
                    "PixMo parquet/JSON/JSONL files or folders with image_url columns")
    dl.add_argument("--root", default=None, help="data root: tables to ROOT/pixmo/<set>/, images to ROOT/pixmo/images/")
    dl.add_argument("--out", default=None, help="image folder for local tables (files named sha256(url))")
    dl.add_argument("--workers", type=positive_int, default=8, help="parallel downloads")
    dl.add_argument("--retries", type=non_negative_int, default=3, help="retries per image after a network error")
    dl.add_argument("--timeout", type=positive_float, default=5.0, help="seconds per request")
    dl.add_argument("--backoff", type=non_negative_float, default=1.0,
                    help="seconds before the first retry (doubling after each)")

    mix = command("mixture", "print the sampling rates of a mixture preset",
                  "Print each dataset's share of a mixture preset. The released one, 3.2-synthetic, has the sizes "
                  "it needs built in; others (e.g. synthetic) need --sizes with every member's number of examples.")
    mix.add_argument("name", choices=MIXTURES, help="mixture preset, e.g. 3.2-synthetic")
    mix.add_argument("--sizes", default=None, help='JSON file {"dataset": number of examples, ...}')


def _generate(args) -> int:
    from molmo.data.generators.base import generate_dataset

    if args.n <= 0:
        print(f"molmo data generate: --n must be positive, got {args.n}", file=sys.stderr)
        return 2
    options = dict(args.option)
    if args.difficulty is not None:
        options["difficulty"] = args.difficulty
    try:
        path = generate_dataset(args.kind, args.n, args.out, seed=args.seed, workers=args.workers, **options)
    except (ValueError, TypeError) as e:
        print(f"molmo data generate: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _show(args) -> int:
    from molmo.data.gallery import build_gallery
    from molmo.data.owndata import OwnDataError

    try:
        out = build_gallery(args.source, args.out, n=args.n, thumb=args.thumb, seed=args.seed, sample=args.sample)
    except (OwnDataError, FileNotFoundError, ValueError) as e:
        print(f"molmo data show: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


def _validate(args) -> int:
    from molmo.data.owndata import validate_own_data

    problems = validate_own_data(args.file, deep=args.deep)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    if getattr(args, "model", None):
        from molmo.checkpoint.hub import HubError, resolve_model
        from molmo.train.fit import own_data_plan, processor_for_checkpoint

        try:
            processor, context, crops = processor_for_checkpoint(resolve_model(args.model))
        except (HubError, ValueError) as e:
            print(f"molmo data validate: {e}", file=sys.stderr)
            return 2
        plan = own_data_plan(args.file, processor, max_crops=args.max_crops or crops,
                             sequence_length=args.sequence_length or context)
        print(plan.summary())
        if plan.skipped:
            return 1
    print(f"{args.file}: OK")
    return 0


def _download(args) -> int:
    from molmo.data.download import DownloadConfig, download_images, download_pixmo, urls_from_tables
    from molmo.data.pixmo import PixMoError

    cfg = DownloadConfig(retries=args.retries, timeout=args.timeout, backoff=args.backoff, workers=args.workers)
    if args.root:
        failed = 0
        for name in args.tables:
            try:
                report = download_pixmo(name, args.root, cfg)
            except (PixMoError, ValueError, OSError) as e:
                print(f"molmo data download: {name}: {e}", file=sys.stderr)
                return 2
            if report is not None:
                failed += len(report.failed)
                print(f"{name}: images downloaded {report.downloaded}, already present {report.skipped}, "
                      f"failed {len(report.failed)}")
            else:
                print(f"{name}: tables in {Path(args.root) / 'pixmo'}")
        return 0 if not failed else 1  # failed images are left out of training (recipe-spec §2.1)
    if not args.out:
        print("molmo data download: give --root (PixMo set names) or --out (image folder for local tables)",
              file=sys.stderr)
        return 2
    try:
        items = urls_from_tables(args.tables)
    except (PixMoError, ValueError) as e:
        print(f"molmo data download: {e}", file=sys.stderr)
        return 2
    report = download_images(items, args.out, cfg)
    print(f"downloaded {report.downloaded}, already present {report.skipped}, failed {len(report.failed)}"
          + (f" (listed in {Path(args.out) / 'missing.jsonl'})" if report.failed else ""))
    return 0 if report.ok else 1


def _mixture(args) -> int:
    from molmo.data.mixture import preset_mixture

    try:
        mix = preset_mixture(args.name)
        sizes = json.loads(Path(args.sizes).read_text()) if args.sizes else {}
        rates = mix.rates(sizes, drop_missing=True)
    except (ValueError, OSError) as e:
        hint = "" if args.sizes else (f"; give every member's size with --sizes FILE, e.g. "
                                      f"{json.dumps({m.name: 1000 for g in mix.groups for m in g.members})}")
        print(f"molmo data mixture: {e}{hint}", file=sys.stderr)
        return 2
    for g in mix.groups:
        for m in g.members:
            rate = rates.get(m.name)
            print(f"{g.name:10s} {m.name:36s} {'-' if rate is None else f'{100 * rate:6.2f} %'}")
    return 0


COMMANDS = {"generate": _generate, "show": _show, "validate": _validate, "download": _download, "mixture": _mixture}


def run(args: argparse.Namespace) -> int:
    return COMMANDS[args.data_command](args)


__all__ = ["add_arguments", "run"]
