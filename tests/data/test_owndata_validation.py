"""The own-data validator under careless and hostile input: non-UTF-8 bytes (with their line), field types and
ranges, truncated images under --deep, and the same checks in finetune's reader and the training loader."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from molmo.cli import main as molmo_main
from molmo.data.owndata import OwnDataError, read_own_data, validate_own_data


@pytest.fixture
def folder(tmp_path) -> Path:
    Image.new("RGB", (64, 48), "white").save(tmp_path / "ok.png")
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), "red").save(buf, format="PNG")
    (tmp_path / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return tmp_path


def _write(folder: Path, rows: list) -> Path:
    path = folder / "data.jsonl"
    path.write_bytes(b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows))
    return path


GOOD = {"image": "ok.png", "question": "What colour?", "answer": "white"}


def test_a_bad_byte_is_reported_with_its_line(folder):
    path = _write(folder, [GOOD, b'{"image": "ok.png", "question": "caf\xe9?", "answer": "x"}', GOOD])
    problems = validate_own_data(path)
    assert problems == [f"{path}:2: not valid UTF-8: byte 0xe9 at column 37 (save the file as UTF-8)"]


@pytest.mark.parametrize("change, message", [
    ({"weight": "abc"}, "'weight' must be a positive finite number"),
    ({"weight": -5}, "'weight' must be a positive finite number"),
    ({"weight": True}, "'weight' must be a positive finite number"),
    ({"style": "no_such_style"}, "unknown style 'no_such_style'"),
    ({"metric": "mc", "options": ["a", "b"], "answer_idx": 99}, "'answer_idx' must be an integer in 0..1"),
    ({"answer_idx": 0}, "'answer_idx' needs an 'options' list"),
    ({"options": ["only one"], "metric": "mc"}, "at least 2 non-empty strings"),
    ({"question": 7}, "'question' must be a string"),
    ({"meta": [1]}, "'meta' must be a JSON object"),
    ({"id": 1.5}, "'id' must be a string or an integer"),
])
def test_every_field_is_type_and_range_checked(folder, change, message):
    path = _write(folder, [GOOD, {**GOOD, **change}])
    problems = validate_own_data(path)
    assert len(problems) == 1 and problems[0].startswith(f"{path}:2: ") and message in problems[0], problems
    with pytest.raises(OwnDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_own_data(path)  # finetune and eval read through the same validator


def test_points_must_be_finite(folder):
    path = folder / "data.jsonl"
    path.write_text('{"image": "ok.png", "task": "point", "label": "x", "points": [[NaN, 3]]}\n')
    assert "finite numbers" in validate_own_data(path)[0]


def test_truncated_image_passes_the_header_check_but_not_deep(folder, capsys):
    path = _write(folder, [GOOD, {"image": "truncated.png", "question": "What?", "answer": "red"}])
    assert validate_own_data(path) == []  # the header alone reads fine
    deep = validate_own_data(path, deep=True)
    assert len(deep) == 1 and deep[0].startswith(f"{path}:2: image file 'truncated.png' is not a readable image")
    assert molmo_main(["data", "validate", str(path), "--deep"]) == 1
    assert "truncated.png" in capsys.readouterr().out
    with pytest.raises(OwnDataError, match="truncated.png"):
        read_own_data(path, deep=True)
    assert molmo_main(["data", "validate", str(path)]) == 0
