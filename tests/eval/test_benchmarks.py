"""Benchmark readers and presets on tiny files in each benchmark's schema (HF parquet exports or the official
JSON), scoring through each preset's metric, and an end-to-end `evaluate_benchmarks` run with a fake predictor.
Run: python -m pytest tests/eval/test_benchmarks.py -q"""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from molmo.eval import runner
from molmo.eval.benchmarks import (BENCHMARKS, PAPER11, BenchmarkDataError, expand_benchmark_names,
                                   load_benchmark, paper_average)


def _png(size=(40, 30), colour="white"):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": "x.png"}


def _parquet(root, folder, rows, name="test-00000-of-00001.parquet"):
    d = root / folder / "data"
    d.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), d / name)


def _score(name, prediction, item):
    return BENCHMARKS[name].metric(prediction, item.reference)


def test_ai2d(tmp_path):
    _parquet(tmp_path, "ai2d", [
        {"question": "Which is the sun?", "options": ["moon", "sun", "star", "sky"], "answer": "1", "image": _png(),
         "abc_label": False, "has_transparent_box": True},
        {"question": "Which letter is the root?", "options": ["a", "b"], "answer": "0", "image": _png(),
         "abc_label": True, "has_transparent_box": False}])
    items = load_benchmark("ai2d", tmp_path)
    assert items[0].style == "ai2_diagram" and items[0].max_crops == 36 and items[0].max_new_tokens == 12
    assert items[0].prompt == "Which is the sun?\nA: moon\nB: sun\nC: star\nD: sky\n"
    assert _score("ai2d", "B", items[0])["mc_accuracy"] == 1.0
    assert _score("ai2d", "C", items[0])["mc_accuracy"] == 0.0
    assert items[1].style == "ai2_diagram_no_letter" and items[1].prompt.endswith("\nA\nB\n")
    s = _score("ai2d", "A", items[1])
    assert s["mc_accuracy"] == 1.0 and s["mc_ai2d_opaque"] == 1.0 and s["mc_ai2d_transparent"] is None


def test_chartqa_parquet_and_json(tmp_path):
    _parquet(tmp_path, "chartqa", [{"query": "What is the max?", "label": ["12.5"], "image": _png(),
                                    "human_or_machine": 0}])
    item = load_benchmark("chartqa", tmp_path)[0]
    assert item.style == "chart_qa" and item.prompt == "What is the max?"
    assert _score("chartqa", "12.9", item)["relaxed_correctness"] == 1.0  # within 5 %
    assert _score("chartqa", "14", item)["relaxed_correctness"] == 0.0
    (tmp_path / "cj" / "chartqa" / "png").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(tmp_path / "cj" / "chartqa" / "png" / "c1.png")
    (tmp_path / "cj" / "chartqa" / "test_human.json").write_text(
        json.dumps([{"imgname": "c1.png", "query": "Year?", "label": "2010"}]))
    item = load_benchmark("chartqa", tmp_path / "cj")[0]
    assert item.image.name == "c1.png" and item.reference["answers"] == ["2010"]


