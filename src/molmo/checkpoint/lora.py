"""LoRA: low-rank adapters on the language model's linear layers, for fine-tuning on a user's own data with
few trainable parameters.

`apply_lora` swaps each targeted `nn.Linear` for a `LoRALinear` that keeps the base weight under the same
name (so checkpoints and optimizer groups see the usual parameter names) and adds `lora_a` [r, in] and
`lora_b` [out, r]; B starts at zero, so the adapted model equals the base model until it trains.
`merge_lora` folds `scale * B @ A` into the base weights and puts plain `nn.Linear`s back.

    names = apply_lora(model, LoraConfig(rank=8))        # freezes everything but the adapters
    save_adapter("runs/ft/adapter", model, cfg); load_adapter(model, "runs/ft/adapter")
    merge_lora(model)                                    # plain Molmo again, with the adapter folded in

Adapters are stored in PEFT's format (`adapter_config.json` + `adapter_model.safetensors`, tensors named
`base_model.model.<released module>.lora_A.weight`), so peft, transformers and vLLM read them with the
released checkpoints, and `molmo ask --model BASE --adapter DIR` reads theirs. That file format (released
module names, `molmo.checkpoint.names`) is why this module sits with the checkpoint code: training applies
adapters, the API merges them when it loads, and both import them from here.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from molmo.checkpoint.lora_config import LoraConfig

ADAPTER_FILE = "adapter_model.safetensors"  # PEFT's names
ADAPTER_CONFIG = "adapter_config.json"


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


def _peft_targets(modules: list[str], layers: set[str]) -> str:
    """A regex (PEFT full-matches a string `target_modules`) naming exactly the wrapped released modules: one
    `blocks.<any number>` pattern per suffix when every one of `layers` has it, the exact names otherwise."""
    block = re.compile(r"^(.*\.blocks\.)(\d+)(\..*)$")
    by_suffix: dict[tuple[str, str], set[str]] = {}
    exact = []
    for name in modules:
        m = block.match(name)
        if m:
            by_suffix.setdefault((m.group(1), m.group(3)), set()).add(m.group(2))
        else:
            exact.append(re.escape(name))
    parts = []
    for (head, tail), seen in sorted(by_suffix.items()):
        if seen == layers:
            parts.append(re.escape(head) + r"\d+" + re.escape(tail))
        else:
            parts += [re.escape(f"{head}{i}{tail}") for i in sorted(seen, key=int)]
    return "|".join(sorted(parts) + exact)


def save_adapter(path: str | Path, model: nn.Module | dict[str, torch.Tensor], cfg: LoraConfig,
                 base_model: str | None = None) -> Path:
    """A PEFT-format adapter: `adapter_model.safetensors` with `base_model.model.<released module>.lora_A.weight`
    / `lora_B.weight` and `adapter_config.json` (peft_type LORA), from a model or a full state dict. Files are
    written to temporary names first so a kill never leaves half a file."""
    from molmo.checkpoint.names import released_module_name

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    full = {n: p for n, p in model.named_parameters()} if isinstance(model, nn.Module) else model
    state, modules = {}, []
    for key, tensor in full.items():
        if key.endswith(".lora_a"):
            module = key[: -len(".lora_a")]
            released = released_module_name(module)
            modules.append(released)
            state[f"base_model.model.{released}.lora_A.weight"] = tensor.detach().cpu().contiguous()
            state[f"base_model.model.{released}.lora_B.weight"] = full[module + ".lora_b"].detach().cpu().contiguous()
    if not state:
        raise ValueError("no LoRA adapters to save (the model has no lora_a / lora_b parameters)")
    layers = {m.group(1) for k in full if (m := re.match(r"^llm\.blocks\.(\d+)\.", k))}
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model or cfg.base_model,
        "r": cfg.rank, "lora_alpha": cfg.alpha, "lora_dropout": cfg.dropout,
        "target_modules": _peft_targets(sorted(modules), layers), "bias": "none", "fan_in_fan_out": False,
        "inference_mode": True, "init_lora_weights": True, "modules_to_save": None, "layers_to_transform": None,
        "layers_pattern": None, "rank_pattern": {}, "alpha_pattern": {}, "use_rslora": False, "use_dora": False,
        "revision": None,
    }
    tmp = path / (ADAPTER_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path / ADAPTER_FILE)
    (path / (ADAPTER_CONFIG + ".tmp")).write_text(json.dumps(config, indent=2))
    os.replace(path / (ADAPTER_CONFIG + ".tmp"), path / ADAPTER_CONFIG)
    return path


class AdapterError(ValueError):
    """A LoRA adapter cannot be applied (unsupported PEFT option, or made for another base model)."""


def read_adapter(path: str | Path) -> tuple[dict, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """(adapter_config.json, {released module name: (lora_A [r, in], lora_B [out, r])}) of a PEFT LoRA folder."""
    path = Path(path)
    if not (path / ADAPTER_CONFIG).is_file() or not (path / ADAPTER_FILE).is_file():
        raise AdapterError(f"{path}: not a PEFT adapter folder (needs {ADAPTER_CONFIG} and {ADAPTER_FILE})")
    config = json.loads((path / ADAPTER_CONFIG).read_text())
    if config.get("peft_type") != "LORA":
        raise AdapterError(f"{path}: peft_type {config.get('peft_type')!r} is not supported, only 'LORA'")
    unsupported = {k: config[k] for k in ("use_dora", "rank_pattern", "alpha_pattern", "bias", "modules_to_save")
                   if config.get(k) not in (None, False, "none", [], {})}
    if unsupported:
        raise AdapterError(f"{path}: PEFT options molmo's adapter loader does not support: {unsupported}")
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    pattern = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$")
    for key, tensor in load_file(str(path / ADAPTER_FILE)).items():
        m = pattern.match(key)
        if m is None:
            raise AdapterError(f"{path}: unexpected tensor {key!r} (expected base_model.model.<module>.lora_A/B.weight)")
        pairs.setdefault(m.group(1), {})[m.group(2)] = tensor
    broken = [k for k, v in pairs.items() if set(v) != {"A", "B"}]
    if broken:
        raise AdapterError(f"{path}: modules without both lora_A and lora_B: {broken[:5]}")
    return config, {k: (v["A"], v["B"]) for k, v in pairs.items()}


def load_adapter(model: nn.Module, path: str | Path) -> nn.Module:
    """Wrap `model`'s targeted layers as the PEFT adapter at `path` says and load its weights; an adapter made
    for another base fails with the module names and shapes that do not fit."""
    from molmo.checkpoint.names import ours_module_name

    path = Path(path)
    config, pairs = read_adapter(path)
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    modules = dict(model.named_modules())
    unknown, bad, targets = [], [], {}
    for released, (a, b) in sorted(pairs.items()):
        ours = ours_module_name(released)
        layer = modules.get(ours) if ours else None
        if not isinstance(layer, nn.Linear):
            unknown.append(released)
        elif a.shape != (rank, layer.in_features) or b.shape != (layer.out_features, rank):
            bad.append(f"{released}: lora_A {list(a.shape)}, lora_B {list(b.shape)} vs the model's "
                       f"[{layer.out_features}, {layer.in_features}] layer at rank {rank}")
        else:
            targets[ours] = (a, b)
    if unknown or bad:
        base = config.get("base_model_name_or_path")
        parts = [f"{len(unknown)} module(s) this model does not have: {unknown[:4]}"] if unknown else []
        parts += [f"{len(bad)} shape mismatch(es): {bad[:3]}"] if bad else []
        raise AdapterError(f"adapter {path} (made for {base or 'an unnamed base'}) does not fit this model: "
                           + "; ".join(parts))
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    cfg = LoraConfig(rank=rank, alpha=alpha, dropout=float(config.get("lora_dropout") or 0.0),
                     targets=tuple(f"^{re.escape(n)}$" for n in targets))
    apply_lora(model, cfg)
    with torch.no_grad():
        for name, (a, b) in targets.items():
            layer = model.get_submodule(name)
            layer.lora_a.copy_(a)
            layer.lora_b.copy_(b)
            layer.scale = scale
    return model
