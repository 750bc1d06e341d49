"""The offset probe: which token holds a circle, the offset inside it, and the readout on planted signals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from research.tiny_molmo.offset_probe import centre_cell, one_circle, ridge_offsets


def test_one_circle_lies_inside_the_image():
    image, (x, y) = one_circle(np.random.default_rng(1))
    assert image.size == (224, 224) and 20 <= x <= 204 and 20 <= y <= 204
    assert image.getpixel((int(x), int(y))) != (255, 255, 255)


def test_the_centre_cell_and_offset():
    assert centre_cell((10.0, 200.0), (224, 224), 4) == ((0, 3), (pytest.approx(10 / 56), pytest.approx(32 / 56)))
    assert centre_cell((112.0, 28.0), (224, 224), 8)[0] == (4, 1)


def test_the_readout_finds_a_linear_offset_and_not_noise():
    rng = np.random.default_rng(0)
    offsets = rng.uniform(0, 1, (600, 2))
    noise = rng.normal(size=(600, 32))
    planted = noise.copy()
    planted[:, :2] = 5 * offsets - 2  # two of the features say the offset
    err, quarter = ridge_offsets(planted, offsets, 480)
    assert err < 0.05 and quarter > 0.9
    err, quarter = ridge_offsets(noise, offsets, 480)
    assert err > 0.2 and quarter < 0.4


def test_the_chosen_token_is_the_one_a_circle_inside_it_changes_most():
    from molmo.api import Molmo
    from molmo.assets import DEFAULT_MODEL_DIR
    from PIL import Image, ImageDraw
    from research.tiny_molmo.real_tokens import vision_stages
    api = Molmo.from_pretrained(DEFAULT_MODEL_DIR)
    grid = api.processor.processor.config.tokens_grid[0]
    blank = vision_stages(api, Image.new("RGB", (224, 224), "white"), 1)["tokens"][1]
    cell = 224 / grid
    for tx, ty in ((0, 1), (2, 0), (3, 3)):  # circles well inside one token's cell (a cell is 56 px here)
        centre = ((tx + 0.5) * cell + 5, (ty + 0.5) * cell - 5)
        image = Image.new("RGB", (224, 224), "white")
        ImageDraw.Draw(image).ellipse([centre[0] - 12, centre[1] - 12, centre[0] + 12, centre[1] + 12], fill="red")
        assert centre_cell(centre, image.size, grid)[0] == (tx, ty)
        change = (vision_stages(api, image, 1)["tokens"][1] - blank).norm(dim=-1)
        assert int(torch.argmax(change)) == ty * grid + tx


def test_the_place_readout_finds_the_cell_from_a_linear_place_and_not_from_noise():
    from research.tiny_molmo.offset_probe import ridge_places
    rng = np.random.default_rng(0)
    places = rng.uniform(0, 1, (600, 2))
    noise = rng.normal(size=(600, 32))
    planted = noise.copy()
    planted[:, :2] = 5 * places - 2
    err, cell = ridge_places(planted, places, 4, 480)
    assert err < 0.02 and cell > 0.9
    err, cell = ridge_places(noise, places, 4, 480)
    assert err > 0.2 and cell < 0.2
