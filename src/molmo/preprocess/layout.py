"""The image-token layout and `image_input_idx` (arch-spec §1.6): a low-res block
`<im_start> (<im_patch>*tw <im_col>)*th <im_end>` for the global view, then the high-res block over the
kept (non-overlapping) regions of all crops, and for every crop/pooled token the position of the
`<im_patch>` token that receives its feature (-100 when the token falls in an overlap margin).

    tokens, idx = image_layout(crops, cfg, special_ids)   # idx relative to the block start
"""

from __future__ import annotations

import numpy as np

from molmo.preprocess.config import PreprocessorConfig
from molmo.preprocess.crops import Crops
from molmo.text.special_tokens import ImageTokenIds


def _grid_tokens(h: int, w: int, ids: ImageTokenIds, col_tokens: bool) -> list[int]:
    row = [ids.patch] * w + ([ids.col] if col_tokens else [])
    return [ids.start] + row * h + [ids.end]


def image_layout(crops: Crops, cfg: PreprocessorConfig, ids: ImageTokenIds) -> tuple[np.ndarray, np.ndarray]:
    """Returns (token ids of the image block, image_input_idx [N, tokens_per_crop] relative to its start)."""
    th, tw = cfg.tokens_grid
    tokens = _grid_tokens(th, tw, ids, cfg.use_col_tokens)
    n = crops.images.shape[0]
    idx = np.full((n, th * tw), -100, np.int64)
    low_positions = np.flatnonzero(np.array(tokens) == ids.patch)
    idx[0] = low_positions
    if crops.tiling == (0, 0):  # single stretched crop (non-letter-box backbones)
        return np.array(tokens, np.int64), idx

    rows, cols = crops.tiling
    kept = np.array(crops.kept).reshape(rows, cols, 4)
    global_h = int(kept[:, 0, 1].sum())
    global_w = int(kept[0, :, 3].sum())
    offset = len(tokens)
    high = _grid_tokens(global_h, global_w, ids, cfg.use_col_tokens)
    high_positions = offset + np.flatnonzero(np.array(high) == ids.patch)
    tokens = tokens + high
    row0 = np.concatenate([[0], np.cumsum(kept[:, 0, 1])])
    col0 = np.concatenate([[0], np.cumsum(kept[0, :, 3])])
    for i in range(rows):
        for j in range(cols):
            r_first, n_rows, c_first, n_cols = kept[i, j]
            k = 1 + i * cols + j
            for r in range(n_rows):
                grow = row0[i] + r
                local = (r_first + r) * tw + c_first + np.arange(n_cols)
                idx[k, local] = high_positions[grow * global_w + col0[j] + np.arange(n_cols)]
    return np.array(tokens, np.int64), idx
