"""Bradley–Terry Elo recovers known strengths from simulated comparisons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from molmo.eval.elo import fit_elo, main, read_comparisons


def simulate(true: dict[str, float], n: int, seed: int = 0, tie_rate: float = 0.1):
    rng = np.random.default_rng(seed)
    names = list(true)
    rows = []
    for _ in range(n):
        a, b = rng.choice(names, 2, replace=False)
        p = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
        u = rng.random()
        winner = "tie" if u < tie_rate else ("model_a" if rng.random() < p else "model_b")
        rows.append({"model_a": a, "model_b": b, "winner": winner})
    return rows


def test_recovers_known_strengths_within_ci(tmp_path):
    true = {"m0": 1000.0, "m1": 1100.0, "m2": 1250.0, "m3": 900.0}
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in simulate(true, 6000)))
    result = fit_elo(read_comparisons(path), anchor="m0", bootstrap=60)
    for i, m in enumerate(result.models):
        assert result.lower[i] - 15 <= true[m] <= result.upper[i] + 15, (m, result.ratings[i])
    assert [result.models[i] for i in np.argsort(-result.ratings)] == ["m2", "m1", "m0", "m3"]
    assert result.ratings[result.models.index("m0")] == pytest.approx(1000.0)


def test_cli_writes_table_and_png(tmp_path, capsys):
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in simulate({"a": 1000, "b": 1200}, 300)))
    assert main([str(path), "--out", str(tmp_path / "elo.png"), "--bootstrap", "10"]) == 0
    assert (tmp_path / "elo.png").stat().st_size > 1000
    assert "rank" in capsys.readouterr().out


def test_bad_rows_are_named(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"model_a": "x", "model_b": "y", "winner": "nobody"}))
    with pytest.raises(ValueError, match="c.jsonl:1: winner 'nobody'"):
        read_comparisons(path)
