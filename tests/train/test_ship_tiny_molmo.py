"""Shipping a trained run as the embedded default (scripts/ship_tiny_molmo.py): bf16 weights beside the tokenizer and
pre-processor config, the model card kept, one PNG with every stage's curves."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from molmo.checkpoint.io import load_molmo
from molmo.train import trainer

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ship_tiny_molmo.py"
_spec = importlib.util.spec_from_file_location("ship_tiny_molmo", SCRIPT)
ship_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ship_script)
STAGES, ship = ship_script.STAGES, ship_script.ship


@pytest.mark.slow  # trains a tiny run first (~25 s on 2 loaded cores): full suite only
def test_ship_writes_bf16_weights_keeps_the_card_and_plots_the_stages(tiny_cfg, tmp_path):
    runs = tmp_path / "runs"
    model_dir = trainer.train(dataclasses.replace(tiny_cfg, export=True, eval_every=2, out_dir=str(runs / "tiny-sft")))
    out = tmp_path / "shipped"
    out.mkdir()
    (out / "MODEL_CARD.md").write_text("# card\n")
    (out / "model_info.json").write_text('{"reads_images": false}')
    (out / "stale.bin").write_text("from an older model")
    ship(model_dir, out, runs)
    assert (out / "MODEL_CARD.md").read_text() == "# card\n" and not (out / "stale.bin").exists()
    assert (out / "model_info.json").read_text() == '{"reads_images": false}'  # the card's verdict stays
    assert (out / "training_curve.png").stat().st_size > 1000 and "tiny-sft" in dict(STAGES)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    shipped, _ = load_molmo(out)
    trained, _ = load_molmo(model_dir)
    for (name, a), (_, b) in zip(shipped.state_dict().items(), trained.state_dict().items()):
        assert torch.equal(a.float(), b.to(torch.bfloat16).float()), name


def test_stage_curves_come_from_the_run_folder_else_the_committed_artifact(tmp_path, monkeypatch):
    monkeypatch.setattr(ship_script, "ARTIFACTS", tmp_path / "artifacts")
    for folder, loss in ((tmp_path / "artifacts" / "tiny-ground", 2.0), (tmp_path / "runs" / "tiny-sft", 1.0),
                         (tmp_path / "artifacts" / "tiny-sft", 3.0)):
        folder.mkdir(parents=True)
        (folder / "metrics.jsonl").write_text(f'{{"step": 1, "loss": {loss}}}\n')
    runs = tmp_path / "runs"
    assert ship_script.stage_metrics(runs, "tiny-sft") == [{"step": 1, "loss": 1.0}]  # the run folder first
    assert ship_script.stage_metrics(runs, "tiny-ground") == [{"step": 1, "loss": 2.0}]
    assert ship_script.stage_metrics(runs, "tiny-vision") == []

