"""The evaluation runner: own-data scoring with a fake predictor (exact metric values), resume after an
interruption, the report page and the `molmo eval` command. Run: python -m pytest tests/eval/test_runner.py -q"""

import argparse
import json

import pytest
from PIL import Image

from molmo.eval import cli, runner
from molmo.eval.benchmarks import EvalItem
from molmo.eval.report import PREDICTED_COLOUR, REFERENCE_COLOUR, ReportSample, render_thumbnail

ANSWERS = {
    "Point to the dots.": '<points x1="20.0" y1="25.0" x2="65.0" y2="50.0" alt="dot">dot</points>',  # 1 hit of 2
    "Point to the cats.": "There are none.",
    "How many stars?": '<points x1="10.0" y1="10.0" x2="20.0" y2="20.0" x3="30.0" y3="30.0" alt="s">s</points> '
                       "Counting the star there are 3.",
    "How many moons?": "There is 1.",
    "What colour?": "Red.",
    "How many sides?": "three",
    "What word?": "hellp",
    "What time is it?": "3:47",
    "Describe it.": "A red circle. A cat.",
}


def _write_own_data(tmp_path):
    Image.new("RGB", (100, 80), "white").save(tmp_path / "a.png")
    Image.new("RGB", (100, 80), "gray").save(tmp_path / "b.png")
    lines = [
        {"image": "a.png", "task": "point", "label": "dot", "question": "Point to the dots.",
         "points": [[20, 20], [60, 40, 3]]},
        {"image": "a.png", "task": "point", "label": "cat", "question": "Point to the cats.", "points": []},
        {"image": "a.png", "task": "count", "label": "star", "question": "How many stars?",
         "points": [[1, 1], [2, 2], [3, 3]]},
        {"image": "b.png", "task": "count", "label": "moon", "question": "How many moons?", "points": [[5, 5], [9, 9]]},
        {"image": "b.png", "question": "What colour?", "answer": "red"},
        {"image": "b.png", "question": "How many sides?", "answer": "Two", "metric": "exact"},
        {"image": "b.png", "question": "What word?", "answer": "hello", "metric": "anls"},
        {"image": "b.png", "question": "What time is it?", "answer": "3:45", "metric": "clock"},
        {"image": "a.png", "task": "caption", "question": "Describe it.", "answer": "A red circle. A blue square."},
    ]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


class FakePredictor:
    def __init__(self, fail_after=None):
        self.seen, self.fail_after = [], fail_after

    def predict(self, items):
        out = []
        for it in items:
            if self.fail_after is not None and len(self.seen) >= self.fail_after:
                raise RuntimeError("interrupted")
            self.seen.append(it.prompt)
            out.append(ANSWERS[it.prompt])
        return out


EXPECTED = {
    "point": {"precision": 0.75, "recall": 0.75, "f1": 0.75, "n": 2},
    "count": {"accuracy": 0.5, "n": 2},
    "clock": {"exact": 0.0, "hour": 1.0, "close": 1.0, "n": 1},
    "caption": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "n": 1},
    "qa": {"score": pytest.approx((1.0 + 0.0 + 0.8) / 3), "vqa": 1.0, "exact": 0.0, "anls": 0.8, "n": 3},
}


def _approx(d):
    return {k: v if not isinstance(v, float) else pytest.approx(v, abs=1e-6) for k, v in d.items()}


def test_own_data_metrics_exact(tmp_path):
    data = _write_own_data(tmp_path)
    metrics = runner.evaluate_own_data(data, FakePredictor(), tmp_path / "out", batch_size=4)
    assert set(metrics) == set(EXPECTED)
    for group, expected in EXPECTED.items():
        assert metrics[group] == _approx(expected), group
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["count"] == {"accuracy": 0.5, "n": 2}
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len(ANSWERS)


def test_point_styles_and_budgets(tmp_path):
    items = dict((it.prompt, (g, it)) for g, it in runner.own_data_items(_write_own_data(tmp_path)))
    group, point = items["Point to the dots."]
    assert group == "point" and point.style == "pointing" and point.max_new_tokens == 192
    assert items["What time is it?"][0] == "clock"
    assert items["Describe it."][1].style == "long_caption"
    # the crop budget: the model's own (None reaches Molmo.ask_many, which reads preprocessor_config.json) unless
    # --max-crops says otherwise
    assert {it.max_crops for _, it in items.values()} == {None}
    assert {it.max_crops for _, it in runner.own_data_items(_write_own_data(tmp_path), max_crops=3)} == {3}


