"""Point text: Molmo's `<point>` / `<points>` answers with 0–100 coordinates (one decimal, sorted by
x then y), the point-then-count sentence, and a parser that returns the points (in 0–100 and in pixels)
with their labels and the count.

    text = points_to_text([(41.2, 30.0)], image_size=(640, 480), label="red circle")
    parsed = parse_points(text, image_size=(640, 480))   # ParsedPoints(points=[...], labels=[...], count=None)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

NONE_TEXT = "There are none."


class PointTextError(ValueError):
    """Point text that does not follow the `<point …>` / `<points …>` format (strict parsing)."""


@dataclass(frozen=True)
class Point:
    x: float  # pixels
    y: float
    label: str = ""


@dataclass
class ParsedPoints:
    points: list[Point] = field(default_factory=list)  # in pixels of the image
    percent: list[tuple[float, float]] = field(default_factory=list)  # 0–100
    count: int | None = None


def _round1(v: float) -> float:
    return round(float(v), 1)


def to_percent(points_px: Sequence[Sequence[float]], image_size: tuple[int, int]) -> list[tuple[float, float]]:
    w, h = image_size
    return [(p[0] / w * 100.0, p[1] / h * 100.0) for p in points_px]


def points_to_text(points_px: Sequence[Sequence[float]], image_size: tuple[int, int], label: str,
                   alt: str | None = None) -> str:
    """`<point …>` for one point, `<points …>` for several, `There are none.` for zero. Coordinates are
    percentages with one decimal, sorted left to right (ties top to bottom) after rounding."""
    if not points_px:
        return NONE_TEXT
    pct = sorted(((_round1(x), _round1(y)) for x, y in to_percent(points_px, image_size)),
                 key=lambda p: p[0] * 10000 + p[1])
    alt = label if alt is None else alt
    if len(pct) == 1:
        x, y = pct[0]
        return f'<point x="{x:.1f}" y="{y:.1f}" alt="{alt}">{label}</point>'
    attrs = " ".join(f'x{i}="{x:.1f}" y{i}="{y:.1f}"' for i, (x, y) in enumerate(pct, 1))
    return f'<points {attrs} alt="{alt}">{label}</points>'


def count_text(points_px: Sequence[Sequence[float]], image_size: tuple[int, int], label: str) -> str:
    """Point-then-count answer: `Counting the <points …>label</points> shows a total of N.`"""
    if not points_px:
        return NONE_TEXT
    return f"Counting the {points_to_text(points_px, image_size, label)} shows a total of {len(points_px)}."


_TAG = re.compile(r"<(point|points)\s+([^>]*?)>(.*?)</\1>", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_TOTAL = re.compile(r"a total of (\d+)")


def strip_point_tags(text: str) -> str:
    """The answer as a reader sees it: each `<point(s) …>label</point(s)>` replaced by its label."""
    return _TAG.sub(lambda m: m.group(3), text)


def parse_points(text: str, image_size: tuple[int, int] | None = None, strict: bool = False) -> ParsedPoints:
    """All points in `<point>` / `<points>` tags (0–100 → pixels when image_size is given) and the count of a
    point-then-count answer (`… a total of N.`, or 0 for `There are none.`). With strict=True, malformed tags
    (unclosed, missing or non-numeric coordinates, values outside 0–100) raise PointTextError."""
    out = ParsedPoints()
    w, h = image_size if image_size is not None else (100.0, 100.0)
    for m in _TAG.finditer(text):
        attrs = dict(_ATTR.findall(m.group(2)))
        label = attrs.get("alt", m.group(3)).strip()
        keys = ["", ] if m.group(1) == "point" else sorted({k[1:] for k in attrs if re.fullmatch(r"x\d+", k)}, key=int)
        for k in keys:
            try:
                x, y = float(attrs[f"x{k}"]), float(attrs[f"y{k}"])
            except (KeyError, ValueError):
                if strict:
                    raise PointTextError(f"point {k or ''} has a missing or non-numeric coordinate in {m.group(0)!r}")
                continue
            if not (0 <= x <= 100 and 0 <= y <= 100):
                if strict:
                    raise PointTextError(f"coordinate outside 0-100 in {m.group(0)!r}")
                continue
            out.percent.append((x, y))
            out.points.append(Point(x / 100.0 * w, y / 100.0 * h, label))
    if strict:
        opened = len(re.findall(r"<points?\b", text))
        if opened != len(list(_TAG.finditer(text))):
            raise PointTextError(f"unclosed or malformed point tag in {text!r}")
    total = _TOTAL.search(text)
    if total:
        out.count = int(total.group(1))
    elif text.strip() == NONE_TEXT:
        out.count = 0
    return out
