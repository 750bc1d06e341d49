"""What do a model's counts follow: the asked group, or every object in the scene? Reads finished `molmo eval`
folders on the held-out target-group counts and fits each model's answers to the scene's objects.

A model can score "within one" on the target-group questions without binding the question's colour and shape
to the image: the number of objects in a scene grows with its target group, so a guess from the total is close
too. The fit `answer ~ a * targets + b * other objects + c` tells the two apart (a reader of the asked group has
b near 0; a reader of the total has a near b).

    python -m molmo.eval.heldout --out ~/.cache/molmo/runs/heldout
    molmo eval --model M --data ~/.cache/molmo/runs/heldout/target_counts.jsonl --out OUT
    python -m research.tiny_molmo.count_sources ~/.cache/molmo/runs/heldout OUT [OUT ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def count_sources(heldout: str | Path, eval_dir: str | Path) -> dict[str, float]:
    """Exact / within-one / correlation of the answers with the target group's count and with all objects, and
    the least-squares coefficients of targets, other objects and the constant. Unparsable answers count as
    wrong and are left out of the fit."""
    heldout = Path(heldout)
    scenes = {f"points/{s['image']}": s for s in map(json.loads, (heldout / "points" / "scenes.jsonl").open())}
    rows = [json.loads(line) for line in (heldout / "target_counts.jsonl").open()]
    predictions = {r["id"]: r["prediction"].strip() for r in map(json.loads, (Path(eval_dir) / "predictions.jsonl").open())}
    targets, others, answers = [], [], []
    for row in rows:
        key = f"{row['image']}#0"
        if key not in predictions:
            continue
        scene = scenes[row["image"]]
        t = scene["target"]
        n = sum(o["colour"] == t["colour"] and o["shape"] == t["shape"] for o in scene["objects"])
        if n != int(row["answer"]):
            raise SystemExit(f"{row['image']}: scenes.jsonl and target_counts.jsonl disagree ({n} vs {row['answer']})")
        targets.append(n)
        others.append(len(scene["objects"]) - n)
        answers.append(int(predictions[key]) if predictions[key].isdigit() else -1)
    if not answers:
        raise SystemExit(f"no target-count prediction in {eval_dir}")
    t, o, y = (np.array(a, np.float64) for a in (targets, others, answers))
    ok = y >= 0
    corr = lambda a: float(np.corrcoef(a[ok], y[ok])[0, 1]) if ok.sum() > 2 and y[ok].std() > 0 else float("nan")
    a, b, c = np.linalg.lstsq(np.stack([t, o, np.ones_like(t)], 1)[ok], y[ok], rcond=None)[0]
    return {"rows": len(y), "exact": float(np.mean(y == t)), "within_one": float(np.mean(np.abs(y - t) <= 1)),
            "corr_target": corr(t), "corr_all": corr(t + o), "per_target": float(a), "per_other": float(b),
            "constant": float(c)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("heldout", help="the held-out folder (`python -m molmo.eval.heldout --out`)")
    p.add_argument("eval_dirs", nargs="+", help="`molmo eval --out` folders on its target_counts.jsonl")
    args = p.parse_args()
    print(f"{'evaluation':<32} rows  exact  within 1  corr target / all   answer ~ a*targets + b*others + c")
    for d in args.eval_dirs:
        s = count_sources(args.heldout, d)
        print(f"{Path(d).name:<32} {s['rows']:>4}  {s['exact']:.3f}  {s['within_one']:>8.3f}  "
              f"{s['corr_target']:>11.2f} / {s['corr_all']:.2f}   a {s['per_target']:.2f}  b {s['per_other']:.2f}  "
              f"c {s['constant']:.2f}")


if __name__ == "__main__":
    main()
