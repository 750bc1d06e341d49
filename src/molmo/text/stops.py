"""Stop strings: where generated text is cut. Generation stops a row at the first stop string, the API cuts
the final text there, and a stream holds back a tail that could still become one.

    cut_at_stop("3 dogs. Next", ["."])   # ("3 dogs", True)
"""

from __future__ import annotations

from typing import Sequence


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index of the earliest stop string in `text`, or None."""
    hits = [text.index(s) for s in stops if s and s in text]
    return min(hits) if hits else None


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """(text before the earliest stop string, whether one was found)."""
    at = first_stop(text, stops)
    return (text, False) if at is None else (text[:at], True)


def stop_holdback(stops: Sequence[str]) -> int:
    """How many trailing characters of a stream may still turn into a stop string."""
    return max((len(s) - 1 for s in stops if s), default=0)
