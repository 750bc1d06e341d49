"""The streaming loader: tensors read straight into their destination (same dtype, converted in chunks, row
ranges for FSDP shards) equal safetensors' own reading; damaged files give a clear error."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from molmo.checkpoint import streaming
from molmo.checkpoint.io import load_molmo
from molmo.checkpoint.streaming import ShardFormatError, ShardReader


def test_reader_matches_safetensors_in_every_mode(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    tensors = {"a": torch.randn(37, 5, generator=g), "b": torch.randn(11, generator=g).to(torch.bfloat16),
               "c": torch.arange(6, dtype=torch.int64).view(2, 3), "s": torch.tensor(3.5)}
    save_file(tensors, str(tmp_path / "x.safetensors"))
    ref = load_file(str(tmp_path / "x.safetensors"))
    reader = ShardReader(tmp_path / "x.safetensors")
    for name, t in ref.items():
        assert torch.equal(reader.read(name), t)
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 24)  # many chunks through the conversion buffer
    dest = torch.empty(37, 5, dtype=torch.bfloat16)
    reader.read_into("a", dest)
    assert torch.equal(dest, ref["a"].to(torch.bfloat16))
    rows = torch.empty(9, 5)
    reader.read_into("a", rows, first_row=20)  # one FSDP rank's dim-0 shard
    assert torch.equal(rows, ref["a"][20:29])


def test_truncated_shard_is_named(tmp_path):
    save_file({"a": torch.zeros(64, 64)}, str(tmp_path / "x.safetensors"))
    data = (tmp_path / "x.safetensors").read_bytes()
    (tmp_path / "x.safetensors").write_bytes(data[:-100])
    with pytest.raises(ShardFormatError, match="x.safetensors.*truncated"):
        ShardReader(tmp_path / "x.safetensors")


def test_bf16_load_equals_fp32_load_cast(conformance_dir):
    path = conformance_dir / "models" / "tiny_olmo"
    fp32, _ = load_molmo(path)
    bf16, _ = load_molmo(path, dtype=torch.bfloat16)
    for (name, a), (_, b) in zip(fp32.state_dict().items(), bf16.state_dict().items()):
        assert b.dtype == torch.bfloat16 and torch.equal(a.to(torch.bfloat16), b), name
