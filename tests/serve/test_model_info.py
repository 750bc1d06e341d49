"""Output that says which model answers: `model_info.json`'s verdict reaches the CLI, `/v1/models` and the card's
notice line, and the line goes when the flag says the model reads images."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from molmo.api import DEFAULT_MODEL_DIR
from molmo.checkpoint.info import INFO_FILE, ModelInfo
from molmo.cli import main
from molmo.serve.server import BackgroundServer, ServerSettings, create_app


def write_info(folder, reads_images):
    (folder / "MODEL_CARD.md").write_text("# a card\n")
    (folder / INFO_FILE).write_text(json.dumps({"name": "tiny-test", "version": "v9", "reads_images": reads_images,
                                                "summary": "a random test model", "card": "MODEL_CARD.md"}))
    return folder


@pytest.fixture
def flagged_checkpoint(checkpoint, tmp_path):
    return write_info(shutil.copytree(checkpoint, tmp_path / "ckpt"), reads_images=False)


def test_the_shipped_model_carries_its_verdict():
    info = ModelInfo.from_dir(DEFAULT_MODEL_DIR)
    assert info.name == "tiny-molmo" and isinstance(info.reads_images, bool) and info.card is not None
    card = info.card.read_text()
    if info.reads_images is False:
        assert "do not read images" in card or "not read images" in card  # flag and card agree
        assert info.notice().startswith(f"note: {info.label} is ") and str(info.card) in info.notice()


def test_notice_follows_the_flag(tmp_path):
    assert ModelInfo.from_dir(tmp_path).notice() is None  # no file: no claim, no line
    write_info(tmp_path, reads_images=False)
    notice = ModelInfo.from_dir(tmp_path).notice()
    assert "tiny-test (v9) is a random test model" in notice and "MODEL_CARD.md" in notice and "\n" not in notice
    assert ModelInfo.from_dir(tmp_path).notice(show_path=False).endswith("see MODEL_CARD.md")
    write_info(tmp_path, reads_images=True)
    assert ModelInfo.from_dir(tmp_path).notice() is None
    (tmp_path / INFO_FILE).write_text("{not json")
    assert ModelInfo.from_dir(tmp_path).reads_images is None  # a broken file never stops the model loading


def test_ask_and_demo_say_which_model_answers(flagged_checkpoint, tmp_path, capsys):
    assert main(["ask", str(flagged_checkpoint.parent / "missing.png"), "Hi?", "--model", str(flagged_checkpoint)]) == 2
    capsys.readouterr()
    from PIL import Image
    Image.new("RGB", (40, 30), "red").save(tmp_path / "red.png")
    assert main(["ask", str(tmp_path / "red.png"), "What?", "--model", str(flagged_checkpoint), "--json",
                 "--max-new-tokens", "2"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["model"] == "tiny-test (v9)"  # stdout stays the JSON answer
    assert "model: tiny-test (v9)" in err and "reads images" in err
    assert main(["demo", "--model", str(flagged_checkpoint), "--out", str(tmp_path / "d"),
                 "--max-new-tokens", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "model: tiny-test (v9)" and lines[1].startswith("note: tiny-test (v9) is a random test model")


def test_v1_models_names_the_model_and_its_notice(flagged_checkpoint):
    from molmo.api import Molmo

    model = Molmo.from_pretrained(flagged_checkpoint)
    with BackgroundServer(create_app(model, ServerSettings())) as server:
        entry = httpx.get(server.url + "/v1/models").json()["data"][0]
    assert entry["id"] == "ckpt" and entry["molmo"]["label"] == "tiny-test (v9)"
    assert entry["molmo"]["reads_images"] is False and entry["molmo"]["card"] == "MODEL_CARD.md"
    assert str(flagged_checkpoint) not in entry["molmo"]["notice"]  # no server paths sent to clients
