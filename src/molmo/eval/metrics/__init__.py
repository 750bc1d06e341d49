"""Evaluation metrics equal to the official Molmo evaluators (recipe-spec §4.3), with corrected defaults
where the official code has a documented bug (each behind an `official=` flag)."""

from molmo.eval.metrics.choice import ai2d_multiple_choice, multiple_choice, real_world_qa, select_mc_option
from molmo.eval.metrics.clock import clock_scores
from molmo.eval.metrics.counting import count_scores, parse_count
from molmo.eval.metrics.mathvista import math_vista_score
from molmo.eval.metrics.mmmu import mmmu_score
from molmo.eval.metrics.pointing import extract_points, is_valid_format, pointing_scores
from molmo.eval.metrics.text import postprocess_prediction
from molmo.eval.metrics.vqa import a_okvqa_score, anls, exact_match, normalize_vqa_answer, relaxed_correctness, vqa_score

__all__ = ["a_okvqa_score", "ai2d_multiple_choice", "anls", "clock_scores", "count_scores", "exact_match",
           "extract_points", "is_valid_format", "math_vista_score", "mmmu_score", "multiple_choice",
           "normalize_vqa_answer", "parse_count", "pointing_scores", "postprocess_prediction", "real_world_qa",
           "relaxed_correctness", "select_mc_option", "vqa_score"]
