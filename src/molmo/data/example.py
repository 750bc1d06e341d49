"""Raw examples: one image and one or more annotations, before any Molmo formatting. Points are numeric, in
pixels of the stored image ([x, y] or [x, y, r] with an optional match radius r).

    RawExample(image="scene.png", annotations=[Annotation(kind="point", label="red circle", points=[[10, 20]])])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("qa", "point", "count", "caption", "transcript", "messages", "mc")
METRICS = ("vqa", "exact", "anls", "relaxed", "mc", "clock")


@dataclass
class Annotation:
    kind: str
    question: str | None = None
    answer: str | None = None
    label: str | None = None
    points: list[list[float]] | None = None  # pixels
    options: list[str] | None = None  # multiple choice
    answer_idx: int | None = None
    messages: list[dict[str, str]] | None = None  # [{"role": "user"|"assistant", "content": ...}]
    style: str | None = None
    metric: str | None = None
    weight: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown annotation kind {self.kind!r}; expected one of {KINDS}")


@dataclass
class RawExample:
    image: str | Path | bytes | None
    annotations: list[Annotation]
    image_size: tuple[int, int] | None = None  # (width, height) when known
    source: str = ""
    id: str = ""
