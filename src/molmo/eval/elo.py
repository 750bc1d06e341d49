"""Bradley–Terry Elo from pairwise human preferences (the Chatbot-Arena recipe the paper follows):
P(a beats b) = 1 / (1 + 10^((R_b - R_a) / 400)), fitted by maximum likelihood (ties = half a win each),
anchored (a named model at 1000, or the mean at 1000), with seeded bootstrap confidence intervals.

    python -m molmo.eval.elo comparisons.jsonl --out elo.png [--anchor MODEL] [--bootstrap 200]

Input rows (JSONL or CSV): model_a, model_b, winner in {model_a, model_b, tie} (the winner may also be
given as "a" / "b" or the winning model's name).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

SCALE = 400 / math.log(10)


@dataclass(frozen=True)
class EloResult:
    models: list[str]
    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def table(self) -> str:
        order = np.argsort(-self.ratings)
        width = max(len(m) for m in self.models)
        lines = [f"{'rank':>4}  {'model'.ljust(width)}  {'elo':>7}  {'95% CI':>17}"]
        for rank, i in enumerate(order, 1):
            lines.append(f"{rank:>4}  {self.models[i].ljust(width)}  {self.ratings[i]:>7.1f}  "
                         f"[{self.lower[i]:>7.1f}, {self.upper[i]:>7.1f}]")
        return "\n".join(lines)


def read_comparisons(path: str | Path) -> list[tuple[str, str, float]]:
    """-> (model_a, model_b, score of a: 1 win, 0.5 tie, 0 loss)."""
    path = Path(path)
    if path.suffix == ".csv":
        rows = list(csv.DictReader(path.open()))
    else:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = []
    for n, row in enumerate(rows, 1):
        try:
            a, b, w = row["model_a"], row["model_b"], str(row["winner"])
        except KeyError as e:
            raise ValueError(f"{path}:{n}: missing field {e.args[0]!r}") from None
        if w in ("model_a", "a", a):
            s = 1.0
        elif w in ("model_b", "b", b):
            s = 0.0
        elif w.lower() in ("tie", "draw", "tie (bothbad)"):
            s = 0.5
        else:
            raise ValueError(f"{path}:{n}: winner {w!r} is none of model_a, model_b, tie")
        out.append((a, b, s))
    return out


def _fit(idx_a: np.ndarray, idx_b: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    def nll(beta):
        d = beta[idx_a] - beta[idx_b]
        p = 1 / (1 + np.exp(-d))
        loss = -(score * np.log(p + 1e-12) + (1 - score) * np.log(1 - p + 1e-12)).sum() + 1e-4 * (beta ** 2).sum()
        grad_d = p - score
        grad = np.zeros(n)
        np.add.at(grad, idx_a, grad_d)
        np.add.at(grad, idx_b, -grad_d)
        return loss, grad + 2e-4 * beta

    return minimize(nll, np.zeros(n), jac=True, method="L-BFGS-B").x


def fit_elo(comparisons: list[tuple[str, str, float]], anchor: str | None = None, anchor_rating: float = 1000.0,
            bootstrap: int = 200, seed: int = 0) -> EloResult:
    if not comparisons:
        raise ValueError("no comparisons to fit")
    models = sorted({m for a, b, _ in comparisons for m in (a, b)})
    if anchor is not None and anchor not in models:
        raise ValueError(f"anchor model {anchor!r} is not among the compared models {models}")
    index = {m: i for i, m in enumerate(models)}
    ia = np.array([index[a] for a, _, _ in comparisons])
    ib = np.array([index[b] for _, b, _ in comparisons])
    s = np.array([x for _, _, x in comparisons], float)

    def ratings(sel):
        beta = _fit(ia[sel], ib[sel], s[sel], len(models)) * SCALE
        shift = beta[index[anchor]] if anchor is not None else beta.mean()
        return beta - shift + anchor_rating

    point = ratings(np.arange(len(s)))
    rng = np.random.default_rng(seed)
    samples = np.array([ratings(rng.integers(0, len(s), len(s))) for _ in range(bootstrap)]) if bootstrap else None
    lower = np.percentile(samples, 2.5, axis=0) if samples is not None else point
    upper = np.percentile(samples, 97.5, axis=0) if samples is not None else point
    return EloResult(models, point, lower, upper)


def plot_elo(result: EloResult, out: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(result.ratings)
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(order) + 1.5))
    y = np.arange(len(order))
    r = result.ratings[order]
    ax.errorbar(r, y, xerr=[r - result.lower[order], result.upper[order] - r], fmt="o", capsize=3)
    ax.set_yticks(y, [result.models[i] for i in order])
    ax.set_xlabel("Elo (Bradley–Terry, 95% bootstrap CI)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bradley–Terry Elo from pairwise comparisons")
    parser.add_argument("comparisons", type=Path)
    parser.add_argument("--out", type=Path, default=Path("elo.png"))
    parser.add_argument("--anchor", default=None, help="model fixed at --anchor-rating (default: mean at 1000)")
    parser.add_argument("--anchor-rating", type=float, default=1000.0)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = fit_elo(read_comparisons(args.comparisons), args.anchor, args.anchor_rating, args.bootstrap, args.seed)
    print(result.table())
    print(f"wrote {plot_elo(result, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
