"""Careless input through the real command line (a subprocess each, as a user types it): every case exits
non-zero with one line on stderr that names the problem, and never a traceback. Cases that must fail before
any model loads also finish fast. `python tests/test_cli_bad_input.py` prints each case's message.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHAPES = REPO / "src" / "molmo" / "assets" / "samples" / "shapes.png"

# (case id, argv after `molmo` or a module path, text the message must contain). {bin}, {latin1}, {dir}, {good}
# are files made per run; {port} is a port held by another socket.
CASES = [
    ("ask --max-crops 0", ["ask", str(SHAPES), "What?", "--max-crops", "0"], "--max-crops: must be a positive integer"),
    ("ask --max-crops -1", ["ask", str(SHAPES), "What?", "--max-crops", "-1"], "must be a positive integer, got -1"),
    ("finetune --max-crops 0", ["finetune", "--data", "{good}", "--max-crops", "0"], "--max-crops: must be a positive"),
    ("finetune --steps -3", ["finetune", "--data", "{good}", "--steps", "-3"], "--steps: must be a positive integer"),
    ("eval --limit -1", ["eval", "--data", "{good}", "--out", "{dir}/ev", "--limit", "-1"],
     "--limit: must be a positive"),
    ("data validate binary", ["data", "validate", "{bin}"], "a binary file, not own-data JSONL"),
    ("data validate non-UTF-8", ["data", "validate", "{latin1}"], "not valid UTF-8: byte 0xe9"),
    ("finetune binary", ["finetune", "--data", "{bin}"], "a binary file, not own-data JSONL"),
    ("finetune non-UTF-8", ["finetune", "--data", "{latin1}"], "not valid UTF-8: byte 0xe9"),
    ("eval binary", ["eval", "--data", "{bin}", "--out", "{dir}/ev"], "a binary file, not own-data JSONL"),
    ("serve --port 99999", ["serve", "--port", "99999"], "--port: must be a TCP port between 1 and 65535"),
    ("serve on a taken port", ["serve", "--port", "{port}"], "cannot listen on 127.0.0.1:{port}"),
    ("--draw into a missing folder", ["point", str(SHAPES), "circles", "--draw", "{dir}/nowhere/out.png"],
     "the folder {dir}/nowhere does not exist"),
    ("ask a missing image", ["ask", "{dir}/missing.png", "What?"], "missing.png: no such image file"),
    ("ask a folder as the image", ["ask", "{dir}", "What?"], "is a folder, not an image file"),
    ("data mixture synthetic", ["data", "mixture", "synthetic"], "--sizes FILE"),
    ("grounding check on a fresh clone", ["-m", "research.tiny_molmo.grounding_check"],
     "train it first with `molmo train tiny-pretrain`"),
]


def make_files(tmp: Path) -> dict[str, str]:
    (tmp / "bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (tmp / "latin1.jsonl").write_bytes('{"image": "a.png", "question": "café?", "answer": "x"}\n'.encode("latin-1"))
    Image.new("RGB", (32, 24)).save(tmp / "a.png")
    (tmp / "good.jsonl").write_text('{"image": "a.png", "question": "What?", "answer": "x"}\n')
    return {"bin": str(tmp / "bin"), "latin1": str(tmp / "latin1.jsonl"), "good": str(tmp / "good.jsonl"),
            "dir": str(tmp)}


def run_case(argv: list[str], tmp: Path, values: dict[str, str]) -> subprocess.CompletedProcess:
    argv = [a.format(**values) for a in argv]
    command = [sys.executable, *argv] if argv[0] == "-m" else [sys.executable, "-m", "molmo.cli", *argv]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
           "MOLMO_RUNS": str(tmp / "runs"), "OMP_NUM_THREADS": "1"}  # a fresh clone: no trained runs
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("case, argv, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line_and_no_traceback(case, argv, expected, tmp_path, taken_port):
    values = {**make_files(tmp_path), "port": str(taken_port)}
    result = run_case(argv, tmp_path, values)
    err = result.stderr.strip()
    assert result.returncode != 0, f"{case}: exit status 0; stdout={result.stdout!r}"
    assert "Traceback" not in result.stderr + result.stdout, f"{case}: {result.stderr}"
    assert len(err.splitlines()) == 1, f"{case}: expected one line on stderr, got:\n{err}"
    assert expected.format(**values) in err + result.stdout, f"{case}: {err}"  # `data validate` lists on stdout
    assert "serving on" not in result.stdout  # nothing claims to serve before the port is held


def test_a_good_input_still_runs(tmp_path):
    """The checks do not refuse what is fine: --help of every command exits 0 and loads no torch."""
    code = ("import sys; from molmo.cli import COMMANDS, main\n"
            "for c in COMMANDS: assert main([c, '--help']) == 0, c\n"
            "assert 'torch' not in sys.modules, 'a --help imported torch'\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


if __name__ == "__main__":  # print every case's message (for the docs and the report)
    import tempfile

    with tempfile.TemporaryDirectory() as d, socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        vals = {**make_files(Path(d)), "port": str(held.getsockname()[1])}
        for name, args, _ in CASES:
            r = run_case(args, Path(d), vals)
            print(f"{name:34s} rc={r.returncode}  {r.stdout.strip()} {r.stderr.strip()}".rstrip())


@pytest.mark.parametrize("args", [["--help"], ["ask", "--help"]])
def test_a_reader_that_leaves_early_gets_no_traceback(args):
    """`molmo --help | head -1`: the pipe is closed before molmo writes; it ends quietly with 0."""
    proc = subprocess.Popen([sys.executable, "-m", "molmo.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # closed before the interpreter has even started writing
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err, err
