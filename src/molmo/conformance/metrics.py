"""Metric conformance: score every case of `<root>/metrics/cases.jsonl` with our metrics in their
`official` mode and compare with the official evaluators' results (atol 1e-9; `expected_details` too).

    molmo conformance ../shared/conformance --only metrics
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from molmo.conformance.cases import CaseResult, fixture_file, run_case
from molmo.eval.metrics import (a_okvqa_score, ai2d_multiple_choice, anls, clock_scores, count_scores, exact_match,
                                extract_points, is_valid_format, math_vista_score, mmmu_score, multiple_choice,
                                pointing_scores, postprocess_prediction, real_world_qa, relaxed_correctness,
                                vqa_score)

ATOL = 1e-9


def score_case(case: dict) -> tuple[Any, dict | None]:
    """(expected-comparable value, details) for one case, official behaviour."""
    metric, raw, refs, p = case["metric"], case["prediction"], case["references"], case.get("params", {})
    pred = postprocess_prediction(raw)
    if metric == "vqa_score":
        return vqa_score(pred, refs), None
    if metric == "anls":
        return anls(pred, refs), None
    if metric == "relaxed_correctness":
        return relaxed_correctness(pred, refs), None
    if metric == "exact_match":
        return exact_match(pred, refs), None
    if metric == "a_okvqa_score":
        return a_okvqa_score(pred, refs), None
    if metric == "multiple_choice":
        return multiple_choice(pred, refs[0], p["option_names"]), None
    if metric in ("ai2d_mc_transparent", "ai2d_mc_opaque"):
        split = metric.rsplit("_", 1)[1]
        return ai2d_multiple_choice(pred, refs[0], p["option_names"], p["abc_label"], p["has_transparent_box"],
                                    split), None
    if metric == "real_world_qa":
        return real_world_qa(pred, refs[0], p["question_type"]), None
    if metric == "mmmu":
        return mmmu_score(pred, refs, p["question_type"], p.get("options", []), rng=random.Random(42)), None
    if metric == "math_vista_no_llm":
        return math_vista_score(pred, refs[0], p["question_type"], p["answer_type"], p.get("choices"),
                                p.get("precision"), official=True), None
    if metric == "point_count":
        s = count_scores(raw.strip(), int(refs[0]), official=True)
        return s["correct"], s
    if metric == "point_parse":
        w, h = p["image_size"]
        return [list(pt) for pt in extract_points(raw.strip(), w, h)], None
    if metric == "point_format_valid":
        return is_valid_format(raw), None
    if metric == "pointing":
        masks = [np.asarray(m, bool) for m in p.get("masks", [])]
        s = pointing_scores(raw.strip(), refs, tuple(p["image_size"]), masks=masks)
        return s["f1"], s
    if metric in ("clock", "clock_bench"):
        hour, minute, second = refs
        s = clock_scores(raw, hour, minute, second, bench=metric == "clock_bench", official=True)
        return s["overall_close"], s
    raise ValueError(f"unknown metric {metric!r}")


def _diff(got: Any, want: Any) -> float:
    """0 when equal (numbers within tolerance, lists elementwise); inf when incomparable."""
    if want is None or got is None:
        return 0.0 if want is got else float("inf")
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return float("inf")
        return max((_diff(g, w) for g, w in zip(got, want)), default=0.0)
    if isinstance(want, (bool, int, float)) and isinstance(got, (bool, int, float, np.bool_, np.integer, np.floating)):
        return abs(float(got) - float(want))
    return 0.0 if got == want else float("inf")


def _check(case: dict) -> CaseResult:
    got, details = score_case(case)
    diffs = [_diff(got, case["expected"])]
    for key, want in case.get("expected_details", {}).items():
        diffs.append(_diff((details or {}).get(key), want))
    worst = max(diffs)
    detail = f"{case['metric']}: got {got!r} expected {case['expected']!r}"
    return CaseResult("metrics", case["id"], worst <= ATOL, worst, detail)


def run_cases(root: Path) -> list[CaseResult]:
    lines = fixture_file(Path(root) / "metrics" / "cases.jsonl").read_text().splitlines()
    cases = [json.loads(line) for line in lines if line.strip()]
    return [run_case("metrics", case["id"], lambda: _check(case)) for case in cases]
