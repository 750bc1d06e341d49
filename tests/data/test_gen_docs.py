"""Tests for the `docs` generator: determinism, every answer recomputed from the scene data by an independent
reading of the question, bar lengths measured in the rendered pixels, option checks and own-data validity.
Run: python -m pytest tests/data/test_gen_docs.py -q"""

import re

import numpy as np
import pytest

from molmo.data.generators.base import generate_dataset, generate_one
from molmo.data.generators.docs import KINDS
from molmo.data.owndata import read_own_data, validate_own_data


def _num(text: str) -> float:
    return float(text.rstrip("%"))


def _argmax(d: dict) -> str:
    return max(d, key=d.get)


def _argmin(d: dict) -> str:
    return min(d, key=d.get)


def expected_answer(scene: dict, question: str):
    """The answer to `question` recomputed from scene["data"]; written apart from the generator on purpose."""
    kind, data, q = scene["kind"], scene["data"], question
    if q in ("Transcribe the text in this image.", "What does this document say?",
             "Read out all the text in the document."):
        return scene["transcript"]
    if kind in ("bar", "hbar"):
        if m := re.search(r"\b([A-H]) or ([A-H])\b", q):
            a, b = m.groups()
            return a if data[a] > data[b] else b
        if m := re.search(r"difference between ([A-H]) and ([A-H])", q):
            return abs(data[m[1]] - data[m[2]])
        if q.startswith("How many bars"):
            return len(data)
        if "sum of all" in q:
            return sum(data.values())
        if "title" in q:
            return scene["title"]
        if re.search(r"highest|largest|tallest|longest", q):
            return _argmax(data)
        if re.search(r"lowest|smallest|shortest", q):
            return _argmin(data)
        if m := re.search(r"\b([A-H])\b( have)?\??$", q):
            return data[m[1]]
    if kind == "grouped_bar":
        cats = scene["categories"]
        if m := re.fullmatch(r"What is the value of (\w) for (\w+)\?", q):
            return data[m[2]][cats.index(m[1])]
        if m := re.fullmatch(r"What is the total of (\w) across all series\?", q):
            return sum(v[cats.index(m[1])] for v in data.values())
        if q.startswith("How many series"):
            return len(data)
        if m := re.fullmatch(r"Which series has the highest value at (\w)\?", q):
            return _argmax({g: v[cats.index(m[1])] for g, v in data.items()})
    if kind == "line":
        if m := re.fullmatch(r"What is the value in (\d+)\?", q):
            return data[m[1]]
        if "highest" in q:
            return _argmax(data)
        if "lowest" in q:
            return _argmin(data)
        if m := re.fullmatch(r"By how much did the value change from (\d+) to (\d+)\?", q):
            return data[m[2]] - data[m[1]]
        if m := re.fullmatch(r"Did the value increase from (\d+) to (\d+)\?", q):
            return "yes" if data[m[2]] > data[m[1]] else "no"
    if kind == "pie":
        if m := re.fullmatch(r"What share does (\w+) have\?", q):
            return data[m[1]]
        if q.startswith("How many slices"):
            return len(data)
        if "largest" in q:
            return _argmax(data)
        if "smallest" in q:
            return _argmin(data)
    if kind == "scatter":
        if q.startswith("How many points are"):
            return len(data["x"])
        if q == "What is on the x-axis?":
            return scene["axes"][0]
        if q == "What is on the y-axis?":
            return scene["axes"][1]
        if m := re.fullmatch(r"How many points have (\w+) greater than 5\?", q):
            assert m[1] == scene["axes"][0]
            return sum(x > 5 for x in data["x"])
    if kind == "table":
        if m := (re.fullmatch(r"What is the value in row (\w+), column (\w+)\?", q)
                 or re.fullmatch(r"What did (\w+) score in (\w+)\?", q)
                 or re.fullmatch(r"What is (\w+)'s (\w+) score\?", q)):
            return data[m[1]][m[2]]
        if q.startswith("How many people"):
            return len(data)
        if m := re.fullmatch(r"Who has the (highest|lowest) (\w+) score\?", q):
            column = {r: cells[m[2]] for r, cells in data.items()}
            return _argmax(column) if m[1] == "highest" else _argmin(column)
        if m := re.fullmatch(r"What is the total of the (\w+) column\?", q):
            return sum(cells[m[1]] for cells in data.values())
    if kind == "diagram":
        if m := (re.fullmatch(r"What does box (\w+) point to\?", q)
                 or re.fullmatch(r"Where does the arrow from (\w+) go\?", q)
                 or re.fullmatch(r"Which box does (\w+) lead to\?", q)):
            return data[m[1]]
        if q.startswith("How many boxes"):
            return len(data)
        if q.startswith("How many arrows"):
            assert all(t is None or data[t] != a for a, t in data.items()), "reciprocal arrows look like one"
            return sum(t is not None for t in data.values())
        if m := re.fullmatch(r"Which box points to (\w+)\?", q):
            assert data[m[1]] is None or data[data[m[1]]] != m[1], "reciprocal arrows look like one"
            (source,) = [a for a, t in data.items() if t == m[1]]
            return source
    if kind == "text" and data["doc"] == "invoice":
        fields = {"What is the invoice total?": sum(data["items"].values()), "Who is the customer?": data["customer"],
                  "What is the invoice number?": str(data["number"]), "How many items are listed?": len(data["items"]),
                  "Which city is the customer in?": data["city"]}
        if q in fields:
            return fields[q]
        if m := re.fullmatch(r"How much does (\w+) cost\?", q):
            return data["items"][m[1]]
    if kind == "text" and data["doc"] == "report":
        fields = {f"How many stores did {data['name']} open?": data["stores"],
                  f"How many people does the {data['city']} branch employ?": data["staff"],
                  f"In which year did {data['name']} open the new stores?": str(data["year"]),
                  "Who opened the new stores?": data["name"], "How many visitors came last month?": data["visitors"],
                  "What is the title of the document?": scene["title"]}
        if q in fields:
            return fields[q]
    raise AssertionError(f"no rule for question {q!r} of a {kind} scene")


