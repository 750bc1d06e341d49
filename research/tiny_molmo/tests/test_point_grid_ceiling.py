"""The token-centre pointing oracle: which cell a target falls in, at which crop budget, and its F1."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from molmo.preprocess.config import PreprocessorConfig
from research.tiny_molmo.point_grid_ceiling import cell_grid, grid_ceiling, snap_to_cells

TINY = PreprocessorConfig(base_image_input_size=(112, 112), max_crops=1, overlap_margins=(2, 2))


def test_the_cell_grid_follows_the_crop_budget():
    assert cell_grid((224, 224), TINY, 1)[1:] == (28, (4, 4))
    assert cell_grid((224, 224), TINY, 4)[1:] == (28, (6, 6))
    assert cell_grid((224, 224), TINY, 9)[1:] == (28, (8, 8))
    assert cell_grid((224, 224), TINY, 9, unit="patch")[1:] == (14, (16, 16))


def test_targets_snap_to_their_cells_centre_once_per_cell():
    # one crop: the 224 px image is drawn at 112 px, a token covers 28 canvas px = 56 image px
    snapped = snap_to_cells(np.array([[10.0, 10.0], [50.0, 20.0], [200.0, 100.0]]), (224, 224), TINY, 1)
    np.testing.assert_allclose(snapped, [[28, 28], [196, 84]])
    # nine crops: the canvas is the image itself, 28 px tokens
    np.testing.assert_allclose(snap_to_cells(np.array([[50.0, 20.0]]), (224, 224), TINY, 9), [[42, 14]])


def test_more_tokens_raise_the_ceiling_where_targets_sit_off_the_coarse_centres(tmp_path):
    Image.new("RGB", (224, 224), "white").save(tmp_path / "a.png")
    rows = [{"image": "a.png", "task": "point", "label": "dots", "points": [[14.0, 14.0, 8.0], [210.0, 70.0, 8.0]]},
            {"image": "a.png", "task": "point", "label": "stars", "points": []}]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    coarse, fine = grid_ceiling(data, TINY, 1), grid_ceiling(data, TINY, 9)
    assert coarse["rows"] == fine["rows"] == 2
    assert coarse["f1"] == pytest.approx(0.5)  # the row without targets is right, the dots 14+ px off
    assert fine["f1"] == pytest.approx(1.0) and fine["grids"] == [(8, 8)]
