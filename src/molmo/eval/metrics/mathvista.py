"""MathVista scoring: answer extraction (skipped when the response already is a choice or parses as the
answer's number type; otherwise a pluggable `AnswerExtractor`, none by default: the released evaluator asks
a GPT model, which this package does not call), then MathVista normalisation and exact equality.

Official-bug flag: the released evaluator passes `precision` as stored (a float in the HF column), and
`round(x, 2.0)` raises, so float answers score wrong. Our default casts precision to int;
`official=True` reproduces the bug (conformance case mv-04).
"""

from __future__ import annotations

import re
from typing import Callable, Protocol

from molmo.eval.metrics.choice import select_mc_option
from molmo.eval.metrics.text import edit_distance


class AnswerExtractor(Protocol):
    def __call__(self, response: str, question: str, question_type: str, answer_type: str,
                 choices: list[str] | None) -> str: ...


def needs_extraction(response: str, question_type: str, answer_type: str, choices: list[str] | None) -> bool:
    if response == "" or (question_type == "multi_choice" and choices and response in choices):
        return False
    converters: dict[str, Callable[[str], object]] = {"integer": int, "float": float}
    if answer_type in converters:
        try:
            converters[answer_type](response)
            return False
        except ValueError:
            pass
    return True


def _quick_extract(response: str, question_type: str, answer_type: str, choices: list[str] | None) -> str:
    """Without an extractor: the response itself, numbers normalised, MC letters resolved to options."""
    if question_type == "multi_choice" and choices:
        if response in choices:
            return response
        return choices[select_mc_option(response, [chr(ord("A") + i) for i in range(len(choices))])]
    try:
        return str(int(response)) if answer_type == "integer" else str(float(response)) if answer_type == "float" else response
    except ValueError:
        return response


def normalize_extracted(extraction: str, choices: list[str] | None, question_type: str, answer_type: str,
                        precision, official: bool = False) -> str | None:
    if question_type == "multi_choice":
        extraction = extraction.strip()
        letters = re.findall(r"([a-zA-Z]):", extraction)
        if letters:
            extraction = letters[0].upper()
        options = [chr(ord("A") + i) for i in range(len(choices or []))]
        if extraction in options:
            return choices[options.index(extraction)]
        distances = [edit_distance(extraction, c) for c in choices]
        return choices[distances.index(min(distances))]
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))
        if answer_type == "float":
            digits = precision if official else int(precision or 0)
            return str(round(float(extraction), digits))
        if answer_type == "list":
            return str(extraction)
    except (TypeError, ValueError):
        return None
    return extraction


def math_vista_score(response: str, answer: str, question_type: str, answer_type: str,
                     choices: list[str] | None, precision, question: str = "",
                     extractor: AnswerExtractor | None = None, official: bool = False) -> bool:
    response = response.strip()
    if not needs_extraction(response, question_type, answer_type, choices):
        extraction = _quick_extract(response, question_type, answer_type, choices) if response else ""
    elif extractor is not None:
        extraction = extractor(response, question, question_type, answer_type, choices)
    else:
        extraction = _quick_extract(response, question_type, answer_type, choices)
    return normalize_extracted(extraction, choices, question_type, answer_type, precision, official) == answer