def test_resume_after_interruption(tmp_path):
    data, out = _write_own_data(tmp_path), tmp_path / "out"
    with pytest.raises(RuntimeError, match="interrupted"):
        runner.evaluate_own_data(data, FakePredictor(fail_after=5), out, batch_size=2)
    saved = [json.loads(line)["prompt"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(saved) == 4  # two whole batches were saved
    second = FakePredictor()
    metrics = runner.evaluate_own_data(data, second, out, batch_size=2)
    assert len(second.seen) == len(ANSWERS) - 4
    assert not set(second.seen) & set(saved)
    for group, expected in EXPECTED.items():
        assert metrics[group] == _approx(expected)
    third = FakePredictor()
    runner.evaluate_own_data(data, third, out)
    assert third.seen == []  # everything cached


def test_truncated_cache_line_is_predicted_again(tmp_path):
    data, out = _write_own_data(tmp_path), tmp_path / "out"
    runner.evaluate_own_data(data, FakePredictor(), out)
    lines = (out / "predictions.jsonl").read_text().splitlines()
    (out / "predictions.jsonl").write_text("\n".join(lines[:-1] + [lines[-1][:10]]) + "\n")
    again = FakePredictor()
    runner.evaluate_own_data(data, again, out)
    assert len(again.seen) == 1


def test_report_contents(tmp_path):
    data, out = _write_own_data(tmp_path), tmp_path / "out"
    runner.evaluate_own_data(data, FakePredictor(), out)
    page = (out / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") == len(ANSWERS)
    assert "Point to the dots." in page and "&lt;points x1=" in page and "What time is it?" in page
    assert "3:45" in page and "precision" in page


def test_thumbnail_draws_points_where_the_text_says():
    sample = ReportSample("point", "x", Image.new("RGB", (200, 100), "white"), "p",
                          '<point x="50.0" y="50.0" alt="d">d</point>', "", reference_points=[[40, 30]],
                          draw_points=True)
    im = render_thumbnail(sample)
    assert im.getpixel((100, 50)) == PREDICTED_COLOUR
    ring = im.getpixel((35, 30))  # left edge of the ring around (40, 30), radius 4 + 2
    assert ring[1] > 120 and ring[0] < 100, ring
    assert im.getpixel((5, 5)) == (255, 255, 255)
    assert REFERENCE_COLOUR != PREDICTED_COLOUR


def _args(**kw):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv = []
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return parser.parse_args(argv)


def test_cli_own_data_and_bad_input(tmp_path, capsys):
    data = _write_own_data(tmp_path)
    assert cli.run(_args(data=data, out=tmp_path / "o", batch_size=3), predictor=FakePredictor()) == 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["count"]["accuracy"] == 0.5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "a.png", "task": "point", "lable": "x", "points": []}\n')
    assert cli.run(_args(data=bad, out=tmp_path / "o2"), predictor=FakePredictor()) == 2
    assert "lable" in capsys.readouterr().err
    assert cli.run(_args(bench="nope", data_dir=tmp_path, out=tmp_path / "o3"), predictor=FakePredictor()) == 2
    assert cli.run(_args(bench="chartqa", out=tmp_path / "o3"), predictor=FakePredictor()) == 2


def test_predictor_answer_count_checked(tmp_path):
    class Short:
        def predict(self, items):
            return []

    item = EvalItem("1", None, "q", None, 12, 12)
    with pytest.raises(RuntimeError, match="0 answers for 1"):
        runner.predict_all([("k", item)], Short(), tmp_path)


def test_molmo_predictor_groups_by_settings(monkeypatch):
    import sys
    import types

    calls = []

    class FakeMolmo:
        @classmethod
        def from_pretrained(cls, path=None):
            return cls()

        def ask_many(self, images, questions, style=None, max_new_tokens=None, max_crops=None):
            calls.append((style, max_new_tokens, max_crops, list(questions)))
            return [types.SimpleNamespace(text=f"{style}:{q}") for q in questions]

    monkeypatch.setitem(sys.modules, "molmo.api", types.SimpleNamespace(Molmo=FakeMolmo))
    p = runner.MolmoPredictor("x")
    items = [EvalItem("1", None, "a", "vqa2", 12, 36), EvalItem("2", None, "b", "pointing", 192, 12),
             EvalItem("3", None, "c", "vqa2", 12, 36)]
    assert p.predict(items) == ["vqa2:a", "pointing:b", "vqa2:c"]
    assert sorted(c[:3] for c in calls) == [("pointing", 192, 12), ("vqa2", 12, 36)]


def test_limit_and_per_task_spread_over_the_tasks(tmp_path):
    """A file grouped by task (all points first): --limit still tests every task, --per-task caps each."""
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    rows = ([{"image": "a.png", "task": "point", "label": "yellow circle", "points": [[5, 5]]}] * 6
            + [{"image": "a.png", "task": "count", "label": "box", "points": []}] * 6
            + [{"image": "a.png", "question": "What time?", "answer": "3:15", "metric": "clock"}] * 6
            + [{"image": "a.png", "question": "How many?", "answer": "2", "metric": "exact"}] * 6)
    data = tmp_path / "grouped.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = lambda items: [runner.task_of(g, it) for g, it in items]  # noqa: E731
    limited = runner.own_data_items(data, limit=8)
    assert sorted(tasks(limited)) == sorted(["point", "count", "clock", "qa/exact"] * 2)
    assert tasks(runner.own_data_items(data, per_task=1)) == ["point", "count", "clock", "qa/exact"]
    assert len(runner.own_data_items(data, per_task=3, limit=5)) == 5
    prompts = {it.prompt for _, it in runner.own_data_items(data, per_task=1)}
    assert {"Point to yellow circles.", "How many boxes are there?"} <= prompts  # labels pluralised


def test_plural_label():
    from molmo.text.templates import plural_label

    cases = {"yellow circle": "yellow circles", "red circles": "red circles", "box": "boxes", "cherry": "cherries",
             "person": "people", "cup of tea": "cups of tea",
             "diamonds in the right half": "diamonds in the right half",
             "star in the left half": "stars in the left half", "sheep": "sheep", "glass": "glasses"}
    assert {k: plural_label(k) for k in cases} == cases
