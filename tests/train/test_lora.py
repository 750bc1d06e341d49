"""LoRA: the adapted model starts equal to the base, only adapters train, merging (module and state-dict
ways) gives the adapter model's outputs, adapters round-trip, and `molmo finetune --lora` runs end to end."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from molmo.api import DEFAULT_MODEL_DIR
from molmo.api import Molmo as MolmoAPI
from molmo.cli import main as cli_main
from molmo.model.config import preset
from molmo.model.init import init_weights
from molmo.model.molmo import MolmoModel
from molmo.checkpoint.lora import (LoraConfig, LoRALinear, apply_lora, load_adapter, merge_lora, merge_state_dict,
                              save_adapter)
from molmo.train.trainer import train


def _model() -> MolmoModel:
    torch.manual_seed(0)
    m = MolmoModel(preset("tiny-qwen2"))
    init_weights(m, seed=0)
    return m.eval()


def _logits(model: MolmoModel, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.fixture
def ids() -> torch.Tensor:
    return torch.randint(0, 200, (2, 12), generator=torch.Generator().manual_seed(1))


def _train_adapters(model: MolmoModel, ids: torch.Tensor, steps: int = 3) -> None:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        loss = model(input_ids=ids).logits.float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_starts_equal_and_trains_only_adapters(ids):
    model = _model()
    base = copy.deepcopy(model)
    names = apply_lora(model, LoraConfig(rank=4))
    assert names and all(isinstance(model.get_submodule(n), LoRALinear) for n in names)
    assert torch.allclose(_logits(model, ids), _logits(base, ids))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    _train_adapters(model, ids)
    after = dict(model.named_parameters())
    for n, p in base.named_parameters():
        assert torch.equal(p, after[n]), n  # base weights untouched
    assert not torch.allclose(_logits(model, ids), _logits(base, ids))


def test_merge_matches_the_adapter_model(ids):
    model = _model()
    cfg = LoraConfig(rank=4, alpha=8)
    apply_lora(model, cfg)
    _train_adapters(model, ids)
    want = _logits(model, ids)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    merged = merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())
    assert torch.allclose(_logits(merged, ids), want, atol=1e-5)
    plain = _model()
    plain.load_state_dict(merge_state_dict(state, cfg))  # the exporter's way gives the same model
    assert torch.allclose(_logits(plain, ids), want, atol=1e-5)


def test_adapter_round_trip(tmp_path, ids):
    model = _model()
    cfg = LoraConfig(rank=2)
    apply_lora(model, cfg)
    _train_adapters(model, ids)
    save_adapter(tmp_path / "adapter", model, cfg)
    fresh = load_adapter(_model(), tmp_path / "adapter")
    assert torch.allclose(_logits(fresh, ids), _logits(model, ids), atol=1e-6)
    with pytest.raises(ValueError, match="no nn.Linear"):
        apply_lora(_model(), LoraConfig(rank=2, targets=(r"^nothing$",)))


def test_trainer_with_lora_exports_adapter_and_merged_model(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, lora=LoraConfig(rank=4), export=True, steps=2, save_every=100)
    out = train(cfg)
    assert (out.parent / "adapter" / "adapter_model.safetensors").exists()
    loaded = MolmoAPI.from_pretrained(out)
    assert not any("lora_" in n for n, _ in loaded.model.named_parameters())


def test_finetune_cli(tmp_path, circles, capsys):
    init = DEFAULT_MODEL_DIR  # the embedded model, the command's default
    out = tmp_path / "ft"
    code = cli_main(["finetune", "--data", str(circles), "--init", str(init), "--lora", "--rank", "2",
                     "--steps", "2", "--batch", "2", "--max-crops", "1", "--out", str(out)])
    assert code == 0
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "model" / "model.safetensors").exists()
    assert cli_main(["finetune", "--data", str(tmp_path / "missing.jsonl"), "--init", str(init)]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
