"""Checkpoint loading and saving: released-name mapping, errors naming bad tensors, round trips."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from molmo.checkpoint.io import CheckpointError, load_molmo, save_molmo
from molmo.checkpoint.names import to_ours, to_released
from molmo.model.config import tiny_moe
from molmo.model.molmo import MolmoModel


def test_missing_and_misshaped_tensors_are_named(conformance_dir, tmp_path):
    src = conformance_dir / "models" / "tiny_qwen2"
    dst = tmp_path / "broken"
    shutil.copytree(src, dst)
    state = load_file(str(dst / "model.safetensors"))
    del state["model.transformer.ln_f.weight"]
    state["model.vision_backbone.pad_embed"] = torch.zeros(3, 128)
    save_file(state, str(dst / "model.safetensors"))
    with pytest.raises(CheckpointError) as e:
        load_molmo(dst)
    assert "llm.ln_f.weight" in str(e.value) and "vision.pad_embed" in str(e.value) and "(3, 128)" in str(e.value)


def test_missing_shard_and_config_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_molmo(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(tiny_moe().to_dict()))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-1.safetensors"}}))
    with pytest.raises(CheckpointError, match="missing"):
        load_molmo(tmp_path)


def test_sharded_released_checkpoint_loads(conformance_dir, tmp_path):
    state = load_file(str(conformance_dir / "models" / "tiny_olmo" / "model.safetensors"))
    names = sorted(state)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(tmp_path / file))
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {k: f for f, ks in shards.items() for k in ks}}))
    shutil.copy(conformance_dir / "models" / "tiny_olmo" / "config.json", tmp_path)
    model, _ = load_molmo(tmp_path)
    ref, _ = load_molmo(conformance_dir / "models" / "tiny_olmo")
    ids = torch.randint(0, 300, (1, 9))
    assert torch.equal(model(ids).logits, ref(ids).logits)


def test_own_format_round_trip_and_bf16(tmp_path):
    torch.manual_seed(0)
    model = MolmoModel(tiny_moe())
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    save_molmo(model, tmp_path / "ckpt")
    save_molmo(model, tmp_path / "ckpt")  # overwriting an existing checkpoint is atomic too
    loaded, cfg = load_molmo(tmp_path / "ckpt")
    ids = torch.randint(0, 300, (2, 7))
    assert torch.equal(loaded(ids).logits, model.eval()(ids).logits)
    half, _ = load_molmo(tmp_path / "ckpt", dtype=torch.bfloat16)
    assert half.llm.lm_head.weight.dtype == torch.bfloat16
    assert not list(tmp_path.glob(".ckpt*"))  # no temporary folders left behind


def test_released_names_round_trip_including_moe_experts():
    cfg = tiny_moe()
    state = MolmoModel(cfg).state_dict()
    released = to_released(state, cfg)
    assert "model.transformer.blocks.0.ffn.experts.mlp.w1" in released
    assert released["model.transformer.blocks.0.ffn.experts.mlp.w2"].shape == (8 * 32, 64)
    back = to_ours(released, cfg)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
