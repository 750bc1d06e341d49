"""The existing formatter, templates, point text and own-data validator against recipe-spec §1 rules:
exact strings where the recipe fixes them, reproducibility and rates where it draws at random."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from molmo.text import templates
from molmo.data.example import Annotation, RawExample
from molmo.data.formatter import Formatter, length_hint, multiple_choice_prompt, select_best_answer
from molmo.data.owndata import OwnDataError, read_own_data, validate_own_data
from molmo.text.points import NONE_TEXT, PointTextError, count_text, parse_points, points_to_text

SIZE = (640, 480)


def qa(question, answer, style):
    return RawExample(image=None, annotations=[Annotation(kind="qa", question=question, answer=answer, style=style)],
                      image_size=SIZE)


# ------------------------------------------------------------------------------------------------ exact strings
def test_sft_always_prefixed_style_exact_strings():
    for seed in (0, 7, 50189):
        out = Formatter(seed=seed).format(qa("What color is the bus?", "red", "vqa2"), index=3)
        assert out == [[" User: vqa2: What color is the bus? Assistant:", " red"]]  # spec §1.2 example


def test_android_control_never_prefixed_and_eval_renames():
    fmt = Formatter(seed=1)
    assert fmt.format(qa("low_level: tap", "click", "android_control"))[0][0] == " User: low_level: tap Assistant:"
    assert fmt.prompt("Q?", "eval_short_answer") == " User: vqa2: Q? Assistant:"
    assert fmt.prompt("Q?", "eval_multiple_choice") == " User: a_okvqa_mc: Q? Assistant:"


def test_multiple_choice_prompt_and_letter_target():
    prompt = multiple_choice_prompt("Which?", ["cat", "dog", "cow"])
    assert prompt == "Which?\nA: cat\nB: dog\nC: cow\n"
    assert multiple_choice_prompt("Which?", ["a", "b"], letters=False) == "Which?\nA\nB\n"
    ex = RawExample(image=None, annotations=[Annotation(kind="mc", question="Which?", options=["cat", "dog"],
                                                        answer_idx=1, style="a_okvqa_mc")], image_size=SIZE)
    assert Formatter().format(ex) == [[" User: a_okvqa_mc: Which?\nA: cat\nB: dog\n Assistant:", " B"]]
    with pytest.raises(ValueError, match="at most 7 options"):
        multiple_choice_prompt("q", list("abcdefgh"))


def test_point_and_count_answers_exact():
    pts = [[320, 240], [64, 48]]
    assert points_to_text(pts, SIZE, "dog") == '<points x1="10.0" y1="10.0" x2="50.0" y2="50.0" alt="dog">dog</points>'
    assert points_to_text([[64, 48]], SIZE, "dog") == '<point x="10.0" y="10.0" alt="dog">dog</point>'
    assert count_text(pts, SIZE, "dog") == ("Counting the <points x1=\"10.0\" y1=\"10.0\" x2=\"50.0\" y2=\"50.0\" "
                                           "alt=\"dog\">dog</points> shows a total of 2.")
    assert points_to_text([], SIZE, "dog") == NONE_TEXT == count_text([], SIZE, "dog") == "There are none."
    # Sorted by x then y after rounding to one decimal.
    text = points_to_text([[100, 300], [100, 100], [10, 400]], (1000, 1000), "a")
    assert parse_points(text).percent == [(1.0, 40.0), (10.0, 10.0), (10.0, 30.0)]


def test_pointing_uses_template_and_lowercased_label_and_question_verbatim():
    ann = Annotation(kind="point", label="Red Circle", points=[[64, 48]], style="pointing")
    ex = RawExample(image=None, annotations=[ann], image_size=SIZE)
    user, answer = Formatter(seed=5).format(ex, index=0)[0]
    assert answer == ' <point x="10.0" y="10.0" alt="red circle">red circle</point>'
    body = user.removeprefix(" User: ").removesuffix(" Assistant:").removeprefix("pointing: ")
    assert body in [t.format(label="red circle") for t in templates.POINTING]
    ann.question = "How many red circles are in the photo?"
    ann.kind = "count"
    user, _ = Formatter(seed=5).format(ex, index=0)[0]
    assert user.endswith("How many red circles are in the photo? Assistant:")


def test_same_seed_and_index_reproduce_and_indices_differ():
    ann = Annotation(kind="point", label="x", points=[], style="pointing")
    ex = RawExample(image=None, annotations=[ann], image_size=SIZE)
    a = [Formatter(seed=9).format(ex, index=i)[0][0] for i in range(40)]
    assert a == [Formatter(seed=9).format(ex, index=i)[0][0] for i in range(40)]
    assert len(set(a)) > 10
    # seed + index is what counts (released RNG: RandomState(seed + index + size * epoch)).
    assert Formatter(seed=9).format(ex, index=4) == Formatter(seed=10).format(ex, index=3)
    assert Formatter(seed=9, dataset_size=100).format(ex, index=4, epoch=1) == Formatter(seed=113).format(ex, index=0)


# ------------------------------------------------------------------------------------------------ draws
def test_template_lists_have_the_recipe_sizes_and_all_get_drawn():
    assert (len(templates.CAPTION), len(templates.POINTING), len(templates.POINT_COUNT), len(templates.NO_POINTING)) \
        == (23, 43, 57, 32)
    assert all("{label}" in t for t in templates.POINTING + templates.POINT_COUNT)
    ann = Annotation(kind="count", label="cup", points=[[1, 1]], style="point_count")
    ex = RawExample(image=None, annotations=[ann], image_size=SIZE)
    fmt = Formatter(seed=0)
    seen = Counter()
    for i in range(1500):
        body = fmt.format(ex, index=i)[0][0].removeprefix(" User: ").removesuffix(" Assistant:")
        seen[body.removeprefix("point_count: ")] += 1
    expected = {t.format(label="cup") for t in templates.POINT_COUNT}
    assert set(seen) == expected


def test_demo_style_prefix_rate_is_about_ten_percent():
    n = 3000
    fmt = Formatter(seed=123)
    prefixed = sum(fmt.format(qa("Describe it", "ok", "user_qa"), index=i)[0][0].startswith(" User: user_qa: ")
                   for i in range(n))
    assert abs(prefixed / n - 0.1) < 5 * np.sqrt(0.09 / n)


def test_no_pointing_prefix_only_on_how_many_questions_of_its_two_datasets():
    fmt = Formatter(seed=2)
    for i in range(30):  # AskModelAnything (user_qa): the demo-style prefix is drawn too, so strip either form
        user = fmt.format(qa("How many cats are there?", "3", "user_qa"), index=i)[0][0]
        body = user.removeprefix(" User: ").removeprefix("user_qa: ").removesuffix(" Assistant:")
        assert body != "How many cats are there?" and body.endswith("How many cats are there?")
        assert body[: -len("How many cats are there?")] in templates.NO_POINTING
    msgs = [{"role": "user", "content": "What is it?"}, {"role": "assistant", "content": "A cat."},
            {"role": "user", "content": "How many legs?"}, {"role": "assistant", "content": "4"}]
    capqa = RawExample(image=None, annotations=[Annotation(kind="messages", messages=msgs, style="synthetic_qa")],
                       image_size=SIZE)
    turns = fmt.format(capqa)[0]  # CapQA: the matching (second) question gets it, the first does not
    assert turns[0] == " User: synthetic_qa: What is it? Assistant:"
    assert turns[2][len(" User: "):-len("How many legs? Assistant:")] in templates.NO_POINTING
    for style in ("vqa2", "tally_qa", "text_vqa", "pixmo_docs_charts"):  # other counting questions: verbatim
        for i in range(10):
            assert fmt.format(qa("How many cats are there?", "3", style), index=i)[0][0] == \
                f" User: {style}: How many cats are there? Assistant:"
    assert fmt.format(qa("What is it?", "a cat", "user_qa"), index=1)[0][0].endswith(" What is it? Assistant:")


def test_messages_prefix_only_first_turn_and_shuffle_keeps_all():
    msgs = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]
    ex = RawExample(image=None, annotations=[Annotation(kind="messages", messages=msgs, style="synthetic_qa")],
                    image_size=SIZE)
    assert Formatter().format(ex) == [[" User: synthetic_qa: Q1 Assistant:", " A1", " User: Q2 Assistant:", " A2"]]
    many = RawExample(image=None, annotations=[Annotation(kind="qa", question=f"q{k}", answer=f"a{k}", style="vqa2")
                                               for k in range(5)], image_size=SIZE)
    orders = {tuple(c[1] for c in Formatter(seed=s).format(many)) for s in range(20)}
    assert all(sorted(o) == [f" a{k}" for k in range(5)] for o in orders) and len(orders) > 1
    assert Formatter(shuffle_messages=False).format(many)[0][1] == " a0"


def test_max_annotations_draws_that_many_per_use_and_each_epoch_asks_something_else():
    many = RawExample(image=None, annotations=[Annotation(kind="qa", question=f"q{k}", answer=f"a{k}", style="vqa2")
                                               for k in range(6)], image_size=SIZE)
    fmt = Formatter(seed=3, dataset_size=100, max_annotations=2)
    draws = [fmt.format(many, index=7, epoch=e) for e in range(30)]
    assert all(len(d) == 2 and d[0][1] != d[1][1] for d in draws)
    assert fmt.format(many, index=7, epoch=4) == draws[4]  # reproducible
    assert len({c[1] for d in draws for c in d}) == 6  # every annotation gets its turn over the epochs
    assert len(Formatter(max_annotations=9).format(many)) == 6


# ------------------------------------------------------------------------------------------------ pre-training
def test_length_hint_statistics():
    rng = np.random.RandomState(0)
    text = "x" * 975
    hints = np.array([length_hint(text, rng) for _ in range(4000)])
    assert abs(hints.mean() - (975 / 15 - 0.5)) < 0.15  # floor division takes 0.5 on average
    assert 1.4 < hints.std() < 1.95  # 25 / 15 = 1.67 (+ floor noise)
    short = np.array([length_hint("ab", rng) for _ in range(2000)])
    assert (short < 0).any()  # no clipping (spec §1.4)


def test_pretrain_prefixes_and_no_length_fraction():
    ex = RawExample(image=None, annotations=[Annotation(kind="caption", answer="y" * 300),
                                             Annotation(kind="transcript", answer="z" * 30)])
    outs = [Formatter(stage="pretrain", seed=s, shuffle_messages=False).format(ex) for s in range(2000)]
    caption_prefixes = [o[0][0] for o in outs]
    assert all(o[0][1] == " " + "y" * 300 and o[1][0].startswith(" transcript ") for o in outs)
    no_len = sum(p == " long_caption :" for p in caption_prefixes) / len(outs)
    assert abs(no_len - 0.1) < 0.03
    lengths = [int(p.split()[1][:-1]) for p in caption_prefixes if p != " long_caption :"]
    assert abs(np.mean(lengths) - (300 / 15 - 0.5)) < 0.15  # floor division: -0.5 on average
    with pytest.raises(ValueError, match="no caption or transcript"):
        Formatter(stage="pretrain").format(qa("q", "a", "vqa2"))
    with pytest.raises(ValueError, match=r"formatter stage must be one of \['pretrain', 'sft'\], got 'rl'"):
        Formatter(stage="rl")


def test_select_best_answer_ties_are_random_but_majority_wins():
    rng = np.random.RandomState(0)
    assert select_best_answer(["a", "b", "b"], rng) == "b"
    assert {select_best_answer(["a", "b"], rng) for _ in range(50)} == {"a", "b"}


# ------------------------------------------------------------------------------------------------ point parsing
@pytest.mark.parametrize("n", [1, 2, 7])
def test_point_text_round_trip(n):
    rng = np.random.default_rng(n)
    pts = rng.uniform([0, 0], SIZE, size=(n, 2)).tolist()
    parsed = parse_points(count_text(pts, SIZE, "bird"), image_size=SIZE, strict=True)
    assert parsed.count == n and len(parsed.points) == n
    got = sorted((p.x, p.y) for p in parsed.points)
    want = sorted((x, y) for x, y in pts)
    assert np.allclose(got, want, atol=0.05 / 100 * max(SIZE) + 1e-9)
    assert all(p.label == "bird" for p in parsed.points)


def test_parse_points_strict_errors_and_lenient_skips():
    assert parse_points(NONE_TEXT).count == 0
    bad = '<point x="120.0" y="5.0" alt="a">a</point>'
    assert parse_points(bad).points == []
    with pytest.raises(PointTextError, match="outside 0-100"):
        parse_points(bad, strict=True)
    with pytest.raises(PointTextError, match="non-numeric"):
        parse_points('<point x="abc" y="5.0" alt="a">a</point>', strict=True)
    with pytest.raises(PointTextError, match="unclosed"):
        parse_points('<point x="1.0" y="5.0" alt="a">a', strict=True)


# ------------------------------------------------------------------------------------------------ own data
def _own(tmp_path, lines):
    Image.new("RGB", (100, 50)).save(tmp_path / "a.png")
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_validator_messages_name_line_and_reason(tmp_path):
    path = _own(tmp_path, [
        {"image": "a.png", "question": "q", "answer": "a"},
        "{not json",
        {"image": "a.png", "task": "point", "label": "x", "points": [[150, 10]]},
        {"image": "a.png", "task": "count", "label": "", "points": []},
        {"image": "a.png", "task": "dance", "label": "x"},
        {"image": "a.png", "metric": "bleu", "question": "q", "answer": "a"},
        {"image": "a.png", "messages": [{"role": "assistant", "content": "hi"}]},
        {"image": "a.png", "task": "point", "label": "x", "points": [[1, 2, -3]]},
        {"image": "a.png", "task": "point", "label": "x"},
    ])
    problems = validate_own_data(path)
    reasons = {int(p.split(":")[1]): p.split(": ", 1)[1] for p in problems}
    assert set(reasons) == {2, 3, 4, 5, 6, 7, 8, 9}
    assert reasons[2].startswith("invalid JSON")
    assert reasons[3] == "point [150, 10] lies outside the 100x50 image"
    assert reasons[4] == "'count' lines need a non-empty 'label'"
    assert reasons[5].startswith("unknown task 'dance'")
    assert reasons[6].startswith("unknown metric 'bleu'")
    assert "should come from the user" in reasons[7]
    assert "non-positive radius" in reasons[8]
    assert "need 'points'" in reasons[9]
    with pytest.raises(OwnDataError, match="8 invalid line"):
        read_own_data(path)
    assert validate_own_data(tmp_path / "none.jsonl") == [f"{tmp_path / 'none.jsonl'}: no such file"]


def test_read_own_data_groups_by_image(tmp_path):
    Image.new("RGB", (30, 30)).save(tmp_path / "b.png")
    path = _own(tmp_path, [
        {"image": "a.png", "question": "q", "answer": "a"},
        {"image": "b.png", "task": "caption", "answer": "cap"},
        {"image": "a.png", "task": "count", "label": "dot", "points": [[5, 5, 2]]},
        {"image": "a.png", "question": "Pick", "answer": "y", "metric": "mc", "options": ["x", "y"]},
    ])
    a, b = read_own_data(path)
    assert [x.kind for x in a.annotations] == ["qa", "count", "mc"] and a.image_size == (100, 50)
    assert b.annotations[0].kind == "caption"
    assert Formatter().format_annotation(a.annotations[2], a.image_size, np.random.RandomState(0))[1] == " B"


def test_pretrain_packs_the_caption_and_one_random_transcript_in_shuffled_order():
    transcripts = [f"spoken {k}" for k in range(4)]
    ex = RawExample(image=None, annotations=[Annotation(kind="caption", answer="the caption")] +
                    [Annotation(kind="transcript", answer=t) for t in transcripts])
    outs = [Formatter(stage="pretrain", seed=95818, dataset_size=10).format(ex, index=i) for i in range(400)]
    assert all(len(o) == 2 for o in outs)  # caption + ONE transcript
    answers = [[c[1].strip() for c in o] for o in outs]
    assert all(sum(a == "the caption" for a in o) == 1 and sum(a in transcripts for a in o) == 1 for o in answers)
    drawn = Counter(a for o in answers for a in o if a in transcripts)
    assert set(drawn) == set(transcripts) and min(drawn.values()) > 60  # uniform over the 4 transcripts
    first = Counter(o[0] == "the caption" for o in answers)
    assert 150 < first[True] < 250  # order shuffled
    assert Formatter(stage="pretrain", seed=95818, dataset_size=10).format(ex, index=7) == outs[7]  # seeded


def test_tied_reference_answers_are_drawn_at_random_seeded_majority_otherwise():
    tied = Annotation(kind="qa", question="What colour?", answer="blue", style="vqa2",
                      meta={"answers": ["blue", "red", "red", "blue", "green"]})
    ex = RawExample(image=None, annotations=[tied], image_size=SIZE)
    picks = [Formatter(seed=50189, dataset_size=100).format(ex, index=i)[0][1] for i in range(200)]
    assert set(picks) == {" blue", " red"} and 60 < picks.count(" red") < 140
    assert picks == [Formatter(seed=50189, dataset_size=100).format(ex, index=i)[0][1] for i in range(200)]
    majority = dataclasses.replace(tied, meta={"answers": ["red", "red", "blue"]})
    assert {Formatter(seed=s).format(RawExample(None, [majority], SIZE))[0][1] for s in range(30)} == {" red"}
