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


RUN_LOCK = ".train.lock"  # in a run folder, held by the process training it


class RunFolderBusy(RuntimeError):
    """Another process is training the run folder."""


def hold_run_folder(out: str | Path):
    """Hold `out` for this process's training: an exclusive lock on `out/RUN_LOCK`, released when the process
    ends however it ends (a killed chain can leave a trainer running; two trainers in one folder would overwrite
    each other's checkpoints). Returns the open lock file; keep it for the run's lifetime. Raises RunFolderBusy
    naming the holder's pid. Where `fcntl` is missing (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:
        return None
    path = Path(out) / RUN_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RunFolderBusy(f"run folder {out} is being trained by another process (pid {holder}); stop it or "
                            f"pass another --out_dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
