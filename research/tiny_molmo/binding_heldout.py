"""Held-out target-group counts where the scene's total does not give the answer: point scenes with two counted
groups, one asked about, drawn with seeds no preset trains on. A model that counts every object scores near
the blind level here; one that binds the question's words to the image does not.

Two sets, one folder each, in the layout `count_sources` reads (`points/` with its scenes.jsonl, and
`target_counts.jsonl`):
- `colour/`: the groups share one shape and differ only in colour (what `tiny-count-colours` trains on);
- `colour_and_shape/`: the groups differ in colour and shape (what `tiny-count-groups` trains on).

    python -m research.tiny_molmo.binding_heldout --out ~/.cache/molmo/runs/heldout-binding
    molmo eval --model M --data ~/.cache/molmo/runs/heldout-binding/colour/target_counts.jsonl --out OUT [--blind]
    python -m research.tiny_molmo.count_sources ~/.cache/molmo/runs/heldout-binding/colour OUT
    # tiny-count-bind's regime: easy scenes, three groups of 0-4
    python -m research.tiny_molmo.binding_heldout --out ~/.cache/molmo/runs/heldout-bind-easy --difficulty easy \
        --groups 3 --max-count 4
"""

from __future__ import annotations

from pathlib import Path

from molmo.cli_args import ArgumentParser, positive_int
from molmo.data.generators.base import generate_dataset
from molmo.data.generators.scenes import DIFFICULTY, GROUP_BY
from molmo.eval.heldout import write_rows, target_count_rows

SEED = 9102  # no training preset draws point scenes with it (the held-out set uses 9002)


def build(out: str | Path, n: int = 60, groups: int = 2, difficulty: str = "normal", max_count: int = 10) -> list[Path]:
    written = []
    for k, group_by in enumerate(GROUP_BY):
        folder = Path(out) / group_by
        data = generate_dataset("points", n, folder / "points", seed=SEED + k, workers=1, progress=False,
                                difficulty=difficulty, count_questions="target", groups=groups, group_by=group_by,
                                max_count=max_count)
        written.append(write_rows(folder / "target_counts.jsonl", target_count_rows(data, prefix="points/")))
    return written


def main() -> None:
    p = ArgumentParser(prog="python -m research.tiny_molmo.binding_heldout", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=positive_int, default=60, help="scenes per set")
    p.add_argument("--groups", type=positive_int, default=2, help="counted groups per scene")
    p.add_argument("--difficulty", choices=sorted(DIFFICULTY), default="normal")
    p.add_argument("--max-count", type=positive_int, default=10, help="objects per group at most")
    args = p.parse_args()
    for path in build(args.out, args.n, args.groups, args.difficulty, args.max_count):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
