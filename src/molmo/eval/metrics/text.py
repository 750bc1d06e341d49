"""Text helpers shared by the metrics: Levenshtein distance and the VQA answer post-processing that the
official `VqaEval` applies to every prediction before scoring."""

from __future__ import annotations

from collections import Counter


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def postprocess_prediction(text: str) -> str:
    """strip; after `Answer:` keep the text up to any next `Answer:`; multi-line answers -> the most frequent
    whitespace-collapsed line (first on ties); else collapse internal whitespace."""
    text = text.strip()
    if "Answer:" in text:
        return text.split("Answer:")[1].strip()
    if "\n" in text:
        lines = [" ".join(line.split()) for line in text.split("\n")]
        counts = Counter(lines)
        best = max(counts.values())
        return next(line for line in lines if counts[line] == best)
    return " ".join(text.split())
