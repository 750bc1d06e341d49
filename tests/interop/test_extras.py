"""Dependencies that tell the truth: with only the core install (fastapi, uvicorn, httpx, matplotlib, scipy and
pyarrow made unimportable), `molmo demo`, `ask` and `export` work, and a command that needs an extra names it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
BLOCKER = """
import sys, importlib.abc
BLOCKED = {"fastapi", "uvicorn", "starlette", "httpx", "matplotlib", "scipy", "pyarrow", "tensorboard", "wandb"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from molmo.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _core_only(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", BLOCKER, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_core_install_runs_the_demo_ask_and_export(tmp_path, tiny_checkpoint):
    demo = _core_only(["demo", "--out", str(tmp_path / "demo")], tmp_path)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert list((tmp_path / "demo").glob("*.png"))
    from PIL import Image

    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    ask = _core_only(["ask", "--model", str(tiny_checkpoint), "--max-new-tokens", "3", str(tmp_path / "a.png"), "hi"],
                     tmp_path)
    assert ask.returncode == 0, ask.stderr[-2000:]
    export = _core_only(["export", str(tiny_checkpoint), str(tmp_path / "out")], tmp_path)
    assert export.returncode == 0, export.stderr[-2000:]


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("args, extra", [(["serve", "--port", "{port}"], "serve"),
                                         (["data", "generate", "points", "--n", "1", "--out", "x"], "data"),
                                         (["eval", "--bench", "chartqa", "--data-dir", "bench", "--out", "e"], "eval")])
def test_missing_extra_is_named(tmp_path, args, extra):
    (tmp_path / "bench" / "chartqa").mkdir(parents=True)  # arguments that pass every check before the import
    (tmp_path / "bench" / "chartqa" / "test.parquet").write_bytes(b"PAR1")
    run = _core_only([a.format(port=_free_port()) for a in args], tmp_path)
    assert run.returncode == 2
    assert f'pip install "molmo[{extra}]"' in run.stderr, run.stderr[-2000:]
