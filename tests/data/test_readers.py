"""PixMo and academic readers on tiny parquet / JSON files written by the tests (published column names)."""

from __future__ import annotations

import base64
import io
import json

import numpy as np

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from molmo.data.academic import SPECS, read_academic
from molmo.data.formatter import Formatter
from molmo.data.pixmo import PixMoError, read_pixmo, url_hash
from molmo.text.points import parse_points


def png_bytes(size=(200, 100), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def save_image(folder, url, size=(200, 100), exif_orientation=None, suffix=""):
    folder.mkdir(exist_ok=True)
    im = Image.new("RGB", size, (10, 120, 10))
    path = folder / (url_hash(url) + suffix)
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        im.save(path, format="JPEG", exif=exif)
    else:
        im.save(path, format="PNG")
    return path


def write_parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# ------------------------------------------------------------------------------------------------- PixMo
def test_points_grouped_by_image_and_percent_scale_converted(tmp_path):
    images = tmp_path / "images"
    save_image(images, "http://a/1.jpg", (200, 100))
    save_image(images, "http://a/2.jpg", (50, 40), suffix=".png")
    rows = [
        {"image_url": "http://a/1.jpg", "image_sha256": "x", "label": "Dog", "count": 2,
         "points": [{"x": 50.0, "y": 50.0}, {"x": 10.0, "y": 20.0}], "collection_method": "pointing"},
        {"image_url": "http://a/2.jpg", "image_sha256": "y", "label": "cat", "count": 0, "points": [],
         "collection_method": "counting"},
        {"image_url": "http://a/1.jpg", "image_sha256": "x", "label": "ball", "count": 1,
         "points": [{"x": 25.0, "y": 75.0}], "collection_method": "pointing"},
        {"image_url": "http://a/missing.jpg", "image_sha256": "z", "label": "cow", "count": 1,
         "points": [{"x": 1.0, "y": 1.0}], "collection_method": "pointing"},
    ]
    f = write_parquet(tmp_path / "points.parquet", rows)
    examples = read_pixmo("pixmo-points", f, image_dir=images)
    assert [len(e.annotations) for e in examples] == [2, 1]  # grouped; missing image dropped
    first = examples[0]
    assert first.image_size == (200, 100)
    assert first.annotations[0].label == "dog"
    assert first.annotations[0].points == [[100.0, 50.0], [20.0, 20.0]]  # 0-100 -> pixels
    # The formatted answer gives back the stored percentages.
    _, answer = Formatter().question_and_answer(first.annotations[1], first.image_size, np.random.RandomState(0))
    assert answer == '<point x="25.0" y="75.0" alt="ball">ball</point>'
    basic = read_pixmo("points", f, image_dir=images, subset="basic", mode="point_count")
    assert len(basic) == 1 and all(a.kind == "count" for a in basic[0].annotations)
    high = read_pixmo("points", f, image_dir=images, subset="high_frequency")
    assert len(high) == 1 and high[0].annotations[0].points == []


def test_points_in_pixels_under_percent_scale_is_an_error(tmp_path):
    images = tmp_path / "images"
    save_image(images, "u", (400, 300))
    f = write_parquet(tmp_path / "p.parquet", [{"image_url": "u", "label": "a", "points": [{"x": 250.0, "y": 10.0}]}])
    with pytest.raises(PixMoError, match="outside 0-100"):
        read_pixmo("points", f, image_dir=images)[0]
    ex = read_pixmo("points", f, image_dir=images, point_scale="pixels")
    assert ex[0].annotations[0].points == [[250.0, 10.0]]


def test_exif_rotation_swaps_size_used_for_points(tmp_path):
    images = tmp_path / "images"
    save_image(images, "rot", (200, 100), exif_orientation=6)  # displayed as 100 x 200
    f = write_parquet(tmp_path / "p.parquet", [{"image_url": "rot", "label": "a", "points": [{"x": 50.0, "y": 50.0}]}])
    ex = read_pixmo("points", f, image_dir=images)[0]
    assert ex.image_size == (100, 200)
    assert ex.annotations[0].points == [[50.0, 100.0]]


def test_count_pixels_and_eval_rows(tmp_path):
    images = tmp_path / "images"
    save_image(images, "c1", (300, 200))
    save_image(images, "c2", (300, 200))
    f = write_parquet(tmp_path / "count.parquet", [
        {"image_url": "c1", "image_sha256": "", "count": 2, "label": "Apple",
         "points": [{"x": 30.0, "y": 20.0}, {"x": 150.0, "y": 100.0}]},
        {"image_url": "c2", "image_sha256": "", "count": 4, "label": "pear", "points": []},
    ])
    train, evalex = read_pixmo("count", f, image_dir=images)
    assert train.annotations[0].points == [[30.0, 20.0], [150.0, 100.0]]  # pixels kept
    assert evalex.annotations[0].kind == "count" and evalex.annotations[0].answer == "4"


def test_missing_column_names_file_and_column(tmp_path):
    f = write_parquet(tmp_path / "ama.parquet", [{"image_url": "u", "question": "q?"}])
    with pytest.raises(PixMoError, match=r"ama\.parquet.*'answer'"):
        read_pixmo("ask_model_anything", f)
    with pytest.raises(ValueError, match="unknown PixMo dataset"):
        read_pixmo("pixmo-nope", f)


def test_unknown_collection_method_is_reported(tmp_path):
    images = tmp_path / "images"
    save_image(images, "u")
    f = write_parquet(tmp_path / "p.parquet", [{"image_url": "u", "label": "a", "points": [], "collection_method": "magic"}])
    with pytest.raises(PixMoError, match="collection_method 'magic'"):
        read_pixmo("points", f, image_dir=images)


def test_cap_ama_capqa_from_json_variants(tmp_path):
    images = tmp_path / "images"
    save_image(images, "img")
    cap = tmp_path / "cap.json"
    cap.write_text(json.dumps({"rows": [{"row": {"image_url": "img", "caption": "A red box.", "transcripts": ["t1", "t2"]}}]}))
    ex = read_pixmo("cap", cap, image_dir=images, transcripts=True)[0]
    assert [a.kind for a in ex.annotations] == ["caption", "transcript", "transcript"]
    captions_only = read_pixmo("cap", cap, image_dir=images)[0].annotations  # the fine-tuning default
    assert [(a.kind, a.answer) for a in captions_only] == [("caption", "A red box.")]
    ama = tmp_path / "ama.jsonl"
    ama.write_text("\n".join(json.dumps({"image_url": "img", "image_sha256": "", "question": f"q{i}", "answer": f"a{i}"})
                             for i in range(3)))
    ex = read_pixmo("ask-model-anything", ama, image_dir=images)
    assert len(ex) == 1 and [a.answer for a in ex[0].annotations] == ["a0", "a1", "a2"]
    assert ex[0].annotations[0].style == "user_qa"
    capqa = tmp_path / "capqa.json"
    capqa.write_text(json.dumps([{"image_url": "img", "messages": ["Q1", "A1", "Q2", "A2"]}]))
    a = read_pixmo("cap_qa", capqa, image_dir=images)[0].annotations[0]
    assert [m["role"] for m in a.messages] == ["user", "assistant", "user", "assistant"] and a.style == "synthetic_qa"
    capqa.write_text(json.dumps([{"image_url": "img", "messages": ["Q1", "A1", "Q2"]}]))
    with pytest.raises(PixMoError, match="even-length"):
        read_pixmo("cap_qa", capqa, image_dir=images)[0]


def test_point_explanations_replace_placeholders(tmp_path):
    images = tmp_path / "images"
    save_image(images, "e")
    rows = [{"image_url": "e", "image_sha256": "", "question": "Where?",
             "parsed_response": "The cat <|POINT|> sits by <|POINT|>.", "alt_text": ["cat", "two dogs"],
             "inline_text": ["here", "these dogs"], "points": [[[10.0, 20.0]], [[30.0, 40.0], [5.0, 6.0]]]},
            {"image_url": "e", "image_sha256": "", "question": "x", "parsed_response": None,
             "alt_text": [], "inline_text": [], "points": []}]
    f = tmp_path / "pe.json"
    f.write_text(json.dumps(rows))
    ex = read_pixmo("point_explanations", f, image_dir=images)[0]
    assert len(ex.annotations) == 1
    answer = ex.annotations[0].answer
    assert answer.startswith('The cat <point x="10.0" y="20.0" alt="cat">here</point> sits by <points ')
    assert parse_points(answer).percent == [(10.0, 20.0), (5.0, 6.0), (30.0, 40.0)]
    rows[0]["alt_text"] = ["cat"]
    f.write_text(json.dumps(rows[:1]))
    with pytest.raises(PixMoError, match="2 <\\|POINT\\|> placeholder"):
        read_pixmo("point_explanations", f, image_dir=images)[0]


def test_docs_embedded_images_both_question_layouts(tmp_path):
    folder = tmp_path / "charts"
    folder.mkdir()
    write_parquet(folder / "train-0.parquet", [
        {"image": {"bytes": png_bytes((64, 48)), "path": None}, "image_id": "d0",
         "questions": {"question": ["q1", "q2"], "answer": ["a1", "a2"]}},
    ])
    (folder / "train-1.json").write_text(json.dumps([
        {"image": {"bytes": base64.b64encode(png_bytes((32, 32))).decode()}, "image_id": "d1",
         "questions": [{"question": "q3", "answer": "a3"}]}]))
    ex = read_pixmo("docs", folder)
    assert [e.id for e in ex] == ["d0", "d1"]
    assert ex[0].image_size == (64, 48) and isinstance(ex[0].image, bytes)
    assert [a.question for a in ex[0].annotations] == ["q1", "q2"]
    assert ex[1].annotations[0].style == "pixmo_docs_charts"


def test_clocks_text_or_fields(tmp_path):
    images = tmp_path / "faces"
    images.mkdir()
    Image.new("RGB", (40, 40)).save(images / "7.png")
    Image.new("RGB", (40, 40)).save(images / "8.png")
    f = tmp_path / "clocks.json"
    f.write_text(json.dumps([{"example_id": 7, "hour": 9, "minute": 5, "second": 3},
                             {"example_id": 8, "text": "The time is 10:25"}]))
    ex = read_pixmo("clocks", f, image_dir=images)
    assert [e.annotations[0].answer for e in ex] == ["9:05:03", "The time is 10:25"]
    assert ex[0].annotations[0].metric == "clock"


def test_url_dataset_without_images_needs_them_for_points(tmp_path):
    f = write_parquet(tmp_path / "p.parquet", [{"image_url": "u", "label": "a", "points": [{"x": 1.0, "y": 1.0}]}])
    examples = read_pixmo("points", f)  # rows become annotations when an example is read
    with pytest.raises(PixMoError, match="image_dir"):
        examples[0]


# ------------------------------------------------------------------------------------------------- academic
def test_every_academic_spec_has_a_style_from_the_spec_table():
    assert {s.style for s in SPECS.values()} >= {
        "vqa2", "text_vqa", "okvqa", "chart_qa", "doc_qa", "info_qa", "ai2_diagram", "a_okvqa_mc", "a_okvqa_da",
        "android_control", "science_qa", "tabwmp_da", "st_qa", "tally_qa", "dv_qa", "figure_qa", "plot_qa"}


def test_vqa2_groups_questions_and_picks_most_frequent(tmp_path):
    img = {"bytes": png_bytes(), "path": None}
    answers = [{"answer": a, "answer_confidence": "yes", "answer_id": i} for i, a in enumerate(["red"] * 6 + ["blue"] * 4)]
    f = write_parquet(tmp_path / "vqa.parquet", [
        {"image": img, "image_id": 1, "question_id": 10, "question": "Colour?", "answers": answers},
        {"image": img, "image_id": 1, "question_id": 11, "question": "How many?",
         "answers": [{"answer": "2", "answer_confidence": "yes", "answer_id": 0}]},
        {"image": img, "image_id": 2, "question_id": 12, "question": "What?",
         "answers": [{"answer": "cat", "answer_confidence": "yes", "answer_id": 0}]},
    ])
    ex = read_academic("coco_2014_vqa_multi", f)
    assert [len(e.annotations) for e in ex] == [2, 1]
    a = ex[0].annotations[0]
    assert a.answer == "red" and a.style == "vqa2" and len(a.meta["answers"]) == 10


def test_chartqa_weights_and_mc_datasets(tmp_path):
    img = {"bytes": png_bytes(), "path": None}
    f = write_parquet(tmp_path / "chart.parquet", [
        {"image": img, "query": "max?", "label": ["5"], "human_or_machine": 0},
        {"image": img, "query": "min?", "label": ["1"], "human_or_machine": 1}])
    human, aug = read_academic("chart_qa", f)
    assert human.annotations[0].weight == pytest.approx(1.477, abs=1e-3)
    assert aug.annotations[0].weight == pytest.approx(0.523, abs=1e-3)
    assert human.annotations[0].metric == "relaxed"
    sq = write_parquet(tmp_path / "sq.parquet", [
        {"image": img, "question": "Which?", "choices": ["x", "y"], "answer": 1, "hint": "Look."},
        {"image": None, "question": "Text only", "choices": ["x", "y"], "answer": 0, "hint": ""}])
    ex = read_academic("science_qa", sq)
    assert len(ex) == 1
    a = ex[0].annotations[0]
    assert a.question == "Look.\nWhich?" and a.answer_idx == 1 and a.kind == "mc"
    _, target = Formatter().question_and_answer(a, ex[0].image_size, None)
    assert target == "B"


def test_ai2d_letter_labels_use_no_letter_style(tmp_path):
    img = {"bytes": png_bytes(), "path": None}
    f = write_parquet(tmp_path / "ai2d.parquet", [
        {"image": img, "question": "Which label is the sun?", "options": ["a", "b", "c", "d"], "answer": "2", "abc_label": True},
        {"image": img, "question": "What eats grass?", "options": ["cow", "lion"], "answer": "0", "abc_label": False}])
    labels, plain = read_academic("ai2d", f)
    assert labels.annotations[0].style == "ai2_diagram_no_letter"
    assert plain.annotations[0].style == "ai2_diagram"
    _, target = Formatter().question_and_answer(labels.annotations[0], labels.image_size, None)
    assert target == "C"


def test_figureqa_image_index_in_folder_and_android(tmp_path):
    (tmp_path / "png").mkdir()
    Image.new("RGB", (30, 20)).save(tmp_path / "png" / "3.png")
    f = tmp_path / "qa.json"
    f.write_text(json.dumps({"data": [{"image_index": 3, "question_string": "Is A max?", "answer": 1},
                                      {"image_index": 3, "question_string": "Is B min?", "answer": 0}]}))
    ex = read_academic("figure_qa", f, image_dir=tmp_path / "png")
    assert len(ex) == 1 and [a.answer for a in ex[0].annotations] == ["1", "0"]
    android = write_parquet(tmp_path / "ac.parquet", [
        {"image": {"bytes": png_bytes(), "path": None}, "goal": "open mail", "step_instruction": "tap mail",
         "action": '{"action_type": "click", "x": 10, "y": 20}'}])
    anns = read_academic("android_control", android)[0].annotations
    assert [a.question.split(":")[0] for a in anns] == ["low_level", "high_level", "high_level", "high_level_cot"]
    assert anns[3].answer.startswith("Plan: tap mail Action: {")


def test_academic_errors_name_file_and_column(tmp_path):
    f = write_parquet(tmp_path / "tv.parquet", [{"image": {"bytes": png_bytes(), "path": None}, "question": "q"}])
    with pytest.raises(PixMoError, match=r"tv\.parquet.*'answers'"):
        read_academic("text_vqa", f)
    with pytest.raises(ValueError, match="unknown academic dataset"):
        read_academic("mnist", f)
    missing = tmp_path / "st.json"
    missing.write_text(json.dumps([{"file_path": "nope.jpg", "question": "q", "answers": ["a"]}]))
    with pytest.raises(PixMoError, match="image not found"):
        read_academic("st_qa", missing)[0]


def test_parquet_tables_are_memory_mapped_and_examples_built_on_access(tmp_path, monkeypatch):
    from molmo.data.tables import TableSet
    monkeypatch.setenv("MOLMO_TABLE_CACHE", str(tmp_path / "cache"))
    images = tmp_path / "images"
    for i in range(3):
        save_image(images, f"u{i}")
    f = write_parquet(tmp_path / "ama.parquet", [{"image_url": f"u{i % 3}", "question": f"q{i}", "answer": f"a{i}"}
                                                 for i in range(9)])
    examples = read_pixmo("ask_model_anything", f, image_dir=images)
    assert not isinstance(examples, list) and len(examples) == 3  # a lazy sequence, no row objects held
    cached = list((tmp_path / "cache").glob("ama.*.arrow"))
    assert len(cached) == 1  # the parquet file's memory-mappable copy
    assert [a.question for a in examples[1].annotations] == ["q1", "q4", "q7"]
    assert [e.id for e in examples] == ["u0", "u1", "u2"] and examples[-1].id == "u2"
    before = pa.total_allocated_bytes()
    table = TableSet.open([f]).files[0].table
    assert table.num_rows == 9 and pa.total_allocated_bytes() == before  # zero-copy views of the mapped file
    with pytest.raises(IndexError):
        examples[3]
