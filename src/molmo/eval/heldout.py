"""The embedded model's held-out set: generated images with seeds no training preset uses, in own-data JSONL.

    python -m molmo.eval.heldout --out runs/heldout            # 60 images each of points, clocks, bar charts
    molmo eval --data runs/heldout/data.jsonl --out runs/eval-heldout
    python -m molmo.eval.heldout --out runs/heldout-hard --difficulty hard   # a regime no preset trains on

`--difficulty hard` draws the generators' hard level, which the tiny presets never train on (points: stripe
backgrounds, smaller objects and up to 12 distractors; clocks: smaller, more rotated faces and more clutter;
charts: the generator's full range): the stricter check of whether a model reads images beyond its training
distribution.

Per image it keeps at most one row of each kind (point-then-count, pointing, "how many" question, clock
question, bar-value question), so the scores are not dominated by a few busy images. Those "how many" rows ask
about any expression of a scene, and ~60% of their answers are 0 or 1, which the wording alone predicts; beside
`data.jsonl` it writes `target_counts.jsonl`, one "How many <colour> <shape>s are there?" per point scene about
its target group (0-10 among distractors, uniform), where a blind model can do no better than the most
frequent count:

    molmo eval --data runs/heldout/target_counts.jsonl --out runs/eval-target-counts [--blind]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from molmo.data.generators.base import generate_dataset
from molmo.data.generators.scenes import how_many_line

SETS = (("points", 9002, {}), ("clocks", 9003, {}), ("docs", 9004, {"doc_kind": "bar"}))


def row_kind(row: dict) -> str | None:
    """The scoring kind of a row; None for kinds the held-out set leaves out. Exact-match rows are "how many"
    questions in point scenes (`build_heldout` drops the charts' exact-match text questions)."""
    if row.get("task") in ("count", "point"):
        return row["task"]
    return {"exact": "how_many", "clock": "clock", "relaxed": "bar_value"}.get(row.get("metric"))


def build_heldout(out: str | Path, n: int = 60, seed: int = 0, workers: int = 1, difficulty: str = "normal") -> Path:
    out = Path(out)
    rng = random.Random(seed)
    rows = []
    for kind, gen_seed, options in SETS:
        path = generate_dataset(kind, n, out / kind, seed=gen_seed, workers=workers, difficulty=difficulty,
                                **options)
        by_image: dict[tuple[str, str], list[dict]] = {}
        for row in map(json.loads, path.read_text().splitlines()):
            k = row_kind(row)
            if k is None or (kind != "points" and k == "how_many"):
                continue
            by_image.setdefault((row["image"], k), []).append(row)
        for (image, _), candidates in sorted(by_image.items()):
            row = dict(rng.choice(candidates), image=f"{kind}/{image}")
            rows.append(row)
        if kind == "points":
            write_rows(out / "target_counts.jsonl", target_count_rows(path, prefix="points/"))
    return write_rows(out / "data.jsonl", rows)


def target_count_rows(points_data: Path, prefix: str = "") -> list[dict]:
    """One exact-match "how many" row per image of a `points` dataset, about the scene's target group: the
    generator's first point-then-count line of each image is about it (`scenes.annotations`)."""
    rows, seen = [], set()
    for row in map(json.loads, points_data.read_text().splitlines()):
        if row.get("task") == "count" and row["image"] not in seen:
            seen.add(row["image"])
            rows.append({"image": prefix + row["image"], **how_many_line(row["label"], len(row["points"]))})
    return rows


def write_rows(target: Path, rows: list[dict]) -> Path:
    tmp = target.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/heldout")
    p.add_argument("--n", type=int, default=60, help="images per generator")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--difficulty", choices=["normal", "hard"], default="normal",
                   help="the generators' level; hard is a regime no tiny preset trains on")
    args = p.parse_args(argv)
    print(f"wrote {build_heldout(args.out, args.n, workers=args.workers, difficulty=args.difficulty)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
