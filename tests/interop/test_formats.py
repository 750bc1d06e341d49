"""The data formats users already have: ms-swift / LLaMA-Factory JSONL lines become our "messages" lines (one
image, `<image>` placeholder removed; more images, system turns and misplaced placeholders are refused by
line), and lmms-eval task names resolve to our benchmarks."""

from __future__ import annotations

import json

from PIL import Image

from molmo.data.owndata import read_own_data, validate_own_data


def test_swift_lines(tmp_path):
    Image.new("RGB", (32, 24)).save(tmp_path / "a.png")
    Image.new("RGB", (32, 24)).save(tmp_path / "b.png")
    good = [
        {"messages": [{"role": "user", "content": "<image>What is shown?"}, {"role": "assistant", "content": "A box."}],
         "images": ["a.png"]},
        {"conversations": [{"from": "human", "value": "<image>\nColour?"}, {"from": "gpt", "value": "Black."}],
         "images": ["b.png"]},
    ]
    (tmp_path / "ok.jsonl").write_text("\n".join(json.dumps(r) for r in good) + "\n")
    examples = read_own_data(tmp_path / "ok.jsonl")
    assert [e.id for e in examples] == ["a.png", "b.png"]
    assert examples[0].annotations[0].messages == [{"role": "user", "content": "What is shown?"},
                                                   {"role": "assistant", "content": "A box."}]
    assert examples[1].annotations[0].messages == [{"role": "user", "content": "Colour?"},
                                                   {"role": "assistant", "content": "Black."}]
    bad = [
        {"messages": [{"role": "user", "content": "<image><image>x"}, {"role": "assistant", "content": "y"}],
         "images": ["a.png", "b.png"]},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}],
         "images": ["a.png"]},
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "<image>y"}],
         "images": ["a.png"]},
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "images": ["c.png"]},
    ]
    (tmp_path / "bad.jsonl").write_text("\n".join(json.dumps(r) for r in bad) + "\n")
    problems = validate_own_data(tmp_path / "bad.jsonl")
    assert len(problems) == 4
    assert "bad.jsonl:1: Molmo takes exactly one image per example; this line has 2" in problems[0]
    assert "bad.jsonl:2:" in problems[1] and "system message is not supported" in problems[1]
    assert "bad.jsonl:3:" in problems[2] and "placeholder" in problems[2]
    assert "bad.jsonl:4:" in problems[3] and "c.png" in problems[3]


def test_lmms_eval_task_names():
    import pytest

    from molmo.eval.benchmarks import LMMS_EVAL_ALIASES, expand_benchmark_names

    assert expand_benchmark_names("docvqa_val,mathvista_testmini,countbench,chartqa") == [
        "docvqa", "mathvista", "countbenchqa", "chartqa"]
    assert expand_benchmark_names("mmmu_val,mmmu") == ["mmmu"]
    from molmo.eval.benchmarks import BENCHMARKS

    assert set(LMMS_EVAL_ALIASES.values()) <= set(BENCHMARKS)
    with pytest.raises(ValueError, match="docvqa_test.*no public answers.*docvqa_val"):
        expand_benchmark_names("docvqa_test")
