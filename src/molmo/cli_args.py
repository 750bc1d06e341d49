"""Shared pieces of the `molmo` command line: argument types that validate numbers at parse time, the help
formatter that shows every option's default, and the user guide's location for `--help` epilogs.

    parser.add_argument("--steps", type=positive_int, default=200, help="optimizer steps")
    parser.add_argument("--port", type=port, default=8000, help="TCP port to listen on")

A bad value stops parsing with one line, e.g. `molmo finetune: argument --steps: must be a positive integer,
got -3 (see molmo finetune --help)`. This module imports nothing heavy, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import math

GUIDE = "docs/USER_GUIDE.md"
GUIDE_HINT = (f"User guide: {GUIDE} in the molmo repository (install, the own-data JSONL format, fine-tuning, "
              "evaluation files, released checkpoints, PixMo, serving).")


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float, "a positive number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value:g}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float, "a number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value:g}")
    return value


def port(text: str) -> int:
    value = _number(text, int, "a TCP port (1-65535)")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port between 1 and 65535, got {value}")
    return value


class HelpFormatter(argparse.HelpFormatter):
    """Appends `(default: X)` to every option whose help does not already state its default (flags and options
    without a default are left as they are)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.default in (None, False, argparse.SUPPRESS) or "default" in text.lower()
                or not (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))):
            return text
        return f"{text} (default: %(default)s)".strip()


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the formatter above and one-line errors (no usage block): `PROG: MESSAGE (see PROG --help)`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """--dtype / --device / --quantize, shared by ask, eval and serve."""
    parser.add_argument("--dtype", default="float32", choices=["auto", "float32", "bfloat16", "float16"],
                        help="weights and compute type; auto: bf16 where this machine computes it fast, else fp32")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when present)")
    parser.add_argument("--quantize", default=None, choices=["int8", "nf4"],
                        help="weight quantization of the decoder: int8 (CPU: dynamic int8; GPU: torchao) or nf4 "
                             "(GPU, bitsandbytes); see the README's performance section for its effect")
