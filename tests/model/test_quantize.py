"""int8 decoder quantization on the CPU: loads through the loader option, generates, stays close to fp32
(logits within a few percent of their scale), and refuses what it cannot do with a clear message."""

from __future__ import annotations

import pytest
import torch

from molmo.checkpoint.io import load_molmo
from molmo.model.generation import generate
from molmo.model.quantize import quantize_decoder


def test_int8_load_generates_close_to_fp32(conformance_dir):
    path = conformance_dir / "models" / "tiny_qwen2"
    ref, _ = load_molmo(path)
    q, _ = load_molmo(path, quantize="int8")
    assert type(q.llm.blocks[0].attn.att_proj).__name__ == "Linear" and \
        type(q.llm.blocks[0].attn.att_proj).__module__.startswith("torch.ao.nn.quantized")
    ids = torch.arange(3, 40)[None] * 7 % 500
    with torch.no_grad():
        a, b = ref(ids).logits, q(ids).logits
    assert (a - b).abs().max() < 0.1 * a.abs().max()
    out = generate(q, {"input_ids": ids}, max_new_tokens=4)
    assert out.sequences.shape == (1, 4)


def test_bad_quantization_requests_are_named(conformance_dir):
    model, _ = load_molmo(conformance_dir / "models" / "tiny_qwen2", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="fp32"):
        quantize_decoder(model, "int8")
    with pytest.raises(ValueError, match="CUDA"):
        quantize_decoder(model, "nf4")
    with pytest.raises(ValueError, match="unknown quantization"):
        quantize_decoder(model, "int3")