def _check_answer(line: dict, want) -> None:
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        assert line["metric"] == "relaxed" or line["question"].startswith("How many"), line
        assert _num(line["answer"]) == pytest.approx(want, abs=1e-6), line
    else:
        assert line["answer"] == str(want), line


@pytest.fixture(scope="module")
def items_by_kind():
    return {kind: [generate_one("docs", seed=11, index=i, kind=kind) for i in range(6)] for kind in KINDS}


def test_same_seed_and_index_give_the_same_document():
    a = generate_one("docs", seed=2, index=5, kind="any")
    b = generate_one("docs", seed=2, index=5, kind="any")
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.annotations == b.annotations and a.scene == b.scene
    c = generate_one("docs", seed=2, index=6, kind=a.scene["kind"])
    assert a.annotations != c.annotations


@pytest.mark.parametrize("kind", KINDS)
def test_every_answer_is_recomputed_from_the_scene_data(items_by_kind, kind):
    for item in items_by_kind[kind]:
        assert item.scene["kind"] in ((kind,) if kind != "bar" else ("bar", "hbar"))
        assert item.scene["caption_facts"] and item.scene["data"]
        assert len(item.annotations) >= 2
        for line in item.annotations:
            _check_answer(line, expected_answer(item.scene, line["question"]))
            assert line["metric"] in ("relaxed", "exact", "anls")


def test_text_documents_show_their_answers_and_carry_a_transcript(items_by_kind):
    for item in items_by_kind["text"]:
        transcript = item.scene["transcript"]
        assert any(line["metric"] == "anls" and line["answer"] == transcript for line in item.annotations)
        for line in item.annotations:
            if line["metric"] != "anls" and "How many items" not in line["question"]:
                assert re.search(rf"\b{re.escape(line['answer'])}\b", transcript), (line, transcript)


def _bar_extents(item, horizontal: bool) -> list[int]:
    """Pixel length of each bar, measured along its centre line as the run of the bar's own colour."""
    img = np.asarray(item.image).astype(int)
    lengths = []
    for (x0, y0, x1, y1), colour in zip(item.scene["bars_px"], item.scene["colours"]):
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        line = img[int((y0 + y1) / 2), :] if horizontal else img[:, int((x0 + x1) / 2)]
        inside = np.abs(line - rgb).sum(-1) < 30
        assert inside.any(), "bar colour not found in the image"
        lengths.append(int(inside.sum()))
    return lengths


