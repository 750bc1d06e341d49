"""Documented choices for config fields: a `Choice` is a str-valued Enum, so a field typed with one accepts
and compares equal to its plain string (JSON configs, released config.json and command-line overrides keep
working), prints as its value, and a wrong value fails in one line naming the valid ones.

    class Pooling(Choice):
        ATTENTION_MEANQ = "attention-meanq"
    Pooling.parse("attention-meanq", "connector.pooling")   # Pooling.ATTENTION_MEANQ
"""

from __future__ import annotations

import enum
from typing import Any


class Choice(str, enum.Enum):
    __hash__ = str.__hash__  # a member and its string are the same dict key

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: Any, field: str):
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{field} must be one of {[c.value for c in cls]}, got {value!r}") from None


class AnnotationWeighting(Choice):
    """Loss weights of an example that packs several conversations about one image (arch-spec §5.3): the
    processor applies it, the training data config names it."""
    ROOT_SUBSEGMENTS = "root_subsegments"  # every loss weight times sqrt(1/n) for n packed conversations (SFT)
    NONE = "none"  # weights as given (pre-training)


def parse_choices(obj: Any, **fields: type[Choice]) -> None:
    """In a frozen dataclass's __post_init__: turn each named field's string into its Choice member."""
    for name, choice in fields.items():
        value = getattr(obj, name)
        if value is not None:
            object.__setattr__(obj, name, choice.parse(value, f"{type(obj).__name__}.{name}"))
