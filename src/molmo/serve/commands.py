"""The one-shot commands: `molmo ask | point | count | caption | demo`.

    molmo ask photo.jpg "What is in this picture?"
    molmo point photo.jpg "red circle" --draw out.png
    molmo count photo.jpg "cats" --json
    molmo caption photo.jpg --length 30 --model path/to/checkpoint
    molmo demo --out demo-out            # bundled sample images -> answers + overlays

The answer streams to the terminal as it is generated (unless --json). Every command runs on the embedded
model unless --model names a checkpoint directory (our format or a released HF-format Molmo).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from molmo.assets import SAMPLES_DIR
from molmo.cli_args import add_device_arguments, non_negative_float, non_negative_int, positive_int
from molmo.image.loading import ImageError
from molmo.text.context import PromptTooLongError

if TYPE_CHECKING:  # imported where used, so `--help` does not load torch
    from molmo.api import Answer, Molmo

COMMAND_TAKES_NAME = True
# (sample file, command, argument) run by `molmo demo`
DEMO_QUESTIONS = [
    ("shapes.png", "point", "yellow shapes"),
    ("shapes.png", "count", "gray hexagons"),
    ("clock.png", "ask", "Read the time on this clock."),
    ("chart.png", "ask", "Which bar is the highest?"),
    ("shapes.png", "caption", None),
]


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    if name == "demo":
        parser.add_argument("--out", default="molmo-demo", help="folder for the overlays")
    else:
        parser.add_argument("image", help="image file")
        if name == "ask":
            parser.add_argument("question", help="the question, e.g. 'What is in this picture?'")
        elif name in ("point", "count"):
            parser.add_argument("label", help="what to point to / count, e.g. 'red circle'")
        elif name == "caption":
            parser.add_argument("--length", type=non_negative_int, default=None,
                                help="caption length hint (about characters / 15; default: 65)")
        parser.add_argument("--json", action="store_true", help="print the answer as JSON (text, points, count)")
        parser.add_argument("--draw", metavar="OUT.png", default=None, help="save the image with the points drawn")
    parser.add_argument("--model", default=None,
                        help="checkpoint folder or Hub id, e.g. allenai/Molmo-7B-D-0924 (default: the embedded model)")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit for a Hub id --model")
    parser.add_argument("--adapter", default=None, help="PEFT LoRA adapter folder or Hub id to apply to --model")
    parser.add_argument("--max-crops", type=positive_int, default=None,
                        help="high-resolution crop budget per image (default: the model's)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=200, help="the longest answer, in tokens")
    parser.add_argument("--temperature", type=non_negative_float, default=0.0,
                        help="sampling temperature; 0: greedy (the same answer every time)")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="sampling seed (with --temperature > 0)")
    add_device_arguments(parser)


def answer_once(model: Molmo, command: str, image, argument, *, length=None, stream=None, **kw) -> Answer:
    if command == "ask":
        return model.ask(image, argument, stream=stream, **kw)
    if command == "point":
        return model.point(image, argument, stream=stream, **kw)
    if command == "count":
        return model.count(image, argument, stream=stream, **kw)
    if command == "caption":
        return model.caption(image, length=length, stream=stream, **kw)
    raise ValueError(f"unknown command {command!r}")


def _print_stream(delta: str) -> None:
    sys.stdout.write(delta)
    sys.stdout.flush()


def summary(answer: Answer) -> str:
    lines = []
    if answer.points:
        pts = ", ".join(f"{i}: ({p.x:.0f}, {p.y:.0f})" for i, p in enumerate(answer.points, 1))
        lines.append(f"points (pixels): {pts}")
    if answer.count is not None:
        lines.append(f"count: {answer.count}")
    return "\n".join(lines)


def announce(model: Molmo, file=None) -> None:
    """Which model answers, and the model card's warning while the model does not read images. (`sys.stderr` is
    looked up at call time: a default bound at import would keep a stream that has since been replaced.)"""
    file = file or sys.stderr
    print(f"model: {model.info.label}", file=file)
    if model.info.notice():
        print(model.info.notice(), file=file)


def check_inputs(args: argparse.Namespace) -> None:
    """What can be checked before the model loads: the image, and that --draw can be written."""
    from PIL import Image

    from molmo.image.loading import check_image_file

    if getattr(args, "image", None) is not None:
        check_image_file(args.image)
    draw = Path(args.draw) if getattr(args, "draw", None) else None
    if draw is not None:
        if not draw.parent.is_dir():
            raise ValueError(f"--draw {draw}: the folder {draw.parent} does not exist")
        if not os.access(draw.parent, os.W_OK):
            raise ValueError(f"--draw {draw}: the folder {draw.parent} is not writable")
        if draw.suffix.lower() not in Image.registered_extensions():
            raise ValueError(f"--draw {draw}: give an image file name such as out.png")


def run(args: argparse.Namespace) -> int:
    from molmo.api import Molmo, ModelNotFoundError

    try:
        check_inputs(args)
    except (ImageError, ValueError) as e:
        print(f"molmo {args.command}: {e}", file=sys.stderr)
        return 2
    try:
        model = Molmo.from_pretrained(args.model, dtype=args.dtype, device=args.device, revision=args.revision,
                                      adapter=args.adapter, quantize=args.quantize)
    except (ModelNotFoundError, ValueError) as e:
        print(f"molmo {args.command}: {e}", file=sys.stderr)
        return 2
    announce(model, file=sys.stdout if args.command == "demo" else sys.stderr)  # stdout of ask & co: the answer
    kw = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, max_crops=args.max_crops,
              seed=args.seed)
    if args.command == "demo":
        return run_demo(model, Path(args.out), **kw)
    argument = getattr(args, "question", None) or getattr(args, "label", None)
    stream = None if args.json else _print_stream
    try:
        answer = answer_once(model, args.command, args.image, argument, length=getattr(args, "length", None),
                             stream=stream, **kw)
    except (ImageError, PromptTooLongError, ValueError) as e:
        print(f"molmo {args.command}: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"model": model.info.label, **answer.to_dict()}, ensure_ascii=False))
    else:
        print()
        if summary(answer):
            print(summary(answer))
    if args.draw:
        from molmo.serve.draw import draw_points

        title = f"{argument}: {answer.count}" if answer.count is not None and not answer.points else None
        draw_points(args.image, answer.points, title=title).save(args.draw)
        if not args.json:
            print(f"overlay written to {args.draw}")
    return 0


def run_demo(model: Molmo, out: Path, **kw) -> int:
    from molmo.serve.draw import draw_points
    from molmo.text.points import strip_point_tags

    if not SAMPLES_DIR.is_dir():
        print(f"molmo demo: the sample images are missing ({SAMPLES_DIR})", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for i, (file, command, argument) in enumerate(DEMO_QUESTIONS, 1):
        image = SAMPLES_DIR / file
        print(f"[{i}/{len(DEMO_QUESTIONS)}] {file} · {command} {argument or ''}".rstrip())
        answer = answer_once(model, command, image, argument, **kw)
        print(f"  {answer.text}")
        if summary(answer):
            print("  " + summary(answer).replace("\n", "\n  "))
        target = out / f"{i:02d}-{command}-{Path(file).stem}.png"
        draw_points(image, answer.points, title=strip_point_tags(answer.text) or "(no answer)").save(target)
        print(f"  overlay: {target}")
    return 0