@pytest.mark.parametrize("index", [0, 1, 2])
def test_rendered_bar_heights_follow_the_data(index):
    item = generate_one("docs", seed=4, index=index, kind="bar", difficulty="easy")
    assert item.scene["orientation"] == "vertical" and item.scene["value_labels"]
    values = list(item.scene["data"].values())
    heights = _bar_extents(item, horizontal=False)
    top = max(range(len(values)), key=values.__getitem__)
    for v, h in zip(values, heights):  # 1.5 px of anti-aliasing per bar end
        assert h / heights[top] == pytest.approx(v / values[top], abs=3 / heights[top])
    # And against the value axis: the tallest bar spans value/axis_max of the plot height.
    x0, y0, x1, y1 = item.scene["plot_px"]
    axis = item.scene["value_axis"]
    assert heights[top] / (y1 - y0) == pytest.approx(values[top] / axis["max"], abs=3 / (y1 - y0))


def test_rendered_horizontal_bar_lengths_follow_the_data():
    item = generate_one("docs", seed=4, index=3, kind="hbar")
    values = list(item.scene["data"].values())
    lengths = _bar_extents(item, horizontal=True)
    for v, n in zip(values, lengths):  # each bar has its own row band, so a row's run is that bar alone
        assert n / max(lengths) == pytest.approx(v / max(values), abs=3 / max(lengths))


def test_easy_difficulty_gives_plain_labelled_vertical_bar_charts():
    for i in range(5):
        item = generate_one("docs", seed=9, index=i, kind="any", difficulty="easy")
        assert item.scene["kind"] == "bar" and item.scene["orientation"] == "vertical"
        assert 3 <= len(item.scene["data"]) <= 5 and item.scene["value_labels"]
        assert all(float(v).is_integer() for v in item.scene["data"].values())


def test_normal_bar_charts_vary_their_look():
    scenes = [generate_one("docs", seed=21, index=i, kind="bar").scene for i in range(16)]
    assert {s["orientation"] for s in scenes} == {"vertical", "horizontal"}
    assert len({len(s["data"]) for s in scenes}) >= 3
    assert all(3 <= len(s["data"]) <= 8 for s in scenes)
    assert len({s["colours"][0] for s in scenes}) >= 4
    assert {s["value_labels"] for s in scenes} == {True, False}
    for s in scenes:  # unlabelled values stay whole numbers, readable against the ticks
        if not s["value_labels"]:
            assert all(float(v).is_integer() for v in s["data"].values())
        assert all(0 < v <= s["value_axis"]["max"] for v in s["data"].values())


def test_any_kind_covers_many_document_types():
    kinds = {generate_one("docs", seed=3, index=i).scene["kind"] for i in range(30)}
    assert {"bar", "table", "diagram", "text"} <= kinds | {"hbar"} and len(kinds) >= 6


def test_chart_kind_draws_only_charts():
    kinds = {generate_one("docs", seed=3, index=i, kind="chart").scene["kind"] for i in range(12)}
    assert kinds <= {"bar", "hbar", "grouped_bar", "line", "pie", "scatter"} and len(kinds) >= 3


def test_images_have_a_trainable_size():
    for kind in KINDS:
        w, h = generate_one("docs", seed=0, index=0, kind=kind).image.size
        assert 150 <= min(w, h) and max(w, h) <= 640, (kind, w, h)


def test_bad_options_are_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="unknown docs kind 'donut'"):
        generate_one("docs", seed=0, index=0, kind="donut")
    with pytest.raises(ValueError, match="unknown docs difficulty 'medium'"):
        generate_one("docs", seed=0, index=0, difficulty="medium")


def test_recipe_styles_option_tags_every_line():
    item = generate_one("docs", seed=0, index=0, kind="table", recipe_styles=True)
    assert {line["style"] for line in item.annotations} == {"pixmo_docs_tables"}
    assert "style" not in generate_one("docs", seed=0, index=0, kind="table").annotations[0]


def test_generated_dataset_passes_the_own_data_validator(tmp_path):
    path = generate_dataset("docs", n=6, out=tmp_path / "docs", seed=0, workers=1, progress=False)
    assert validate_own_data(path) == []
    examples = read_own_data(path)
    assert len(examples) == 6
    assert all(len(e.annotations) >= 2 for e in examples)
    assert len((tmp_path / "docs" / "scenes.jsonl").read_text().splitlines()) == 6


def test_dataset_of_one_kind_through_the_doc_kind_option(tmp_path):
    path = generate_dataset("docs", n=2, out=tmp_path / "bars", seed=0, workers=1, progress=False,
                            doc_kind="table")
    assert validate_own_data(path) == []
    scenes = (tmp_path / "bars" / "scenes.jsonl").read_text().splitlines()
    assert all('"kind": "table"' in line for line in scenes)
