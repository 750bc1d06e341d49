"""LoRA: low-rank adapters on the language model's linear layers, for fine-tuning on a user's own data with
few trainable parameters.

`apply_lora` swaps each targeted `nn.Linear` for a `LoRALinear` that keeps the base weight under the same
name (so checkpoints and optimizer groups see the usual parameter names) and adds `lora_a` [r, in] and
`lora_b` [out, r]; B starts at zero, so the adapted model equals the base model until it trains.
`merge_lora` folds `scale * B @ A` into the base weights and puts plain `nn.Linear`s back.

    names = apply_lora(model, LoraConfig(rank=8))        # freezes everything but the adapters
    save_adapter("runs/ft/adapter", model, cfg); load_adapter(model, "runs/ft/adapter")
    merge_lora(model)                                    # plain Molmo again, with the adapter folded in
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class LoraConfig:
    rank: int = 0  # 0 = off
    alpha: float = 16.0
    dropout: float = 0.0
    # Regular expressions over module names (`molmo.model.Molmo`): the LLM's attention and MLP projections.
    targets: tuple[str, ...] = (r"^llm\.blocks\.\d+\..*(att_proj|attn_out|ff_proj|ff_out)$",)


class LoRALinear(nn.Linear):
    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias
        w = base.weight
        self.lora_a = nn.Parameter(torch.empty(rank, self.in_features, device=w.device, dtype=w.dtype))
        self.lora_b = nn.Parameter(torch.zeros(self.out_features, rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank
        self.lora_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = F.linear(F.linear(self.lora_dropout(x), self.lora_a), self.lora_b)
        return F.linear(x, self.weight, self.bias) + self.scale * delta


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def apply_lora(model: nn.Module, cfg: LoraConfig) -> list[str]:
    """Wrap the targeted linear layers; only adapter parameters stay trainable. Returns the wrapped names."""
    if cfg.rank <= 0:
        raise ValueError(f"LoRA rank must be positive, got {cfg.rank}")
    patterns = [re.compile(t) for t in cfg.targets]
    names = [n for n, m in model.named_modules()
             if type(m) is nn.Linear and any(p.search(n) for p in patterns)]
    if not names:
        raise ValueError(f"no nn.Linear module matches the LoRA targets {cfg.targets}")
    for name in names:
        _set_module(model, name, LoRALinear(model.get_submodule(name), cfg.rank, cfg.alpha, cfg.dropout))
    for n, p in model.named_parameters():
        p.requires_grad_("lora_" in n)
    return names


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if "lora_" in n}


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    for name, m in list(model.named_modules()):
        if isinstance(m, LoRALinear):
            plain = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None,
                              device=m.weight.device, dtype=m.weight.dtype)
            plain.weight.copy_(m.weight + m.scale * (m.lora_b @ m.lora_a).to(m.weight.dtype))
            if m.bias is not None:
                plain.bias.copy_(m.bias)
            _set_module(model, name, plain)
    return model


def merge_state_dict(state: dict[str, torch.Tensor], cfg: LoraConfig) -> dict[str, torch.Tensor]:
    """A full state dict with adapters -> the plain model's state dict (`merge_lora` on tensors; works on the
    state gathered from any number of ranks)."""
    out = {k: v for k, v in state.items() if "lora_" not in k}
    scale = cfg.alpha / cfg.rank
    for key in state:
        if key.endswith("lora_a"):
            prefix = key[: -len("lora_a")]
            w = out[prefix + "weight"]
            out[prefix + "weight"] = w + (scale * state[prefix + "lora_b"].float() @ state[key].float()).to(w.dtype)
    return out


def save_adapter(path: str | Path, model: nn.Module | dict[str, torch.Tensor], cfg: LoraConfig) -> Path:
    """Adapter weights (from a model or a full state dict) + config, written to temporary names first so a
    kill never leaves half a file."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / (ADAPTER_FILE + ".tmp")
    state = lora_state_dict(model) if isinstance(model, nn.Module) else \
        {k: v.contiguous() for k, v in model.items() if "lora_" in k}
    save_file(state, str(tmp))
    os.replace(tmp, path / ADAPTER_FILE)
    (path / (ADAPTER_CONFIG + ".tmp")).write_text(json.dumps(asdict(cfg), indent=2))
    os.replace(path / (ADAPTER_CONFIG + ".tmp"), path / ADAPTER_CONFIG)
    return path


def load_adapter(model: nn.Module, path: str | Path) -> nn.Module:
    """Wrap `model` as the adapter's config says and load the adapter weights into it."""
    path = Path(path)
    raw = json.loads((path / ADAPTER_CONFIG).read_text())
    cfg = LoraConfig(**{**raw, "targets": tuple(raw["targets"])})
    apply_lora(model, cfg)
    state = load_file(str(path / ADAPTER_FILE))
    missing, unexpected = model.load_state_dict(state, strict=False)
    lora_missing = [k for k in missing if "lora_" in k]
    if lora_missing or unexpected:
        raise ValueError(f"adapter {path} does not fit the model: missing {lora_missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    return model
