"""Counting from (point-then-)count answers, as the official `PointCountEval` parses them: lower-case,
strip trailing periods, `int(last word)`, else a number word (zero..twenty), else `a total of N`.

Official-bug flag: the official "none -> 0" rule never fires (its regex holds a literal backspace), so
"There are none." is invalid there. Our default reads a whole-word "none" as 0; `official=True` keeps the
released behaviour.
"""

from __future__ import annotations

import re

WORD_TO_NUM = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}


def parse_count(text: str, official: bool = False) -> int | None:
    pred = text.strip().lower().rstrip(".").strip()
    words = pred.split()
    if words:
        try:
            return int(words[-1])
        except ValueError:
            if words[-1] in WORD_TO_NUM:
                return WORD_TO_NUM[words[-1]]
    m = re.match(r".*a total of ([0-9]+).*", pred)
    if m:
        return int(m.group(1))
    if not official and re.search(r"\bnone\b", pred):
        return 0
    return None


def count_scores(prediction: str, gt: int, official: bool = False) -> dict[str, bool]:
    n = parse_count(prediction, official)
    if n is None:
        return {"correct": False, "close": False, "valid": False}
    return {"correct": n == gt, "close": abs(n - gt) <= 1, "valid": True}
