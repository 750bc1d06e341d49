"""How far can pointing get if a model only picks image tokens? The pointing F1 of an oracle that, for every
target, names the pooled high-resolution token the target falls in and says that token's centre, at several
crop budgets.

A pooled token covers `pool * patch` pixels of the resized crop canvas (28 px for the tiny model, whose crops
are 112 px: one crop gives a 4x4 token grid over the whole image, four a 6x6 one, nine an 8x8 one). A model that
learned which token holds an object but not where inside it scores this ceiling; above it, the points must
come from what the token's features say about the position inside it.

    python -m research.tiny_molmo.point_grid_ceiling ~/.cache/molmo/runs/circles-test/points.jsonl \
        --model training/tiny-molmo/tiny-bind-circles/model --max-crops 1 4 9

Scored as `molmo eval` scores own-data point rows (targets' radii, one-to-one matching); rows without a
target count as right, as they do there for a model that names no point.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from molmo.eval.runner import own_data_items, score_own
from molmo.preprocess.config import PreprocessorConfig
from molmo.preprocess.crops import _letterbox_rect, select_tiling
from molmo.text.points import points_to_text


def cell_grid(image_hw: tuple[int, int], cfg: PreprocessorConfig, max_crops: int, unit: str = "token"
              ) -> tuple[tuple[int, int, int, int], int, tuple[int, int]]:
    """(letter-box rect in the canvas: top, left, h, w), a cell's side in canvas pixels (a pooled token's, or a
    ViT patch's with `unit="patch"`), and the number of cell rows and columns the high-resolution crops give,
    as `make_crops` lays them out."""
    p, (lm, rm) = cfg.patch_size, cfg.overlap_margins
    window_patches = cfg.patch_grid[0] - lm - rm
    window, margin = window_patches * p, (lm + rm) * p
    rows, cols = select_tiling(image_hw[0] - margin, image_hw[1] - margin, window, max_crops)
    canvas = (rows * window + margin, cols * window + margin)
    cell = cfg.pool_h * p if unit == "token" else p
    return _letterbox_rect(image_hw, canvas), cell, (-(-canvas[0] // cell), -(-canvas[1] // cell))


def snap_to_cells(points: np.ndarray, image_hw: tuple[int, int], cfg: PreprocessorConfig, max_crops: int,
                  unit: str = "token") -> np.ndarray:
    """Image-pixel (x, y) points -> the centres of the cells they fall in (image pixels), one per cell."""
    (top, left, nh, nw), cell, (gh, gw) = cell_grid(image_hw, cfg, max_crops, unit)
    sy, sx = nh / image_hw[0], nw / image_hw[1]
    tx = np.clip(((points[:, 0] * sx + left) // cell).astype(int), 0, gw - 1)
    ty = np.clip(((points[:, 1] * sy + top) // cell).astype(int), 0, gh - 1)
    cells = list(dict.fromkeys(zip(ty.tolist(), tx.tolist())))  # one point per cell, in the targets' order
    centres = np.array([((x + 0.5) * cell - left, (y + 0.5) * cell - top) for y, x in cells], np.float64)
    centres /= (sx, sy)
    return np.clip(centres, 0, (image_hw[1], image_hw[0]))


def grid_ceiling(data: str | Path, cfg: PreprocessorConfig, max_crops: int, unit: str = "token") -> dict:
    """Mean F1 of the cell-centre oracle over the point rows of an own-data file, and the cell grids' sizes."""
    scores, grids = [], set()
    for group, item in own_data_items(data):
        if group != "point":
            continue
        w, h = item.reference["image_size"]
        targets = np.array([p[:2] for p in item.reference["points"]], np.float64).reshape(-1, 2)
        snapped = snap_to_cells(targets, (h, w), cfg, max_crops, unit) if len(targets) else targets
        answer = points_to_text(snapped.tolist(), (w, h), "objects")  # "There are none." without targets
        scores.append(score_own("point", answer, item.reference, judge=None)["f1"])
        grids.add(cell_grid((h, w), cfg, max_crops, unit)[2])
    if not scores:
        raise SystemExit(f"no pointing rows in {data}")
    return {"rows": len(scores), "f1": float(np.mean(scores)), "grids": sorted(grids)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", help="an own-data JSONL with point rows")
    p.add_argument("--model", required=True, help="a model folder; its preprocessor_config.json gives the crops")
    p.add_argument("--max-crops", type=int, nargs="+", default=[1, 4, 9, 12])
    args = p.parse_args()
    cfg = PreprocessorConfig.from_json(Path(args.model) / "preprocessor_config.json")
    print(f"{'max crops':>9}  {'cell':<5}  rows  grids (rows x cols)         oracle F1")
    for k in args.max_crops:
        for unit in ("token", "patch"):
            s = grid_ceiling(args.data, cfg, k, unit)
            grids = ", ".join(f"{a}x{b}" for a, b in s["grids"][:3]) + (" ..." if len(s["grids"]) > 3 else "")
            print(f"{k:>9}  {unit:<5}  {s['rows']:>4}  {grids:<26} {s['f1']:.3f}")


if __name__ == "__main__":
    main()
