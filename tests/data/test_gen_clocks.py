"""Tests for the `clocks` generator: determinism, answers that parse to the drawn time, hand geometry (the
minute and hour hands point where the time says), difficulty options and own-data validity.
Run: python -m pytest tests/data/test_gen_clocks.py -q"""

import math

import numpy as np
import pytest

from molmo.data.generators.base import generate_dataset, generate_one
from molmo.data.generators.clocks import hand_angles, render_clock, sample_style
from molmo.data.owndata import read_own_data, validate_own_data
from molmo.eval.metrics.clock import clock_scores
from molmo.eval.runner import parse_clock_answer


@pytest.fixture(scope="module")
def items():
    return [generate_one("clocks", seed=5, index=i, difficulty=d, size=160)
            for i, d in enumerate(["easy", "normal", "hard"] * 4)]


def test_same_seed_and_index_give_same_image_and_lines():
    a, b = generate_one("clocks", seed=1, index=2, size=128), generate_one("clocks", seed=1, index=2, size=128)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.annotations == b.annotations and a.scene == b.scene
    c = generate_one("clocks", seed=1, index=3, size=128)
    assert not np.array_equal(np.asarray(a.image), np.asarray(c.image))


def test_clock_answers_parse_to_the_scene_time(items):
    for item in items:
        s = item.scene
        assert 1 <= s["hour"] <= 12 and 0 <= s["minute"] <= 59 and 0 <= s["second"] <= 59
        clock_lines = [a for a in item.annotations if a.get("metric") == "clock"]
        assert len(clock_lines) >= 2
        for line in clock_lines:
            hour, minute, second = parse_clock_answer(line["answer"])  # the eval runner's reference reader
            assert (hour, minute) == (s["hour"], s["minute"]), line
            assert second in (-1, s["second"])
            assert clock_scores(line["answer"], s["hour"], s["minute"], second)["overall_exact"], line
            assert "PM" not in line["answer"]


def test_answers_differ_from_a_wrong_time(items):
    item = items[0]
    s = item.scene
    wrong_hour = s["hour"] % 12 + 1
    assert not clock_scores(item.annotations[0]["answer"], wrong_hour, s["minute"])["overall_exact"]


def _ray_darkness(arr: np.ndarray, cx: float, cy: float, angle: float, r0: float, r1: float) -> float:
    """Mean darkness (255 - grey) along a ray from the centre at `angle` degrees clockwise from 12."""
    grey = arr.mean(axis=2)
    vals = []
    for t in np.linspace(r0, r1, 25):
        x = cx + math.sin(math.radians(angle)) * t
        y = cy - math.cos(math.radians(angle)) * t
        vals.append(255 - grey[int(round(y)), int(round(x))])
    return float(np.mean(vals))


@pytest.mark.parametrize("hour,minute", [(8, 15), (3, 40), (11, 5), (6, 50)])
def test_hands_point_where_the_time_says(hour, minute):
    rng = np.random.default_rng(0)
    style = sample_style(rng, "easy")
    style.update(hands="line", numerals="none", minute_ticks=False, tail=0.0, counterweight=False, brand=None)
    img, scene = render_clock(rng, hour, minute, 0, style, (240, 240), 0.42)
    arr = np.asarray(img).astype(float)
    (cx, cy), r = scene["centre"], scene["radius"]
    ha, ma, _ = hand_angles(hour, minute, 0)
    minute_dark = _ray_darkness(arr, cx, cy, ma, 0.55 * r, 0.75 * r)  # beyond the hour hand's reach
    assert minute_dark > 100
    assert _ray_darkness(arr, cx, cy, ma + 180, 0.55 * r, 0.75 * r) < 40
    assert _ray_darkness(arr, cx, cy, ma + 20, 0.55 * r, 0.75 * r) < 40
    assert _ray_darkness(arr, cx, cy, ha, 0.2 * r, 0.45 * r) > 100
    assert _ray_darkness(arr, cx, cy, ha + 180, 0.2 * r, 0.45 * r) < 40
    # the hour hand moves with the minutes: it is not on the whole hour's direction
    if minute >= 30:
        assert _ray_darkness(arr, cx, cy, 30 * (hour % 12), 0.3 * r, 0.45 * r) < 40


def test_hour_hand_angle_moves_with_minutes():
    assert hand_angles(3, 0)[0] == 90 and hand_angles(3, 30)[0] == 105 and hand_angles(12, 0)[0] == 0
    assert hand_angles(3, 7)[1] == 42


def test_easy_is_plain_round_arabic_without_seconds_or_rotation():
    for i in range(6):
        s = generate_one("clocks", seed=2, index=i, difficulty="easy", size=96).scene
        assert (s["dial"], s["numerals"], s["rotation"], s["shows_seconds"], s["watch"]) == \
            ("round", "arabic", 0.0, False, False)
        assert s["background"] == "plain" and not s["distractor_words"]


def test_hard_varies_styles(items):
    hard = [generate_one("clocks", seed=9, index=i, difficulty="hard", size=96).scene for i in range(20)]
    assert len({s["dial"] for s in hard}) >= 3 and len({s["numerals"] for s in hard}) >= 3
    assert any(abs(s["rotation"]) > 1 for s in hard) and all(abs(s["rotation"]) <= 15 for s in hard)
    assert any(s["shows_seconds"] for s in hard)


def test_caption_facts_mention_the_time(items):
    for item in items:
        s = item.scene
        assert any(f"{s['hour']}:{s['minute']:02d}" in f for f in s["caption_facts"])


def test_bad_options_raise_clear_errors():
    with pytest.raises(ValueError, match="difficulty"):
        generate_one("clocks", seed=0, index=0, difficulty="extreme")
    with pytest.raises(ValueError, match="invalid time"):
        render_clock(np.random.default_rng(0), 13, 0, 0, sample_style(np.random.default_rng(0)), (64, 64), 0.4)


def test_generated_dataset_is_valid_own_data(tmp_path):
    path = generate_dataset("clocks", n=6, out=tmp_path, seed=0, workers=1, progress=False, size=128)
    assert validate_own_data(path) == []
    examples = read_own_data(path)
    assert len(examples) == 6
    assert all(any(a.metric == "clock" for a in ex.annotations) for ex in examples)
