"""The one-shot commands through the real `molmo` dispatcher: --json, --draw, streaming, demo, errors."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from molmo.cli import main
from molmo.text.tokenizer import MolmoTokenizer

POINTS = ' <points x1="10.0" y1="20.0" x2="80.5" y2="90.0" alt="cats">cats</points>'


@pytest.fixture
def image_file(image, tmp_path):
    path = tmp_path / "in.png"
    image.save(path)
    return path


def test_point_json_and_draw(checkpoint, image_file, tmp_path, scripted, capsys):
    scripted(POINTS, MolmoTokenizer.from_dir(checkpoint))
    out = tmp_path / "overlay.png"
    rc = main(["point", str(image_file), "cats", "--model", str(checkpoint), "--json", "--draw", str(out)])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["points"] == [{"x": 8.0, "y": 12.0, "label": "cats"}, {"x": 64.4, "y": 54.0, "label": "cats"}]
    assert result["count"] is None and result["image_size"] == [80, 60]
    drawn = Image.open(out).convert("RGB")
    band = drawn.height - 60  # the legend band ("cats: 2 points") sits above the image
    assert drawn.width == 80 and band > 0
    r, g, b = drawn.getpixel((4, 12 + band))  # a marker disc (radius 6) now covers the first point
    assert (r, g, b) != Image.open(image_file).convert("RGB").getpixel((4, 12)) and r > 200 and g < 80


def test_count_streams_to_the_terminal(checkpoint, image_file, scripted, capsys):
    scripted(" Counting the dots shows a total of 3.", MolmoTokenizer.from_dir(checkpoint))
    assert main(["count", str(image_file), "dots", "--model", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Counting the dots shows a total of 3.") and "count: 3" in out


def test_ask_and_caption_on_the_random_model(checkpoint, image_file, capsys):
    assert main(["ask", str(image_file), "What is this?", "--model", str(checkpoint), "--json",
                 "--max-new-tokens", "4", "--max-crops", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["usage"]["completion_tokens"] <= 4 and set(result) >= {"text", "points", "count"}
    assert main(["caption", str(image_file), "--length", "20", "--model", str(checkpoint), "--json",
                 "--max-new-tokens", "3"]) == 0


def test_errors_are_clear(checkpoint, tmp_path, capsys):
    assert main(["ask", str(tmp_path / "missing.png"), "What?", "--model", str(checkpoint)]) == 2
    assert "missing.png" in capsys.readouterr().err
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    assert main(["ask", str(tmp_path / "x.png"), "What?", "--model", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_demo_writes_overlays(checkpoint, tmp_path, capsys):
    assert main(["demo", "--model", str(checkpoint), "--out", str(tmp_path / "demo"), "--max-new-tokens", "3"]) == 0
    written = sorted(p.name for p in (tmp_path / "demo").glob("*.png"))
    assert len(written) == 5 and written[0].startswith("01-point-shapes")
