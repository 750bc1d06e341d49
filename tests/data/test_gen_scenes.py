"""Tests for the `points` scene generator: determinism, points inside visible masks, counts, absent
expressions, count coverage and own-data validity.  Run: python -m pytest tests/data/test_gen_scenes.py -q"""

import numpy as np
import pytest

from molmo.data.generators.base import generate_dataset, generate_one
from molmo.data.generators.scenes import PLURAL, expressions
from molmo.data.owndata import validate_own_data

SMALL = {"size": (160, 128)}


@pytest.fixture(scope="module")
def items():
    return [generate_one("points", seed=3, index=i, **SMALL) for i in range(6)]


def test_same_seed_and_index_give_same_image_and_lines():
    a, b = generate_one("points", seed=1, index=2, **SMALL), generate_one("points", seed=1, index=2, **SMALL)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.annotations == b.annotations
    c = generate_one("points", seed=1, index=3, **SMALL)
    assert not np.array_equal(np.asarray(a.image), np.asarray(c.image))


def test_every_point_lies_inside_its_objects_visible_mask(items):
    for item in items:
        masks = item.scene["_masks"]
        assert masks.shape[0] == len(item.scene["objects"])
        for obj, mask in zip(item.scene["objects"], masks):
            x, y = obj["point"]
            assert mask[int(y), int(x)], obj
            assert mask.sum() == obj["visible_area"] > 0


def test_masks_do_not_overlap(items):
    for item in items:
        assert (item.scene["_masks"].sum(0) <= 1).all()


def test_target_count_and_points_match_the_scene(items):
    for item in items:
        t = item.scene["target"]
        label = f"{t['colour']} {PLURAL[t['shape']]}"
        want = sorted(tuple(o["point"]) for o in item.scene["objects"]
                      if o["colour"] == t["colour"] and o["shape"] == t["shape"])
        lines = [a for a in item.annotations if a.get("label") == label and a.get("task") == "count"]
        assert lines, item.annotations
        got = sorted((p[0], p[1]) for p in lines[0]["points"])
        assert len(got) == len(want)
        assert np.allclose(got, [w[:2] for w in want], atol=0.1) if want else got == []


def test_qa_counts_and_absent_expressions_are_consistent(items):
    for item in items:
        objs = item.scene["objects"]
        for a in item.annotations:
            if "question" in a:
                label = a["question"].removeprefix("How many ").removesuffix(" are there?")
                pts = [b["points"] for b in item.annotations if b.get("label") == label]
                if pts:
                    assert int(a["answer"]) == len(pts[0])
        exprs = expressions(item.scene, np.random.default_rng(0))
        absent = [m for label, m in exprs if label.split()[-1] in PLURAL.values()
                  and not any(PLURAL[o["shape"]] == label.split()[-1] for o in objs)]
        assert all(m == [] for m in absent)


def test_absent_expressions_give_empty_points():
    seen_empty = False
    for i in range(6):
        item = generate_one("points", seed=5, index=i, **SMALL)
        shapes = {PLURAL[o["shape"]] for o in item.scene["objects"]}
        for a in item.annotations:
            if "label" in a and a["label"].split()[-1] in PLURAL.values() \
                    and a["label"].split()[-1] not in shapes:
                assert a["points"] == []
                seen_empty = True
    assert seen_empty


def test_target_counts_cover_zero_to_max_count():
    from molmo.data.generators.scenes import make_scene
    counts = set()
    for i in range(60):
        rng = np.random.default_rng(i)
        _, scene = make_scene(rng, "easy", (96, 96), max_count=4)
        t = scene["target"]
        counts.add(sum(o["colour"] == t["colour"] and o["shape"] == t["shape"] for o in scene["objects"]))
    assert counts == set(range(5))


def test_target_count_questions_ask_once_about_the_target_group_and_keep_the_scene():
    """`count_questions="target"` replaces the per-expression "how many" questions by one about the target group;
    the image and the other lines are those of the default."""
    answers = []
    for i in range(40):
        every = generate_one("points", seed=5, index=i, difficulty="easy", **SMALL)
        item = generate_one("points", seed=5, index=i, difficulty="easy", count_questions="target", **SMALL)
        assert np.array_equal(np.asarray(every.image), np.asarray(item.image))
        (qa,) = [a for a in item.annotations if "question" in a]
        t = item.scene["target"]
        assert qa["question"] == f"How many {t['colour']} {PLURAL[t['shape']]} are there?"
        assert qa["answer"] == str(sum(o["colour"] == t["colour"] and o["shape"] == t["shape"]
                                       for o in item.scene["objects"]))
        answers.append(int(qa["answer"]))
        assert [a for a in item.annotations if "task" in a][:2] == [a for a in every.annotations if "task" in a][:2]
    assert np.mean([a <= 1 for a in answers]) < 0.4  # the default's "how many" answers are ~60% 0 or 1
    with pytest.raises(ValueError, match="count_questions"):
        generate_one("points", seed=0, index=0, count_questions="all", **SMALL)


