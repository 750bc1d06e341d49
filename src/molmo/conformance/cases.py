"""What every conformance part returns and how it reads fixture files: one `CaseResult` per case, and a
missing fixture file reported as a one-line failure of the cases that need it (the others still run).

    path = fixture_file(root / "preprocess" / "index.json")   # raises MissingFixture naming the file
    results.append(run_case("preprocess", case["case"], lambda: check(case)))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class CaseResult:
    part: str
    case: str
    passed: bool
    max_diff: float  # largest difference over every compared quantity (0.0 for exact checks)
    detail: str = ""  # what was compared, or what failed


class MissingFixture(FileNotFoundError):
    """A file the conformance folder should hold is not there."""

    def __init__(self, path: Path):
        super().__init__(f"missing fixture file {path}")
        self.path = path


def fixture_file(path: Path) -> Path:
    """`path` if it is a file, else MissingFixture naming it."""
    if not Path(path).is_file():
        raise MissingFixture(Path(path))
    return Path(path)


def fixture_dir(path: Path) -> Path:
    if not Path(path).is_dir():
        raise MissingFixture(Path(path))
    return Path(path)


def run_case(part: str, case: str, check: Callable[[], CaseResult]) -> CaseResult:
    """Run one case's check; a missing file or any error fails this case alone, with a one-line reason."""
    try:
        return check()
    except MissingFixture as e:
        return CaseResult(part, case, False, float("nan"), str(e))
    except Exception as e:  # report the case as failed, keep going
        return CaseResult(part, case, False, float("nan"), f"error: {e!r}".replace("\n", " "))
