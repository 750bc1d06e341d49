"""Point offsets: a model's points against the targets and against uniform random points."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from research.tiny_molmo.point_offsets import point_offsets


def _eval_folder(tmp_path, predictions: list[str]):
    Image.new("RGB", (200, 100), "white").save(tmp_path / "scene.png")
    rows = [{"image": "scene.png", "task": "point", "label": "red circles", "points": [[50.0, 25.0, 5.0]]},
            {"image": "scene.png", "task": "point", "label": "blue squares", "points": [[150.0, 75.0, 5.0]]},
            {"image": "scene.png", "task": "point", "label": "green stars", "points": []}]  # no target: not read
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    out.mkdir()
    (out / "predictions.jsonl").write_text("".join(
        json.dumps({"id": f"scene.png#{k}", "prediction": p}) + "\n" for k, p in enumerate(predictions)))
    return data, out


def test_points_on_their_targets_are_near_and_points_elsewhere_are_not(tmp_path):
    on = ['<point x="25.0" y="25.0" alt="red circles">red circles</point>',
          '<point x="75.0" y="75.0" alt="blue squares">blue squares</point>', "There are none."]
    data, out = _eval_folder(tmp_path, on)
    s = point_offsets(data, out)
    assert s["rows"] == 2 and s["points_per_row"] == 1 and s["targets_per_row"] == 1
    assert s["median_model"] == pytest.approx(0) and s["near_model"] == 1
    assert s["median_uniform"] > 0.05  # the uniform baseline is drawn over the whole image
    # both answers point at the other row's target: half the image's width away
    (out / "predictions.jsonl").write_text("".join(json.dumps({"id": f"scene.png#{k}", "prediction": p}) + "\n"
                                                   for k, p in enumerate([on[1], on[0]])))
    s = point_offsets(data, out)
    assert s["median_model"] == pytest.approx((100**2 + 50**2) ** 0.5 / 200) and s["near_model"] == 0


def test_an_evaluation_of_other_rows_is_refused(tmp_path):
    data, out = _eval_folder(tmp_path, [])
    with pytest.raises(SystemExit, match="no pointing row"):
        point_offsets(data, out)


def test_f1_by_targets_splits_rows_by_their_number_of_targets(tmp_path):
    from research.tiny_molmo.point_offsets import f1_by_targets
    answers = ['<point x="25.0" y="25.0" alt="red circles">red circles</point>', "There are none.",
               '<point x="10.0" y="10.0" alt="green stars">green stars</point>']
    data, out = _eval_folder(tmp_path, answers)
    f1 = f1_by_targets(data, out)
    assert f1["one"] == (2, pytest.approx(0.5))  # the red circle found, the blue square missed
    assert f1["none"] == (1, 0.0) and f1["several"][0] == 0  # a point where nothing is asked for scores 0


def test_f1_by_expression_splits_rows_by_wording_and_by_whether_a_target_exists(tmp_path):
    from research.tiny_molmo.point_offsets import expression_kind, f1_by_expression
    assert [expression_kind(label) for label in ("red stars", "stars", "red shapes", "stars in the top half",
                                                 "large stars")] == ["colour+shape", "shape", "colour", "half", "size"]
    answers = ['<point x="25.0" y="25.0" alt="red circles">red circles</point>', "There are none.",
               '<point x="10.0" y="10.0" alt="green stars">green stars</point>']
    data, out = _eval_folder(tmp_path, answers)
    assert f1_by_expression(data, out) == {(False, "colour+shape"): (1, 0.0),
                                           (True, "colour+shape"): (2, pytest.approx(0.5))}
