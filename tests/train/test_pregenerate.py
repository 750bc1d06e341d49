"""`molmo train PRESET --pregenerate`: the images listed ahead of a run are exactly those the run draws, so a
run after it never draws an image (the generator is made to fail), for the Molmo trainer and the vision stage."""

from __future__ import annotations

import dataclasses

import pytest

from molmo.data.generators import cache as cache_module
from molmo.train.cli import main as train_main
from molmo.train.config import DataSource
from molmo.train.pregenerate import pregenerate, run_items, with_cache
from molmo.train.trainer import train
from molmo.train.vision_pretrain import VisionPretrainConfig, train_vision


def _never_draw(*args, **kwargs):
    raise AssertionError(f"drew an image that was not pre-generated: {args} {kwargs}")


def test_a_pregenerated_trainer_run_draws_nothing(tiny_cfg, tmp_path, monkeypatch):
    sources = (DataSource("clocks", "generator:clocks", size=50, seed=3, options={"difficulty": "easy"}),
               DataSource("bars", "generator:docs", size=50, seed=4, options={"doc_kind": "bar"}))
    data = dataclasses.replace(tiny_cfg.data, sources=sources, validation=sources[:1],
                               generated_cache=str(tmp_path / "cache"))
    cfg = dataclasses.replace(tiny_cfg, data=data, steps=2, eval_every=2, eval_batches=1, save_every=2)
    cache, drawn, total = pregenerate(cfg, workers=2, progress=False)
    assert drawn == total == len(run_items(cfg)) and total > cfg.steps * cfg.global_batch - 1
    assert pregenerate(cfg, workers=1, progress=False)[1] == 0  # a second call finds them all
    monkeypatch.setattr(cache_module, "generate_one", _never_draw)
    train(cfg)


def test_a_pregenerated_vision_run_draws_nothing_with_two_workers(tmp_path, monkeypatch):
    cfg = VisionPretrainConfig(steps=3, images_per_step=2, views_per_image=2, workers=2, out_dir=str(tmp_path / "run"),
                               log_every=1, generated_cache=str(tmp_path / "cache"),
                               sources=(("points", 1.0, {}), ("clocks", 1.0, {"difficulty": "easy"})))
    cache, drawn, total = pregenerate(cfg, workers=1, progress=False)
    assert total == cfg.steps * cfg.images_per_step
    assert {kind for kind, *_ in run_items(cfg)} == {"points", "clocks"}
    monkeypatch.setattr(cache_module, "generate_one", _never_draw)
    train_vision(cfg)  # the DataLoader's worker processes inherit the failing generator


def test_the_cli_fills_the_cache_and_says_when_the_preset_does_not_read_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOLMO_GENERATED_CACHE", str(tmp_path / "cache"))
    assert train_main(["tiny-vision", "--steps=2", "--images_per_step=2", "--pregenerate=1"]) == 0
    out = capsys.readouterr().out
    assert "4 images of the run" in out and "--generated_cache=auto" in out
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 4
    assert with_cache(VisionPretrainConfig()).generated_cache == "auto"


def test_pregenerate_refuses_a_config_without_a_cache():
    with pytest.raises(ValueError, match="generated_cache"):
        pregenerate(VisionPretrainConfig(steps=1), progress=False)
