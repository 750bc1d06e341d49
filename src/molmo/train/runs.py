"""Where training runs live: `$MOLMO_RUNS`, or `~/.cache/molmo/runs` by default -- outside any work tree, so a
fresh checkout on the same machine finds the runs (and resumes them) where an earlier one left them.

    from molmo.train.runs import run_dir
    run_dir("tiny-sft")          # ~/.cache/molmo/runs/tiny-sft
    MOLMO_RUNS=/data/runs molmo train tiny-sft
"""

from __future__ import annotations

import os
from pathlib import Path


def runs_root() -> Path:
    return Path(os.environ.get("MOLMO_RUNS") or Path.home() / ".cache" / "molmo" / "runs").expanduser()


def run_dir(name: str) -> Path:
    return runs_root() / name
