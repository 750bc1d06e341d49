"""count_sources: a reader of the asked group against a reader of the scene's total."""

from __future__ import annotations

import json

import numpy as np
import pytest

from research.tiny_molmo.count_sources import count_sources


def _heldout(tmp_path, n_targets, n_others):
    (tmp_path / "points").mkdir()
    target = {"colour": "red", "shape": "circle"}
    scenes, rows = [], []
    for i, (t, o) in enumerate(zip(n_targets, n_others)):
        objects = [dict(target)] * t + [{"colour": "blue", "shape": "circle"}] * o
        scenes.append({"image": f"images/{i:06d}.png", "target": target, "objects": objects})
        rows.append({"image": f"points/images/{i:06d}.png", "question": "How many red circles are there?",
                     "answer": str(t), "metric": "exact"})
    (tmp_path / "points" / "scenes.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scenes))
    (tmp_path / "target_counts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def _answers(tmp_path, name, answers):
    out = tmp_path / name
    out.mkdir()
    (out / "predictions.jsonl").write_text("".join(
        json.dumps({"id": f"points/images/{i:06d}.png#0", "prediction": str(a)}) + "\n" for i, a in enumerate(answers)))
    return out


def test_a_group_reader_weighs_only_the_targets_and_a_total_reader_weighs_both(tmp_path):
    rng = np.random.default_rng(0)
    targets, others = rng.integers(0, 11, 40), rng.integers(1, 8, 40)
    heldout = _heldout(tmp_path, targets, others)
    group = count_sources(heldout, _answers(heldout, "group", targets))
    assert group["exact"] == 1 and group["per_target"] == pytest.approx(1) and abs(group["per_other"]) < 1e-6
    total = count_sources(heldout, _answers(heldout, "total", targets + others - 3))
    assert total["per_target"] == pytest.approx(1) and total["per_other"] == pytest.approx(1)
    assert total["constant"] == pytest.approx(-3) and total["corr_all"] == pytest.approx(1)
    assert total["exact"] < 0.5
    garbled = count_sources(heldout, _answers(heldout, "garbled", ["many"] * 40))
    assert garbled["exact"] == 0 and garbled["rows"] == 40


def test_a_held_out_folder_that_disagrees_with_its_scenes_is_refused(tmp_path):
    heldout = _heldout(tmp_path, [2], [1])
    (heldout / "target_counts.jsonl").write_text(json.dumps({"image": "points/images/000000.png", "question": "q",
                                                             "answer": "5", "metric": "exact"}) + "\n")
    with pytest.raises(SystemExit, match="disagree"):
        count_sources(heldout, _answers(heldout, "x", [5]))