def test_counted_groups_differ_in_colour_and_shape_and_the_total_no_longer_gives_the_target_count():
    """`groups=3`: three groups, pairwise different in colour and in shape, the target one of them (not always the
    first), each 0..max_count objects; distractors match no group; across scenes the total tracks the target's
    count far less than with one group (easy scenes: nearly exactly with one)."""
    single, grouped, firsts = [], [], 0
    for i in range(60):
        one = generate_one("points", seed=8, index=i, difficulty="easy", count_questions="target", **SMALL)
        three = generate_one("points", seed=8, index=i, difficulty="easy", count_questions="target", groups=3, **SMALL)
        groups = three.scene["groups"]
        assert len({g["colour"] for g in groups}) == len({g["shape"] for g in groups}) == 3
        assert three.scene["target"] in groups and groups[0] == one.scene["target"]
        firsts += three.scene["target"] == groups[0]
        others = [o for o in three.scene["objects"] if {"colour": o["colour"], "shape": o["shape"]} not in groups]
        assert len(others) <= 3  # easy scenes' 1-3 distractors, none of a group's kind
        for item, out in ((one, single), (three, grouped)):
            t = item.scene["target"]
            n = sum(o["colour"] == t["colour"] and o["shape"] == t["shape"] for o in item.scene["objects"])
            (qa,) = [a for a in item.annotations if "question" in a]
            assert qa["answer"] == str(n)
            out.append((n, len(item.scene["objects"])))
    assert 5 < firsts < 40  # the asked group is drawn (a third of the time the first)
    corr = lambda rows: np.corrcoef(np.array(rows).T)[0, 1]
    assert corr(single) > 0.9 and corr(grouped) < 0.8
    assert np.mean([n for n, _ in grouped]) > 2.5  # the asked group's count still spans 0..10
    with pytest.raises(ValueError, match="groups"):
        generate_one("points", seed=0, index=0, groups=0, **SMALL)


def test_groups_by_colour_share_one_shape_and_differ_only_in_colour():
    """`group_by="colour"`: the counted groups all have the target's shape and pairwise different colours, the
    answer counts the asked colour of that shape, and the total still does not give it; an unknown key is refused."""
    for i in range(20):
        item = generate_one("points", seed=9, index=i, difficulty="easy", count_questions="target", groups=3,
                            group_by="colour", **SMALL)
        groups, target = item.scene["groups"], item.scene["target"]
        assert target in groups and {g["shape"] for g in groups} == {target["shape"]}
        assert len({g["colour"] for g in groups}) == 3
        n = sum(o["colour"] == target["colour"] and o["shape"] == target["shape"] for o in item.scene["objects"])
        (qa,) = [a for a in item.annotations if "question" in a]
        assert qa["answer"] == str(n)
    with pytest.raises(ValueError, match="group_by"):
        generate_one("points", seed=0, index=0, groups=2, group_by="size", **SMALL)


def test_plain_circles_of_three_colours_are_the_grounding_checks_images():
    """`difficulty="plain"` with `colours` and `shapes`: white 224-px images of circles in the three colours only,
    no distractors, every object in a counted group, the asked colour's count as the answer; names outside the
    generator's are refused, and groups need as many colours to tell them apart."""
    options = dict(difficulty="plain", size=(224, 224), groups=3, group_by="colour", max_count=4,
                   colours=("red", "blue", "green"), shapes=("circle",), count_questions="target")
    answers = set()
    for i in range(12):
        item = generate_one("points", seed=4, index=i, **options)
        objects, target = item.scene["objects"], item.scene["target"]
        assert item.image.size == (224, 224) and item.scene["background"] == "white"
        assert np.asarray(item.image)[0, 0].tolist() == [255, 255, 255]  # circles keep off the edges
        assert {o["shape"] for o in objects} <= {"circle"} and {o["colour"] for o in objects} <= {"red", "blue", "green"}
        assert all({"shape": o["shape"], "colour": o["colour"]} in item.scene["groups"] for o in objects)
        (qa,) = [a for a in item.annotations if "question" in a]
        assert qa["question"] == f"How many {target['colour']} circles are there?"
        assert qa["answer"] == str(sum(o["colour"] == target["colour"] for o in objects))
        answers.add(qa["answer"])
    assert len(answers) >= 3
    with pytest.raises(ValueError, match=r"colours \['teal'\]"):
        generate_one("points", seed=0, index=0, colours=("red", "teal"), **SMALL)
    with pytest.raises(ValueError, match="shapes"):
        generate_one("points", seed=0, index=0, shapes=("blob",), **SMALL)
    with pytest.raises(ValueError, match="groups must be between 1 and 2"):
        generate_one("points", seed=0, index=0, groups=3, group_by="colour", colours=("red", "blue"), **SMALL)
    with pytest.raises(ValueError, match="too few kinds of object"):  # every distractor would be a target
        generate_one("points", seed=0, index=0, difficulty="easy", colours=("red",), shapes=("circle",), **SMALL)


def test_bad_difficulty_is_rejected():
    with pytest.raises(ValueError, match="difficulty"):
        generate_one("points", seed=0, index=0, difficulty="extreme")


def test_dataset_passes_own_data_validation(tmp_path):
    generate_dataset("points", n=8, out=tmp_path, seed=0, workers=1)
    assert validate_own_data(tmp_path / "data.jsonl") == []
