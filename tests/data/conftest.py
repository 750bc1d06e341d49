"""Data tests keep the parquet readers' Arrow cache (molmo.data.tables) in a temporary folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def table_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MOLMO_TABLE_CACHE", str(tmp_path_factory.getbasetemp() / "table_cache"))
