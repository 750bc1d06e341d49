"""Tests for the `captions` generator: captions mention every object, QA answers match the scene.
Run: python -m pytest tests/data/test_gen_captions.py -q"""

import numpy as np
import pytest

from molmo.data.generators.base import generate_one


@pytest.fixture(scope="module")
def items():
    return [generate_one("captions", seed=2, index=i, source="points", size=(160, 128)) for i in range(4)]


def test_long_caption_mentions_every_object(items):
    for item in items:
        caption = [a["answer"] for a in item.annotations if a.get("task") == "caption"][0].lower()
        for o in item.scene["objects"]:
            assert o["colour"] in caption and o["shape"] in caption


def test_long_caption_opens_with_the_amount_of_each_colour_and_shape(items):
    from collections import Counter

    from molmo.data.generators.scenes import PLURAL
    for item in items:
        caption = [a["answer"] for a in item.annotations if a.get("task") == "caption"][0]
        tally = caption.split(".")[0].removeprefix("Counted by colour: ")
        by_colour, by_shape = tally.split("; by shape: ")
        objs = item.scene["objects"]
        assert dict(p.rsplit(" ", 1) for p in by_colour.split(", ")) == \
            {c: str(n) for c, n in Counter(o["colour"] for o in objs).items()}
        assert dict(p.rsplit(" ", 1) for p in by_shape.split(", ")) == \
            {PLURAL[s]: str(n) for s, n in Counter(o["shape"] for o in objs).items()}


def test_qa_answers_match_the_scene(items):
    for item in items:
        objs = item.scene["objects"]
        for a in item.annotations:
            q = a.get("question", "")
            if q == "How many shapes are there in total?":
                assert a["answer"] == str(len(objs))
            elif q.startswith("How many ") and q.endswith(" objects are in the image?"):
                colour = q.split()[2]
                assert a["answer"] == str(sum(o["colour"] == colour for o in objs))
            elif q == "What kind of background does the image have?":
                assert a["answer"] == item.scene["background"]


def test_deterministic_and_rejects_self_source(items):
    again = generate_one("captions", seed=2, index=0, source="points", size=(160, 128))
    assert again.annotations == items[0].annotations
    assert np.array_equal(np.asarray(again.image), np.asarray(items[0].image))
    with pytest.raises(ValueError):
        generate_one("captions", seed=0, index=0, source="captions")
