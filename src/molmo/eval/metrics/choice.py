"""Multiple-choice scoring: option selection as the official evaluator does it (exact match, then a unique
containing option, then the smallest edit distance — so "The answer is D" lands on "A"), the AI2D
transparent / opaque split and RealWorldQA."""

from __future__ import annotations

from molmo.eval.metrics.text import edit_distance
from molmo.eval.metrics.vqa import normalize_vqa_answer

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def select_mc_option(prediction: str, options: list[str]) -> int:
    pred = prediction.lower().strip()
    opts = [o.lower().strip() for o in options]
    if len(set(opts)) != len(opts):
        raise ValueError(f"options are not distinct after lower-casing: {options}")
    if pred in opts:
        return opts.index(pred)
    containing = [i for i, o in enumerate(opts) if pred in o]
    if len(containing) == 1:
        return containing[0]
    distances = [edit_distance(o, pred) for o in opts]
    return distances.index(min(distances))


def multiple_choice(prediction: str, answer_idx: int, option_names: list[str]) -> bool:
    return select_mc_option(prediction, option_names) == answer_idx


def ai2d_multiple_choice(prediction: str, answer_idx: int, option_names: list[str], abc_label: bool,
                         has_transparent_box: bool, split: str) -> bool | None:
    """`split` is "transparent" or "opaque"; label questions count only in their own copy (None = skipped)."""
    if split not in ("transparent", "opaque"):
        raise ValueError(f"unknown AI2D split {split!r}")
    if abc_label and (split == "transparent") != has_transparent_box:
        return None
    return multiple_choice(prediction, answer_idx, option_names)


def real_world_qa(prediction: str, answer: str, question_type: str) -> bool:
    if question_type == "multiple_choice":
        options = list("ABCD")
        return select_mc_option(prediction, options) == options.index(answer)
    return normalize_vqa_answer(prediction) == normalize_vqa_answer(answer)
