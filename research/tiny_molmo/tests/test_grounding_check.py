"""The grounding check's data (counts drawn = answers) and one end-to-end pass on the embedded model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from molmo.assets import DEFAULT_MODEL_DIR
from research.tiny_molmo.grounding_check import QUESTION, run_check, write_circle_counting, write_scene_counting
from molmo.train.tiny_presets import tiny_sft


def test_each_answer_is_the_number_of_red_circles_drawn(tmp_path):
    path = write_circle_counting(tmp_path, n=30, seed=3)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["question"] for r in rows} == {QUESTION} and len({r["answer"] for r in rows}) >= 4
    for r in rows:
        pixels = np.asarray(Image.open(tmp_path / r["image"]).convert("RGB")).astype(int)
        red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
        assert ndimage.label(red)[1] == int(r["answer"])


def test_scene_questions_count_the_asked_colour_of_the_generated_scene(tmp_path):
    from molmo.data.generators import generate_one
    path = write_scene_counting(tmp_path, n=12, seed=4, restate=True)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for i, r in enumerate(rows):
        colour = r["question"].removeprefix("How many ").removesuffix(" shapes are there?")
        scene = generate_one("points", 5004, i, difficulty="easy").scene
        assert r["answer"] == f"{colour} {sum(o['colour'] == colour for o in scene['objects'])}"
        assert Image.open(tmp_path / r["image"]).size == tuple(scene["size"])
    assert any(r["answer"].endswith(" 0") for r in rows) and not all(r["answer"].endswith(" 0") for r in rows)


@pytest.mark.parametrize("question", ["target", "total"])
def test_scene_questions_about_the_main_group_or_all_shapes_count_them(tmp_path, question):
    from molmo.data.generators import generate_one
    from molmo.data.generators.scenes import PLURAL
    rows = [json.loads(line) for line in
            write_scene_counting(tmp_path, n=12, seed=4, question=question).read_text().splitlines()]
    for i, r in enumerate(rows):
        scene = generate_one("points", 5004, i, difficulty="easy").scene
        if question == "total":
            assert r["question"] == "How many shapes are there?" and r["answer"] == str(len(scene["objects"]))
        else:
            t = scene["target"]
            assert r["question"] == f"How many {t['colour']} {PLURAL[t['shape']]} are there?"
            assert r["answer"] == str(sum(o["colour"] == t["colour"] and o["shape"] == t["shape"]
                                          for o in scene["objects"]))
    assert len({r["answer"] for r in rows}) >= 4
    with pytest.raises(ValueError, match="unknown scene question"):
        write_scene_counting(tmp_path, n=1, seed=4, question="size")


def test_check_trains_and_scores_model_blind_and_majority(tmp_path):
    scores = run_check(str(DEFAULT_MODEL_DIR), tmp_path, steps=2, train_images=16, test_images=10, batch=4)
    assert set(scores) == {"model", "blind", "majority"}
    assert all(0.0 <= v <= 1.0 for v in scores.values()) and scores["majority"] >= 0.2
    assert json.loads((tmp_path / "scores.json").read_text()) == scores


def test_restated_phase_then_plain_phase_continues_from_it(tmp_path):
    run_check(str(DEFAULT_MODEL_DIR), tmp_path, steps=3, train_images=16, test_images=6, batch=4, restate_steps=2,
              connector_lr=3e-5, vit_lr=2e-5, col_tokens=False)
    first = json.loads((tmp_path / "run-restated" / "config.json").read_text())
    second = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (first["steps"], second["steps"]) == (2, 1)
    assert first["optim"]["connector"]["lr"] == second["optim"]["connector"]["lr"] == 3e-5
    assert tiny_sft().optim.connector.lr != 3e-5 and tiny_sft().optim.freeze_vit
    assert first["optim"]["vit"]["lr"] == second["optim"]["vit"]["lr"] == 2e-5
    assert not first["optim"]["freeze_vit"] and not second["optim"]["freeze_vit"]
    assert second["optim"]["llm"] == dataclasses.asdict(tiny_sft().optim.llm)  # the language model's rate stays
    assert second["init"] == str(tmp_path / "run-restated" / "model")
    for run in ("run-restated", "run"):  # trained, exported and evaluated without <im_col>
        exported = json.loads((tmp_path / run / "model" / "preprocessor_config.json").read_text())
        assert exported["use_col_tokens"] is False
    assert json.loads((DEFAULT_MODEL_DIR / "preprocessor_config.json").read_text())["use_col_tokens"] is True
    answers = lambda name: [json.loads(r)["answer"] for r in (tmp_path / name / "data.jsonl").read_text().splitlines()]
    assert all(" " in a for a in answers("train-restated")) and all(a.isdigit() for a in answers("train"))
    assert all(a.isdigit() for a in answers("test"))  # scored on the last phase's plain answers


def test_binding_variant_answers_count_only_the_asked_colour(tmp_path):
    from research.tiny_molmo.token_probe import COLOURS, colour_counts
    path = write_circle_counting(tmp_path, n=30, seed=4, colours=tuple(COLOURS))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["question"].split()[2] for r in rows} == set(COLOURS)
    differs = 0
    for r in rows:
        counts = dict(zip(COLOURS, colour_counts(Image.open(tmp_path / r["image"]))))
        assert counts[r["question"].split()[2]] == int(r["answer"])
        differs += len(set(counts.values())) > 1
    assert differs >= 20  # the colour word matters: most images hold different counts per colour
    restated = write_circle_counting(tmp_path / "restate", n=30, seed=4, colours=tuple(COLOURS), restate=True)
    for r, plain in zip((json.loads(line) for line in restated.read_text().splitlines()), rows):
        assert r["answer"] == f"{plain['question'].split()[2]} {plain['answer']}"  # same draws, "red 3"


def test_token_probe_readout_recovers_linear_counts_and_not_noise():
    from research.tiny_molmo.token_probe import ridge_readout_accuracy
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 5, (400, 3)).astype(float)
    mixing = rng.normal(size=(3, 32))
    linear = counts @ mixing + 0.05 * rng.normal(size=(400, 32))
    per_colour, total = ridge_readout_accuracy(linear, counts, 300)
    assert per_colour.min() > 0.95 and total > 0.9
    noise_per_colour, _ = ridge_readout_accuracy(rng.normal(size=(400, 32)), counts, 300)
    assert noise_per_colour.max() < 0.5


def test_token_probe_means_the_vit_features_pooled_features_and_tokens(tmp_path):
    from molmo.model.config import MolmoConfig
    from research.tiny_molmo.token_probe import mean_features
    path = write_circle_counting(tmp_path, n=2, seed=6, colours=("red", "blue"))
    images = [Image.open(tmp_path / json.loads(r)["image"]) for r in path.read_text().splitlines()]
    feats = mean_features(DEFAULT_MODEL_DIR, images, max_crops=2)
    cfg = MolmoConfig.from_dict(json.loads((DEFAULT_MODEL_DIR / "config.json").read_text()))
    width = {"tokens": cfg.llm.d_model, "pooled": cfg.vision.width,
             "ViT": cfg.vision.width * len(cfg.connector.vit_layers)}
    assert sorted(feats) == sorted(f"{k}, {v}" for k in width for v in ("global view", "all views"))
    for name, x in feats.items():
        assert x.shape == (2, width[name.split(",")[0]]) and np.isfinite(x).all()
    assert not np.allclose(feats["ViT, global view"][0], feats["ViT, global view"][1])  # the images differ
