"""The `molmo` command line: a thin dispatcher over sub-command modules.

Each sub-command lives in the module that owns its concept and exposes two functions,
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when their command
runs, so `molmo --help` stays fast and a broken optional part cannot break the others.

    molmo --help
    molmo conformance ../shared/conformance --only preprocess,forward
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from molmo.cli_args import GUIDE_HINT, ArgumentParser

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("molmo.serve.commands", "answer a question about an image"),
    "point": ("molmo.serve.commands", "point to every instance of a label in an image"),
    "count": ("molmo.serve.commands", "count (and point to) instances of a label"),
    "caption": ("molmo.serve.commands", "describe an image"),
    "demo": ("molmo.serve.commands", "run a few questions on the bundled sample images"),
    "serve": ("molmo.serve.cli", "OpenAI-compatible HTTP server and web page"),
    "train": ("molmo.train.cli", "pre-train or fine-tune from a preset"),
    "finetune": ("molmo.train.finetune", "LoRA or full fine-tuning on own-data JSONL"),
    "eval": ("molmo.eval.cli", "score a model on benchmarks or own data"),
    "data": ("molmo.data.cli", "generate, show, validate and download data"),
    "convert": ("molmo.checkpoint.cli", "build an initial Molmo from base ViT + LLM checkpoints"),
    "export": ("molmo.checkpoint.cli", "write a checkpoint in the released HF layout (transformers, vLLM)"),
    "conformance": ("molmo.conformance", "check this install against reference outputs"),
}


def _top_level_help() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: molmo COMMAND [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `molmo COMMAND --help` for the options of one command.", GUIDE_HINT]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # `molmo ... | head`: the reader left; say nothing more
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0


def _main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_level_help())
        return 0
    if argv[0] == "--version":
        from molmo import __version__

        print(__version__)
        return 0
    command = argv[0]
    if command not in COMMANDS:
        print(f"molmo: unknown command {command!r}\n\n{_top_level_help()}", file=sys.stderr)
        return 2
    try:
        return _dispatch(command, argv)
    except ModuleNotFoundError as e:  # an optional extra that this install lacks: say which one
        from molmo.extras import missing_extra_message

        message = missing_extra_message(e, command)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2


def _dispatch(command: str, argv: list[str]) -> int:
    module_name, help_ = COMMANDS[command]
    module = importlib.import_module(module_name)
    parser = ArgumentParser(prog=f"molmo {command}", description=help_, epilog=GUIDE_HINT)
    if getattr(module, "COMMAND_TAKES_NAME", False):
        # Modules serving several commands (ask/point/count/...) learn which one ran.
        parser.set_defaults(command=command)
        module.add_arguments(parser, command)
    else:
        module.add_arguments(parser)
    try:  # --help and argument errors end here with their exit status (0 / 2), returned like any other
        if getattr(module, "ACCEPTS_OVERRIDES", False):  # `molmo train PRESET --a.b=c …`
            args, args.overrides = parser.parse_known_args(argv[1:])
        else:
            args = parser.parse_args(argv[1:])
    except SystemExit as e:
        return int(e.code or 0)
    try:
        return _run(module, args, command)
    except KeyboardInterrupt:
        print(f"\nmolmo {command}: interrupted", file=sys.stderr)
        return 130


def _run(module, args: argparse.Namespace, command: str) -> int:
    from molmo.checkpoint.integrity import IntegrityError

    try:
        return int(module.run(args) or 0)
    except IntegrityError as e:  # a damaged checkpoint or weight file: one line naming it, not a traceback
        print(f"molmo {command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
