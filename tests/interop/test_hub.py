"""Hub ids: `Molmo.from_pretrained("org/name")` and `molmo ask --model org/name` fetch through huggingface_hub from
a fake Hub on 127.0.0.1 (only the loader's files), then load offline from the populated cache; unknown ids and
revisions give one clear error naming them."""

from __future__ import annotations

import shutil

import pytest
import torch

from molmo.api import Molmo, ModelNotFoundError
from molmo.checkpoint.hub import HubError, is_hub_id, resolve_model
from molmo.cli import main as cli_main


@pytest.fixture
def hub_repo(fake_hub, tiny_checkpoint, tmp_path):
    """The tiny checkpoint plus files the loader must not download, published as `acme/tiny` (main and v1)."""
    repo = tmp_path / "repo"
    shutil.copytree(tiny_checkpoint, repo)
    (repo / "README.md").write_text("# tiny\n")
    (repo / "optimizer.pt").write_bytes(b"\0" * 1000)
    (repo / "modeling_molmo.py").write_text("# remote code\n")
    fake_hub.add("acme/tiny", repo, "main")
    fake_hub.add("acme/tiny", repo, "v1")
    return repo


def test_is_hub_id(tmp_path):
    assert is_hub_id("allenai/Molmo-7B-D-0924")
    assert not is_hub_id(str(tmp_path))  # an existing path
    assert not is_hub_id("runs/a/b") and not is_hub_id("./x/y") and not is_hub_id("ckpt")


def test_hub_then_offline(fake_hub, hub_repo, tiny_checkpoint, monkeypatch):
    model = Molmo.from_pretrained("acme/tiny", revision="v1")
    assert model.name == "acme/tiny"
    assert sorted(fake_hub.fetched) == ["config.json", "model.safetensors", "preprocessor_config.json",
                                        "tokenizer.json"]  # no README, optimizer or remote code
    local = Molmo.from_pretrained(tiny_checkpoint)
    for (k, a), (_, b) in zip(model.model.state_dict().items(), local.model.state_dict().items()):
        assert torch.equal(a, b), k
    fake_hub.close()  # the Hub is gone: the cache alone must serve
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = Molmo.from_pretrained("acme/tiny", revision="v1")
    assert torch.equal(again.model.llm.lm_head.weight, model.model.llm.lm_head.weight)
    with pytest.raises(ModelNotFoundError, match=r"acme/tiny.*'main'.*not in the local Hub cache.*HF_HUB_OFFLINE"):
        Molmo.from_pretrained("acme/tiny", revision="main")  # never downloaded


def test_unknown_id_and_revision(fake_hub, hub_repo):
    with pytest.raises(HubError, match=r"acme/nope: no such model on the Hub"):
        resolve_model("acme/nope")
    with pytest.raises(HubError, match=r"acme/tiny: revision 'v9' does not exist"):
        resolve_model("acme/tiny", revision="v9")
    with pytest.raises(HubError, match="applies to Hub ids"):
        resolve_model(hub_repo, revision="v1")


def test_cli_ask_by_hub_id(fake_hub, hub_repo, capsys):
    assert cli_main(["ask", "--model", "acme/tiny", "--revision", "v1", "--max-new-tokens", "2", "--json",
                     str(hub_repo.parent / "none.png"), "hi"]) == 2  # refused before the model loads
    assert "none.png" in capsys.readouterr().err
    from PIL import Image

    Image.new("RGB", (8, 8)).save(hub_repo.parent / "x.png")  # the image is checked before the model loads
    assert cli_main(["ask", "--model", "acme/nope", str(hub_repo.parent / "x.png"), "hi"]) == 2
    assert "acme/nope: no such model on the Hub" in capsys.readouterr().err


def test_finetune_init_and_eval_model_by_hub_id(fake_hub, hub_repo, tmp_path, capsys):
    import argparse

    from PIL import Image

    from molmo.train import finetune

    Image.new("RGB", (40, 30), (200, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "d.jsonl").write_text('{"image": "a.png", "question": "Colour?", "answer": "red"}\n')
    parser = argparse.ArgumentParser()
    finetune.add_arguments(parser)
    args = parser.parse_args(["--data", str(tmp_path / "d.jsonl"), "--init", "acme/tiny", "--revision", "v1"])
    cfg = finetune.build_config(args)
    assert cfg.init.endswith(fake_hub.commit("acme/tiny", "v1")) and "config.json" in fake_hub.fetched
    assert finetune.run(parser.parse_args(["--data", str(tmp_path / "d.jsonl"), "--init", "acme/none"])) == 2
    assert "acme/none: no such model on the Hub" in capsys.readouterr().err
    assert cli_main(["eval", "--model", "acme/tiny", "--revision", "nope", "--data", str(tmp_path / "d.jsonl"),
                     "--out", str(tmp_path / "ev")]) == 2
    assert "acme/tiny: revision 'nope' does not exist" in capsys.readouterr().err
