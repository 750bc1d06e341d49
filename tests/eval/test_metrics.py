"""Metric edge cases beyond the conformance fixtures, and the corrected defaults vs the official flags."""

from __future__ import annotations

import numpy as np
import pytest

from molmo.eval.metrics import (anls, clock_scores, count_scores, extract_points, math_vista_score, mmmu_score,
                                normalize_vqa_answer, pointing_scores, postprocess_prediction, relaxed_correctness,
                                select_mc_option, vqa_score)
from molmo.eval.metrics.clock import ClockParseError


def test_vqa_normalisation_details():
    assert normalize_vqa_answer("The Dog's toy!") == "dog's toy"
    assert normalize_vqa_answer("3.5") == "3.5" and normalize_vqa_answer("end.") == "end"
    assert normalize_vqa_answer("red,white") == "red white"  # comma between words separates them
    assert normalize_vqa_answer("1,000") == "1000"
    assert vqa_score("two", ["2"] * 2) == pytest.approx(2 / 3)


def test_postprocess_prediction():
    assert postprocess_prediction(" Answer: yes Answer: no") == "yes"
    assert postprocess_prediction("a\n b \na") == "a"
    assert postprocess_prediction("  x   y ") == "x y"


def test_anls_and_relaxed_edges():
    assert anls("", [""]) == 1.0  # the official code divides by zero here
    assert anls("abc", ["xyz", "abd"]) == pytest.approx(1 - 1 / 3)
    assert relaxed_correctness("95", ["100"]) and not relaxed_correctness("94.9", ["100"])
    assert relaxed_correctness("abc", ["ABC"])


def test_mc_selection_fallbacks():
    assert select_mc_option("nucleus of the cell", ["mitochondria", "nucleus"]) == 1  # edit distance
    assert select_mc_option("ribo", ["ribosome", "nucleus"]) == 0  # unique containing option
    with pytest.raises(ValueError, match="not distinct"):
        select_mc_option("a", ["A", "a"])


def test_counting_none_rule_corrected_by_default():
    assert count_scores("There are none.", 0) == {"correct": True, "close": True, "valid": True}
    assert count_scores("There are none.", 0, official=True)["valid"] is False
    assert count_scores("twelve", 12)["correct"]


def test_pointing_radius_mode_and_hungarian():
    text = '<points x1="10.0" y1="10.0" x2="50.0" y2="50.0" alt="a">a</points>'
    gt = [[52.0, 49.0], [11.0, 9.0], [90.0, 90.0]]
    s = pointing_scores(text, gt, (100, 100), radii=[3, 3, 3])
    assert s["precision"] == 1.0 and s["recall"] == pytest.approx(2 / 3)
    far = pointing_scores(text, gt, (100, 100), radii=[0.5, 0.5, 0.5])
    assert far["f1"] == 0.0
    masks = [np.zeros((100, 100), bool) for _ in gt]
    masks[0][49, 50] = True  # (50.0, 50.0) rounds to x=50, y=50 -> row 50: miss; row 49 is not it
    assert pointing_scores(text, gt, (100, 100), masks=masks)["precision"] == 0.0
    assert extract_points("(12.5, 40.0) (150.0, 3.0)", 200, 100) == [(25.0, 40.0)]


def test_clock_modes_and_bug_flag():
    assert clock_scores("2:05 PM", 14, 5)["overall_exact"]
    assert clock_scores("14:05", 2, 5, bench=True)["overall_exact"]
    assert clock_scores("ten past", 3, 10, bench=True)["overall_close"] is False
    with pytest.raises(ClockParseError):
        clock_scores("ten past", 3, 10, bench=True, official=True)
    sec = clock_scores("1:02:30", 1, 2, 33)
    assert sec["second_close"] and not sec["second_correct"] and sec["overall_close"]
    assert clock_scores("I cannot tell", -1, -1, -1)["overall_exact"]


def test_mathvista_precision_bug_flag_and_mmmu_open():
    assert math_vista_score("1.456", "1.46", "free_form", "float", None, 2.0)
    assert not math_vista_score("1.456", "1.46", "free_form", "float", None, 2.0, official=True)
    assert math_vista_score("B", "dog", "multi_choice", "text", ["cat", "dog"], None)
    assert math_vista_score("the value is x=7", "7", "free_form", "integer", None, None,
                            extractor=lambda *a: "7")
    assert mmmu_score("Therefore the final answer is 12.0", "12", "open", []) == 1.0