def test_vqav2_parquet_dict_answers_and_official_json(tmp_path):
    _parquet(tmp_path, "vqav2", [{"question_id": 7, "question": "What animal?", "image": _png(),
                                  "answers": [{"answer": "dog", "answer_id": i} for i in range(3)]}],
             name="validation-00000.parquet")
    item = load_benchmark("vqav2", tmp_path)[0]
    assert item.id == "7" and item.style == "vqa2"
    assert _score("vqav2", "Dog.", item)["vqa_score"] == 1.0
    root = tmp_path / "official" / "vqav2"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(root / "images" / "COCO_val2014_000000000042.jpg")
    (root / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(
        json.dumps({"questions": [{"question_id": 1, "image_id": 42, "question": "Colour?"}]}))
    (root / "v2_mscoco_val2014_annotations.json").write_text(
        json.dumps({"annotations": [{"question_id": 1, "answers": [{"answer": "red"}, {"answer": "blue"}]}]}))
    item = load_benchmark("vqav2", tmp_path / "official")[0]
    assert item.reference["answers"] == ["red", "blue"]
    assert _score("vqav2", "red", item)["vqa_score"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("name,style", [("docvqa", "doc_qa"), ("infovqa", "info_qa")])
def test_docvqa_infovqa(tmp_path, name, style):
    _parquet(tmp_path, name, [{"questionId": 3, "question": "Title?", "answers": ["Annual Report"], "image": _png()}],
             name="validation-0.parquet")
    item = load_benchmark(name, tmp_path)[0]
    assert item.style == style
    assert _score(name, "annual reprt", item)["anls"] == pytest.approx(1 - 1 / 13)
    assert _score(name, "nothing", item)["anls"] == 0.0


def test_docvqa_official_json(tmp_path):
    root = tmp_path / "docvqa"
    (root / "documents").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(root / "documents" / "p1.png")
    (root / "val_v1.0.json").write_text(json.dumps({"data": [
        {"questionId": 9, "question": "Date?", "image": "documents/p1.png", "answers": ["1999"]}]}))
    item = load_benchmark("docvqa", tmp_path)[0]
    assert item.id == "9" and item.reference["answers"] == ["1999"]


def test_textvqa(tmp_path):
    _parquet(tmp_path, "textvqa", [{"question_id": 1, "question": "Brand?", "answers": ["nike"] * 2 + ["adidas"],
                                    "image": _png()}], name="validation.parquet")
    item = load_benchmark("textvqa", tmp_path)[0]
    assert item.style == "text_vqa"
    assert _score("textvqa", "Nike", item)["vqa_score"] == pytest.approx(2 / 3)


def test_realworldqa_short_and_mc(tmp_path):
    _parquet(tmp_path, "realworldqa", [
        {"question": "How many cars?\nPlease answer directly with a single word or number.", "answer": "2",
         "image": _png()},
        {"question": "Which side?\nA. left\nB. right\nPlease answer directly with only the letter of the correct "
                     "option and nothing else.", "answer": "B", "image": _png()}])
    short, mc = load_benchmark("realworldqa", tmp_path)
    assert short.prompt == "How many cars?" and short.style == "vqa2"
    assert mc.style == "a_okvqa_mc" and "Please answer directly with only the letter" in mc.prompt
    assert _score("realworldqa", "two", short)["accuracy"] == 1.0
    assert _score("realworldqa", "B", mc)["accuracy"] == 1.0
    assert _score("realworldqa", "A", mc)["accuracy"] == 0.0


def test_mmmu(tmp_path):
    _parquet(tmp_path, "mmmu", [
        {"id": "v_1", "question": "<image 1> Which gas?", "options": "['O2', 'N2', 'CO2']", "answer": "C",
         "question_type": "multiple-choice", "image_1": _png()},
        {"id": "v_2", "question": "How far?", "options": "[]", "answer": "12", "question_type": "open",
         "image_1": _png()}], name="validation-0.parquet")
    mc, open_ = load_benchmark("mmmu", tmp_path)
    assert mc.style == "a_okvqa_mc" and "C: CO2" in mc.prompt and open_.style == "vqa2"
    assert _score("mmmu", "(C)", mc)["accuracy"] == 1.0
    assert _score("mmmu", "(A)", mc)["accuracy"] == 0.0
    assert _score("mmmu", "12", open_)["accuracy"] == 1.0


def test_mathvista(tmp_path):
    _parquet(tmp_path, "mathvista", [
        {"pid": "1", "question": "How many?", "query": "Hint: read it.\nQuestion: How many bars?", "answer": "4",
         "question_type": "free_form", "answer_type": "integer", "choices": None, "precision": None,
         "decoded_image": _png()},
        {"pid": "2", "question": "Which?", "query": "Question: Which is largest?\nChoices: ...", "answer": "red",
         "question_type": "multi_choice", "answer_type": "text", "choices": ["red", "blue"], "precision": None,
         "decoded_image": _png()}], name="testmini-0.parquet")
    free, mc = load_benchmark("mathvista", tmp_path)
    assert free.prompt == "How many bars?" and free.style == "vqa2"
    assert mc.style == "a_okvqa_mc" and mc.prompt.startswith("Which is largest?")
    assert _score("mathvista", "4", free)["accuracy"] == 1.0
    assert _score("mathvista", "5", free)["accuracy"] == 0.0
    assert _score("mathvista", "red", mc)["accuracy"] == 1.0


def test_countbench_and_pixmo_count(tmp_path):
    _parquet(tmp_path, "countbenchqa", [{"question": "How many dogs?", "number": 3, "image": _png()},
                                        {"question": "How many cats?", "number": 2, "image": None}])
    items = load_benchmark("countbenchqa", tmp_path)
    assert len(items) == 1 and items[0].style == "point_count" and items[0].max_new_tokens == 192
    assert items[0].max_crops == 12
    assert _score("countbenchqa", "Counting the dogs there are 3.", items[0])["correct"] == 1.0
    sha = "ab" * 32
    (tmp_path / "pixmo-count" / "images").mkdir(parents=True)
    Image.new("RGB", (20, 20)).save(tmp_path / "pixmo-count" / "images" / f"{sha}.png")
    _parquet(tmp_path, "pixmo-count", [{"image_url": "http://x/y.jpg", "image_sha256": sha, "count": 4,
                                        "label": "boats", "points": []}])
    item = load_benchmark("pixmo-count", tmp_path)[0]
    assert "boats" in item.prompt and item.max_new_tokens == 192
    assert _score("pixmo-count", "There are four.", item)["correct"] == 1.0
    _parquet(tmp_path, "pixmo-count", [{"image_url": "u", "image_sha256": "cd" * 32, "count": 1, "label": "x",
                                        "points": []}])
    with pytest.raises(BenchmarkDataError, match="images/<image_sha256>"):
        load_benchmark("pixmo-count", tmp_path)


def test_pixmo_points_eval_masks(tmp_path):
    mask = [[False] * 100 for _ in range(50)]
    for y in range(20, 30):
        for x in range(45, 55):
            mask[y][x] = True
    _parquet(tmp_path, "pixmo-points-eval", [{"image": _png((100, 50)), "label": "Dot",
                                              "points": [{"x": 50.0, "y": 50.0}], "masks": [mask]}])
    item = load_benchmark("pixmo-points-eval", tmp_path)[0]
    assert item.reference["points"] == [[50.0, 25.0]] and "dot" in item.prompt and item.style == "pointing"
    assert _score("pixmo-points-eval", '<point x="51.0" y="48.0" alt="d">d</point>', item)["f1"] == pytest.approx(1)
    assert _score("pixmo-points-eval", '<point x="60.0" y="48.0" alt="d">d</point>', item)["f1"] == 0.0


def test_clockbench_jsonl(tmp_path):
    root = tmp_path / "clockbench"
    root.mkdir()
    Image.new("RGB", (10, 10)).save(root / "c.png")
    (root / "data.jsonl").write_text(json.dumps({"image": "c.png", "hour": 12, "minute": 30}) + "\n")
    item = load_benchmark("clockbench", tmp_path)[0]
    assert item.prompt == "What time is being shown?" and item.style == "clocks"
    assert _score("clockbench", "The time is 0:31", item) == {"overall_close": 1.0, "overall_exact": 0.0}


def test_missing_folder_and_columns(tmp_path):
    with pytest.raises(BenchmarkDataError, match="does not exist"):
        load_benchmark("chartqa", tmp_path)
    _parquet(tmp_path, "chartqa", [{"question": "q", "image": _png()}])
    with pytest.raises(BenchmarkDataError, match="lack column"):
        load_benchmark("chartqa", tmp_path)


def test_names_and_paper_average():
    assert expand_benchmark_names("paper11") == list(PAPER11) and len(PAPER11) == 11
    assert expand_benchmark_names("chartqa, docvqa,chartqa") == ["chartqa", "docvqa"]
    with pytest.raises(ValueError, match="unknown benchmark"):
        expand_benchmark_names("chartqa,foo")
    results = {n: {"score": i / 10} for i, n in enumerate(PAPER11)}
    assert paper_average(results) == pytest.approx(0.5)
    assert paper_average({"chartqa": {"score": 1.0}}) is None


def test_evaluate_benchmarks_end_to_end(tmp_path):
    _parquet(tmp_path, "chartqa", [{"query": f"Q{i}?", "label": [str(i)], "image": _png()} for i in range(4)])
    _parquet(tmp_path, "countbenchqa", [{"question": "How many?", "number": 2, "image": _png()}])

    class Fake:
        def predict(self, items):
            return ["2" if it.prompt == "How many?" else ("0" if it.prompt == "Q0?" else "1") for it in items]

    m = runner.evaluate_benchmarks("chartqa,countbenchqa", tmp_path, Fake(), tmp_path / "out", batch_size=3,
                                   limit=3)
    assert m["chartqa"]["n"] == 3 and m["chartqa"]["score"] == pytest.approx(2 / 3)
    assert m["countbenchqa"]["score"] == 1.0 and "paper11" not in m
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == m
    assert "Q1?" in (tmp_path / "out" / "report.html").read_text()
