"""MMMU answer parsing and scoring with the semantics of the MMMU benchmark's reference evaluation
(which the official Molmo evaluator calls): multiple choice looks for `(X)`, then ` X `, then (for answers
longer than five words) the option text, the last occurrence winning; if nothing is found a choice is drawn
from a random generator seeded with 42 once per process (module-global, as in the reference). Open answers:
key sub-responses after indicator words, every number in them, normalised (numbers to 2 decimals)."""

from __future__ import annotations

import random
import re

_RNG = random.Random(42)


def parse_multi_choice(response: str, choices: list[str], index2ans: dict[str, str],
                       rng: random.Random | None = None) -> str:
    for ch in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(ch)
    response = f" {response} "
    candidates, bracketed, by_letter = [], False, True
    for c in choices:
        if f"({c})" in response:
            candidates.append(c)
            bracketed = True
    if not candidates:
        candidates = [c for c in choices if f" {c} " in response]
    if not candidates and len(response.split()) > 5:
        candidates = [c for c, ans in index2ans.items() if ans.lower() in response.lower()]
        by_letter = not candidates
    if not candidates:
        return (rng or _RNG).choice(choices)
    if len(candidates) == 1:
        return candidates[0]

    def last_position(c: str) -> int:
        if not by_letter:
            return response.lower().rfind(index2ans[c].lower())
        return response.rfind(f"({c})" if bracketed else f" {c} ")

    positions = [last_position(c) for c in candidates]
    return candidates[positions.index(max(positions))]


def _is_number(s: str) -> bool:
    try:
        float(s.replace(",", ""))
        return True
    except ValueError:
        return False


def normalize_str(s: str) -> list:
    s = s.strip()
    if _is_number(s):
        return [round(float(s.replace(",", "")), 2)]
    s = s.lower()
    return [" " + s, s + " "] if len(s) == 1 else [s]


def extract_numbers(s: str) -> list[str]:
    with_commas = re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", s)
    scientific = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", s)
    simple = re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", s)
    return with_commas + scientific + simple


def _key_subresponses(response: str) -> list[str]:
    response = response.strip().strip(".").lower()
    parts = re.split(r"\.\s(?=[A-Z])|\n", response)
    indicators = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]
    keys = []
    for i, part in enumerate(parts):
        if i == len(parts) - 1:
            indicators = indicators + ["="]
        tails = [part.split(ind)[-1].strip() for ind in indicators if ind in part]
        shortest = min(tails, key=len) if tails else None
        if shortest and shortest.strip() not in [":", ",", ".", "!", "?", ";", "'"]:
            keys.append(shortest)
    return keys or [response]


def parse_open(response: str) -> list:
    keys = _key_subresponses(response)
    preds = list(keys)
    for k in keys:
        preds.extend(extract_numbers(k))
    normalized = []
    for p in preds:
        normalized.extend(normalize_str(p))
    return list(set(normalized))


def mmmu_score(response: str, answer: str | list[str], question_type: str, options: list[str],
               rng: random.Random | None = None) -> float:
    answers = answer if isinstance(answer, list) else [answer]
    if question_type == "multiple-choice":
        options = [o for o in options if o]
        letters = [chr(ord("A") + i) for i in range(len(options))]
        pred = parse_multi_choice(response, letters, dict(zip(letters, options)), rng)
        return float(pred in answers)
    preds = parse_open(response)
    golds = [g for a in answers for g in normalize_str(a)]
    for p in preds:
        if isinstance(p, str):
            if any(isinstance(g, str) and g in p for g in golds):
                return 1.0
        elif p in golds:
            return 1.0
    return 0.0
