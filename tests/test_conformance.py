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


def _partial_copy(src, dst, leave_out: set[str], preprocess_cases: list[str]):
    """A fixture folder of symlinks to `src`, without the files in `leave_out` (paths relative to the
    folder), whose pre-processing index keeps only the named cases (to stay fast)."""
    import json

    for path in src.rglob("*"):
        rel = path.relative_to(src).as_posix()
        if path.is_file() and rel not in leave_out and rel != "preprocess/index.json":
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            (dst / rel).symlink_to(path)
    cases = [c for c in json.loads((src / "preprocess" / "index.json").read_text()) if c["case"] in preprocess_cases]
    (dst / "preprocess" / "index.json").write_text(json.dumps(cases))


def test_a_missing_fixture_file_fails_its_cases_in_one_line_and_the_others_run(conformance_dir, tmp_path):
    from molmo.conformance.preprocess import LAYOUT_FILE

    _partial_copy(conformance_dir, tmp_path, {f"preprocess/{LAYOUT_FILE}", "images/tiny_in.png"},
                  ["small_mc6", "wide_mc6"])
    results = {r.case: r for r in run_parts(tmp_path, ["preprocess"])}
    for case in ("small_mc6", "wide_mc6"):  # need the tokenizer layout
        assert not results[case].passed
        assert results[case].detail == f"missing fixture file {tmp_path / 'preprocess' / LAYOUT_FILE}"
    assert not results["train_qwen_single"].passed  # its image is gone
    assert results["train_qwen_single"].detail == f"missing fixture file {tmp_path / 'images' / 'tiny_in.png'}"
    assert results["train_qwen_multi"].passed, results["train_qwen_multi"].detail  # chelsea is still there


def test_a_missing_index_is_one_failed_line_naming_it(tmp_path, capsys):
    from molmo.cli import main

    (tmp_path / "metrics").mkdir()
    assert main(["conformance", str(tmp_path), "--only", "metrics"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL  metrics") and f"missing fixture file {tmp_path / 'metrics' / 'cases.jsonl'}" in out[0]
    assert out[1] == "0 passed, 1 failed"
