"""The grounding check's data (counts drawn = answers) and one end-to-end pass on the embedded model."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from scipy import ndimage

from molmo.api import DEFAULT_MODEL_DIR
from molmo.train.grounding_check import QUESTION, run_check, write_circle_counting


def test_each_answer_is_the_number_of_red_circles_drawn(tmp_path):
    path = write_circle_counting(tmp_path, n=30, seed=3)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["question"] for r in rows} == {QUESTION} and len({r["answer"] for r in rows}) >= 4
    for r in rows:
        pixels = np.asarray(Image.open(tmp_path / r["image"]).convert("RGB")).astype(int)
        red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
        assert ndimage.label(red)[1] == int(r["answer"])


def test_check_trains_and_scores_model_blind_and_majority(tmp_path):
    scores = run_check(str(DEFAULT_MODEL_DIR), tmp_path, steps=2, train_images=16, test_images=10, batch=4)
    assert set(scores) == {"model", "blind", "majority"}
    assert all(0.0 <= v <= 1.0 for v in scores.values()) and scores["majority"] >= 0.2
    assert json.loads((tmp_path / "scores.json").read_text()) == scores
