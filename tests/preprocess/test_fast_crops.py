"""The memory-speed crop path: the same crops with one thread or several, and pixels within the conformance
tolerance (1e-3) of the float32 torch reference (letter-box resize, normalise, patchify)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molmo.preprocess import PreprocessorConfig
from molmo.preprocess.crops import make_crops, normalize, patchify, resize_and_pad


@pytest.mark.parametrize("hw", [(97, 211), (640, 480), (1203, 777)])
def test_crops_match_the_torch_reference_and_do_not_depend_on_threads(hw):
    image = np.random.default_rng(sum(hw)).integers(0, 256, (*hw, 3), dtype=np.uint8)
    cfg = PreprocessorConfig.released().replace(max_crops=6)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = make_crops(image, cfg)
        torch.set_num_threads(max(before, 2))
        many = make_crops(image, cfg)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(one.images, many.images) and np.array_equal(one.image_masks, many.image_masks)
    global_view, mask = resize_and_pad(image, cfg.base_image_input_size)
    reference = patchify(normalize(global_view, cfg), cfg.patch_size)
    np.testing.assert_allclose(one.images[0], reference, atol=1e-3)
    rows, cols = one.tiling
    window = (cfg.patch_grid[0] - sum(cfg.overlap_margins)) * cfg.patch_size
    margin = sum(cfg.overlap_margins) * cfg.patch_size
    big, big_mask = resize_and_pad(image, (rows * window + margin, cols * window + margin))
    s = cfg.base_image_input_size[0]
    last = big[(rows - 1) * window:(rows - 1) * window + s, (cols - 1) * window:(cols - 1) * window + s]
    np.testing.assert_allclose(one.images[-1], patchify(normalize(last, cfg), cfg.patch_size), atol=1e-3)
    m = big_mask[:s, :s].astype(np.float32)[..., None]
    assert np.array_equal(one.image_masks[0], patchify(m, cfg.patch_size).mean(axis=1))  # released row shift
