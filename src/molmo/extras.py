"""Optional dependency groups (pyproject's extras) and the one-line message naming the extra to install when a
command needs a package the install lacks.

    pip install -e .                 # the model, `molmo ask/point/count/caption/demo/export/convert/conformance`
    pip install -e ".[serve]"        # molmo serve            ".[train]"  molmo train / finetune
    pip install -e ".[data]"         # molmo data             ".[eval]"   molmo eval
    pip install -e ".[tensorboard]"  /  ".[wandb]"            # training loggers
"""

from __future__ import annotations

# package import name -> the extras that provide it (the first is named when no command says otherwise)
PACKAGE_EXTRAS: dict[str, tuple[str, ...]] = {
    "fastapi": ("serve",), "uvicorn": ("serve",), "starlette": ("serve",), "httpx": ("serve", "eval"),
    "matplotlib": ("train", "data", "eval"), "scipy": ("eval", "data", "train"), "pyarrow": ("data", "eval", "train"),
    "tensorboard": ("tensorboard",), "wandb": ("wandb",),
}
# command -> its extra
COMMAND_EXTRAS = {"serve": "serve", "train": "train", "finetune": "train", "data": "data", "eval": "eval"}


def missing_extra_message(error: ModuleNotFoundError, command: str | None = None) -> str | None:
    """'… needs the optional package X: pip install "molmo[extra]"', or None for a package no extra provides."""
    package = (error.name or "").split(".")[0]
    extras = PACKAGE_EXTRAS.get(package)
    if not extras:
        return None
    extra = COMMAND_EXTRAS.get(command or "") if COMMAND_EXTRAS.get(command or "") in extras else extras[0]
    who = f"molmo {command}" if command else "this feature"
    return f"{who} needs the optional package {package!r}: pip install \"molmo[{extra}]\""
