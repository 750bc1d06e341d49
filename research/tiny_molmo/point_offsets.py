"""Do a model's points aim at all? Each predicted point's distance to the nearest target, against the same number of
points drawn uniformly over the image, from a finished `molmo eval --data` folder.

Pointing F1 counts a point only inside a target's radius, so a model whose points land near the objects but not
on them scores as one that points at random; this tells the two apart.

    molmo eval --model M --data ~/.cache/molmo/runs/heldout/data.jsonl --out OUT
    python -m research.tiny_molmo.point_offsets ~/.cache/molmo/runs/heldout/data.jsonl OUT

Distances are in units of the image's longer side; only pointing rows with at least one target are read.
`--by-targets` adds each evaluation's pointing F1 over the rows with no target, one target, and more than one
(as `molmo eval` scores them): a model can aim at one object and still fail to list several. `--by-expression`
adds F1 by the kind of referring expression (`expression_kind`) over the rows without a target and those with:
which absent groups a model still points at.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from molmo.data.owndata import read_own_data
from molmo.eval.metrics.pointing import extract_points
from molmo.eval.runner import own_data_items, score_own


def eval_predictions(eval_dir: str | Path) -> dict[str, str]:
    """{row id: the model's answer} from a `molmo eval --out` folder."""
    rows = map(json.loads, (Path(eval_dir) / "predictions.jsonl").read_text().splitlines())
    return {row["id"]: row["prediction"] for row in rows}


def point_offsets(data: str | Path, eval_dir: str | Path, seed: int = 0, near: float = 0.05) -> dict[str, float]:
    """Median distance to the nearest target and the share within `near`, for the model's points and for
    uniform random ones (one per predicted point)."""
    predictions = eval_predictions(eval_dir)
    rng = np.random.default_rng(seed)
    model, uniform, rows, predicted, targets = [], [], 0, 0, 0
    for group, item in own_data_items(data):
        if group != "point" or not item.reference["points"] or item.id not in predictions:
            continue
        w, h = item.reference["image_size"]
        gold = np.array([p[:2] for p in item.reference["points"]], np.float64)
        points = np.array(extract_points(predictions[item.id], w, h), np.float64).reshape(-1, 2)
        drawn = rng.uniform((0, 0), (w, h), size=points.shape)
        for dists, pts in ((model, points), (uniform, drawn)):
            dists.extend(np.min(np.linalg.norm(pts[:, None] - gold[None], axis=-1), axis=1) / max(w, h))
        rows, predicted, targets = rows + 1, predicted + len(points), targets + len(gold)
    if not rows:
        raise SystemExit(f"no pointing row with a target in {data} has a prediction in {eval_dir}")
    model_d, uniform_d = np.array(model), np.array(uniform)
    return {"rows": rows, "points_per_row": predicted / rows, "targets_per_row": targets / rows,
            "median_model": float(np.median(model_d)) if model else float("nan"),
            "median_uniform": float(np.median(uniform_d)) if uniform else float("nan"),
            "near_model": float(np.mean(model_d < near)) if model else float("nan"),
            "near_uniform": float(np.mean(uniform_d < near)) if uniform else float("nan")}


def scored_point_rows(data: str | Path, eval_dir: str | Path):
    """(item, pointing F1 as `molmo eval` scores it) for each pointing row of `data` the evaluation answered."""
    predictions = eval_predictions(eval_dir)
    for group, item in own_data_items(data):
        if group == "point" and item.id in predictions:
            yield item, score_own(group, predictions[item.id], item.reference, judge=None)["f1"]


def f1_by_targets(data: str | Path, eval_dir: str | Path) -> dict[str, tuple[int, float]]:
    """{"none" / "one" / "several": (rows, mean pointing F1)} over the pointing rows an evaluation answered."""
    scores: dict[str, list[float]] = {"none": [], "one": [], "several": []}
    for item, f1 in scored_point_rows(data, eval_dir):
        n = len(item.reference["points"])
        scores["none" if n == 0 else "one" if n == 1 else "several"].append(f1)
    return {k: (len(v), float(np.mean(v)) if v else float("nan")) for k, v in scores.items()}


def expression_kind(label: str) -> str:
    """The generator's kind of referring expression (molmo.data.generators.scenes.expressions) from its wording:
    "red stars" colour+shape (the target group, or a shape absent from the scene), "stars" shape, "red shapes"
    colour, "stars in the top half" half, "large stars" size."""
    words = label.split()
    if " in the " in label:
        return "half"
    if words[0] in ("large", "small"):
        return "size"
    if len(words) == 1:
        return "shape"
    return "colour" if words[-1] == "shapes" else "colour+shape"


def f1_by_expression(data: str | Path, eval_dir: str | Path) -> dict[tuple[bool, str], tuple[int, float]]:
    """{(has a target, expression kind): (rows, mean pointing F1)} over the pointing rows an evaluation answered."""
    labels = {f"{ex.id}#{k}": a.label for ex in read_own_data(data) for k, a in enumerate(ex.annotations)}
    scores: dict[tuple[bool, str], list[float]] = {}
    for item, f1 in scored_point_rows(data, eval_dir):
        scores.setdefault((bool(item.reference["points"]), expression_kind(labels[item.id])), []).append(f1)
    return {k: (len(v), float(np.mean(v))) for k, v in sorted(scores.items())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", help="the own-data JSONL the evaluation read")
    p.add_argument("eval_dirs", nargs="+", help="`molmo eval --out` folders (predictions.jsonl)")
    p.add_argument("--by-targets", action="store_true", help="+ pointing F1 by the row's number of targets")
    p.add_argument("--by-expression", action="store_true", help="+ pointing F1 by expression, with / without target")
    p.add_argument("--near", type=float, default=0.05, help="'near' threshold, in image longer sides")
    args = p.parse_args()
    print(f"{'evaluation':<40} rows  points/row  targets/row  median model/uniform  "
          f"within {args.near:g} model/uniform")
    for d in args.eval_dirs:
        s = point_offsets(args.data, d, near=args.near)
        print(f"{Path(d).name:<40} {s['rows']:>4}  {s['points_per_row']:>10.2f}  {s['targets_per_row']:>11.2f}  "
              f"{s['median_model']:>8.3f} / {s['median_uniform']:.3f}  {s['near_model']:>13.2f} / "
              f"{s['near_uniform']:.2f}")
    if args.by_targets:
        print(f"\n{'evaluation':<40} pointing F1 (rows) with no target / one / several")
        for d in args.eval_dirs:
            f1 = f1_by_targets(args.data, d)
            print(f"{Path(d).name:<40} " + " / ".join(f"{f1[k][1]:.3f} ({f1[k][0]})" for k in ("none", "one", "several")))

    if args.by_expression:
        print(f"\n{'evaluation':<40} pointing F1 (rows) by expression, rows without a target | with")
        for d in args.eval_dirs:
            f1 = f1_by_expression(args.data, d)
            side = lambda has: ", ".join(f"{k} {v[1]:.3f} ({v[0]})" for (h, k), v in f1.items() if h == has)
            print(f"{Path(d).name:<40} {side(False)} | {side(True)}")


if __name__ == "__main__":
    main()
