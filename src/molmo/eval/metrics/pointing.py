"""Point extraction and pointing precision / recall / F1.

`extract_points` accepts every output format the official parser accepts, in its order: `Click(x, y)`,
`(x, y)` with one decimal, `x…="v" y…="v"` attribute pairs, and the legacy `p=ddd,ddd` / `N=ddd,ddd` (÷10);
a point with a coordinate > 100 is dropped; 0–100 coordinates become pixels (`v / 100 * size`).

`pointing_scores` matches predicted and ground-truth points one-to-one (Hungarian assignment on Euclidean
distance) and counts a matched prediction as a hit if it lies in the GT point's mask (rounded with Python's
half-to-even `round`, as the official code does) or, for data without masks, within the GT point's radius.
With no GT points the answer is right only if no point was predicted; an output that is not exactly one
well-formed point answer scores 0.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

DEFAULT_RADIUS_FRACTION = 0.05  # match radius without masks: 5 % of the image diagonal

_PATTERNS = [
    (re.compile(r"Click\(([0-9]+\.[0-9]), ?([0-9]+\.[0-9])\)"), 1.0),
    (re.compile(r"\(([0-9]+\.[0-9]),? ?([0-9]+\.[0-9])\)"), 1.0),
    (re.compile(r'x\d*="\s*([0-9]+(?:\.[0-9]+)?)"\s+y\d*="\s*([0-9]+(?:\.[0-9]+)?)"'), 1.0),
    (re.compile(r"(?:\d+|p)\s*=\s*([0-9]{3})\s*,\s*([0-9]{3})"), 0.1),
]
_VALID_FORMAT = re.compile(
    r'^(\(\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*\)\n?)+$|'
    r'^<point\s+x="\s*\d+(\.\d+)?"\s+y="\s*\d+(\.\d+)?"\s+alt="[\s\S]*?">[\s\S]*?</point>$|'
    r'^<points\s+(x\d+="\s*\d+(\.\d+)?"\s+y\d+="\s*\d+(\.\d+)?"\s+)+alt="[\s\S]*?">[\s\S]*?</points>$|'
    r'^<point\s+p=\s*\d{3}\s*,\s*\d{3}\s+alt="[\s\S]*?">[\s\S]*?</point>$|'
    r'^<points\s+(\d+=\s*\d{3}\s*,\s*\d{3}\s+)+alt="[\s\S]*?">[\s\S]*?</points>$'
)


def extract_points(text: str, image_w: float, image_h: float) -> list[tuple[float, float]]:
    points = []
    for pattern, scale in _PATTERNS:
        for m in pattern.finditer(text):
            x, y = float(m.group(1)) * scale, float(m.group(2)) * scale
            if max(x, y) > 100:
                continue  # treated as invalid output
            points.append((x / 100.0 * image_w, y / 100.0 * image_h))
    return points


def is_valid_format(text: str) -> bool:
    return _VALID_FORMAT.fullmatch(text.strip()) is not None


def _in_mask(point: tuple[float, float], mask: np.ndarray) -> bool:
    h, w = mask.shape
    x, y = int(round(point[0])), int(round(point[1]))
    return 0 <= x < w and 0 <= y < h and bool(mask[y, x])


def f1(precision: float, recall: float) -> float:
    return 0.0 if precision == 0 or recall == 0 else 2 * precision * recall / (precision + recall + 1e-10)


def pointing_scores(prediction: str, gt_points: Sequence[Sequence[float]], image_size: tuple[float, float],
                    masks: Sequence[np.ndarray] | None = None, radii: Sequence[float | None] | None = None
                    ) -> dict[str, float]:
    """gt_points in pixels ([x, y]); `masks` one H×W array per GT point, or `radii` (pixels, None = default)."""
    w, h = image_size
    pred = extract_points(prediction, w, h)
    if len(gt_points) == 0:
        s = float(len(pred) == 0)
        return {"precision": s, "recall": s, "f1": s}
    if not is_valid_format(prediction) or not pred:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    gt = np.asarray([p[:2] for p in gt_points], float)
    pred_arr = np.asarray(pred, float)
    from scipy.optimize import linear_sum_assignment  # here: scipy.optimize takes ~1 s to import
    from scipy.spatial.distance import cdist

    rows, cols = linear_sum_assignment(cdist(pred_arr, gt))
    if masks is not None:
        hits = sum(_in_mask(pred_arr[i], np.asarray(masks[j])) for i, j in zip(rows, cols))
    else:
        default = DEFAULT_RADIUS_FRACTION * float(np.hypot(w, h))
        rad = [default if (radii is None or radii[j] is None) else radii[j] for j in range(len(gt))]
        hits = sum(np.hypot(*(pred_arr[i] - gt[j])) <= rad[j] for i, j in zip(rows, cols))
    precision, recall = hits / len(pred_arr), hits / len(gt)
    return {"precision": precision, "recall": recall, "f1": f1(precision, recall)}
