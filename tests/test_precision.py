"""The dtype resolution: names map to torch dtypes, unknown names are refused, 'auto' follows the probe."""

import pytest
import torch

from molmo import precision


def test_names_and_unknown():
    assert precision.resolve_dtype("bf16") is torch.bfloat16
    assert precision.resolve_dtype("float32") is torch.float32
    assert precision.resolve_dtype(torch.float16) is torch.float16
    with pytest.raises(ValueError, match="unknown dtype 'int3'"):
        precision.resolve_dtype("int3")


@pytest.mark.parametrize("speedup, expected", [(2.5, torch.bfloat16), (0.02, torch.float32)])
def test_auto_follows_the_cpu_probe(monkeypatch, speedup, expected):
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: speedup)
    assert precision.resolve_dtype("auto", "cpu") is expected
