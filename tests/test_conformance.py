"""`molmo conformance` on the shared reference fixtures: every case of every part must pass."""

from __future__ import annotations

import pytest

from molmo.conformance import PARTS, run_parts


@pytest.mark.parametrize("part", ["preprocess", "forward", "metrics"])
def test_conformance_part_passes(conformance_dir, part):
    results = run_parts(conformance_dir, [part])
    assert results, f"no {part} cases found"
    failed = [f"{r.case}: {r.detail}" for r in results if not r.passed]
    assert not failed, "\n".join(failed)


def test_cli_exits_nonzero_on_missing_part(tmp_path, capsys):
    from molmo.cli import main

    assert main(["conformance", str(tmp_path), "--only", "forward"]) == 1
    assert "missing folder" in capsys.readouterr().out
    assert set(PARTS) == {"preprocess", "forward", "metrics"}
