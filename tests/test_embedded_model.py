"""The shipped embedded model (src/molmo/assets/tiny-molmo) loads by default and looks at the image: asked the
same question about fixed generated images whose correct answers differ, it does not give one answer for all,
and a blank image changes its answers. Behavioural checks, not accuracy thresholds (the model card has those)."""

from __future__ import annotations

import pytest
from PIL import Image

from molmo.api import DEFAULT_MODEL_DIR, Molmo
from molmo.data.generators import generate_one


@pytest.fixture(scope="module")
def model() -> Molmo:
    assert (DEFAULT_MODEL_DIR / "model.safetensors").exists(), "the embedded model is not in the repository"
    return Molmo.from_pretrained()


def _distinct_answers(model: Molmo, images: list[Image.Image], question: str) -> list[str]:
    return [a.text.strip() for a in model.ask_many(images, [question] * len(images), max_new_tokens=12)]


def test_default_model_is_small_and_bf16_on_disk():
    size = (DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size
    assert size <= 30 * 2**20
    for name in ("config.json", "tokenizer.json", "preprocessor_config.json"):
        assert (DEFAULT_MODEL_DIR / name).exists()


# Necessary, not sufficient: answers that change with the image can still be wrong. The shipped weights (v3)
# score at their blind level on held-out counting and pointing (see the model card; issue 25 stays open).


def test_clock_answers_follow_the_clock(model):
    # Six easy clocks showing six different hours: an image-blind model answers them all alike.
    clocks = [generate_one("clocks", 77, i, difficulty="easy") for i in range(6)]
    assert len({(c.scene["hour"], c.scene["minute"]) for c in clocks}) == 6
    answers = _distinct_answers(model, [c.image for c in clocks], "What time is it? Answer with H:MM.")
    assert len(set(answers)) > 1, answers


def test_count_answers_follow_the_scene(model):
    # Scenes with different numbers of objects, same question.
    scenes = [generate_one("points", 91, i, difficulty="easy") for i in range(8)]
    counts = {len(s.scene["objects"]) for s in scenes}
    assert len(counts) > 1
    answers = _distinct_answers(model, [s.image for s in scenes], "How many shapes are there in total?")
    assert len(set(answers)) > 1, answers


def test_blank_image_changes_the_answers(model):
    items = [generate_one("clocks", 78, i, difficulty="easy") for i in range(3)] + \
            [generate_one("points", 92, i, difficulty="easy") for i in range(3)]
    questions = ["What time is it? Answer with H:MM."] * 3 + ["How many shapes are there in total?"] * 3
    seen = [a.text for a in model.ask_many([it.image for it in items], questions, max_new_tokens=12)]
    blank = [a.text for a in model.ask_many([Image.new("RGB", it.image.size, (128, 128, 128)) for it in items],
                                            questions, max_new_tokens=12)]
    assert seen != blank
