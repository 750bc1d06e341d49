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

    gen = sub.add_parser("generate", help="write N synthetic images + own-data JSONL")
    gen.add_argument("kind", help="generator kind: points, clocks, docs, captions")
    gen.add_argument("--n", type=int, required=True, help="number of images")
    gen.add_argument("--out", required=True, help="output folder (images/, data.jsonl, scenes.jsonl)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    gen.add_argument("--difficulty", default=None, help="generator difficulty, e.g. easy / normal / hard")
    gen.add_argument("--option", type=_parse_option, action="append", default=[], metavar="KEY=VALUE",
                     help="extra generator option (repeatable)")

    show = sub.add_parser("show", help="HTML gallery of an own-data file or generated folder")
    show.add_argument("source", help="own-data .jsonl or a folder with data.jsonl")
    show.add_argument("--out", required=True, help="HTML page to write")
    show.add_argument("--n", type=int, default=50)
    show.add_argument("--thumb", type=int, default=320, help="thumbnail size in pixels")
    show.add_argument("--sample", action="store_true", help="n random images instead of the first n")
    show.add_argument("--seed", type=int, default=0)

    val = sub.add_parser("validate", help="check an own-data JSONL file")
    val.add_argument("file")
    val.add_argument("--deep", action="store_true", help="decode every image in full (catches truncated files)")
    val.add_argument("--model", default=None,
                     help="checkpoint folder or Hub id: also report examples too long for its sequence length")
    val.add_argument("--sequence-length", type=int, default=None, help="with --model (default: its context)")
    val.add_argument("--max-crops", type=int, default=None, help="with --model (default: its crop budget)")

    dl = sub.add_parser("download", help="fetch PixMo sets into a data root, or the images of local tables (resumable)")
    dl.add_argument("tables", nargs="+", help="with --root: PixMo set names (pixmo-cap, pixmo-points, …); else "
                    "PixMo parquet/JSON/JSONL files or folders with image_url columns")
    dl.add_argument("--root", default=None, help="data root: tables to ROOT/pixmo/<set>/, images to ROOT/pixmo/images/")
    dl.add_argument("--out", default=None, help="image folder for local tables (files named sha256(url))")
    dl.add_argument("--workers", type=int, default=8)
    dl.add_argument("--retries", type=int, default=3)
    dl.add_argument("--timeout", type=float, default=5.0)
    dl.add_argument("--backoff", type=float, default=1.0)

    mix = sub.add_parser("mixture", help="print the sampling rates of a mixture preset")
    mix.add_argument("name", help="preset name, e.g. 3.2-synthetic or synthetic")
    mix.add_argument("--sizes", default=None, help="JSON file {dataset: number of examples}")


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
        print(f"molmo data mixture: {e}", file=sys.stderr)
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
