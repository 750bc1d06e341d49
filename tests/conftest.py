"""Shared pytest fixtures: where the reference conformance folder is, skipping cleanly without it; a private
generated-image cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    return Path(os.environ.get("MOLMO_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = _shared_dir()
    if not path.is_dir():
        pytest.skip(f"reference folder {path} is absent (set MOLMO_SHARED_DIR to point at it)")
    return path


@pytest.fixture(scope="session")
def conformance_dir(shared_dir: Path) -> Path:
    path = shared_dir / "conformance"
    if not path.is_dir():
        pytest.skip(f"conformance fixtures {path} are absent")
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_generated_cache(tmp_path_factory):
    """Tests never write into the user's generated-image cache (the tiny presets use it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOLMO_GENERATED_CACHE", str(tmp_path_factory.mktemp("generated")))
        yield
