"""Optimizer parameter groups, the per-group cosine schedule and per-group gradient clipping of the Molmo
recipe (recipe-spec §3.1).

Groups: connector (pooling, projector, pad embeddings, the extra token embeddings), vit, llm; each split
into decay / no-decay. The LLM's original input embedding is frozen as released.

    optimizer = build_optimizer(model, cfg.optim)
    set_learning_rates(optimizer, cfg.optim, step, cfg.steps)
    norms = clip_per_group(optimizer, cfg.optim.max_grad_norm)    # {"connector": 0.8, "vit": ..., "llm": ...}
"""

from __future__ import annotations

import math

import torch
from torch import nn

from molmo.train.config import OptimConfig

GROUPS = ("connector", "vit", "llm")
# recipe-spec §optimizer: no decay on the token embeddings (wte, ours `llm.embed.*`), norms, position codes and
# the class token; the patch embedding and pad_embed are weight matrices and decay (1-d tensors never do).
NO_DECAY_MARKERS = ("norm", "ln_", "llm.embed.", "class_embedding", "positional_embedding")


def param_group_name(name: str) -> str:
    """Which recipe group a parameter of `molmo.model.MolmoModel` belongs to."""
    if name.startswith("vision.vit."):
        return "vit"
    if name.startswith(("vision.", "llm.embed.new_embedding")):
        return "connector"
    if name.startswith("llm."):
        return "llm"
    raise ValueError(f"parameter {name!r} belongs to no optimizer group")


def is_frozen(name: str, cfg: OptimConfig) -> bool:
    group = param_group_name(name)
    return ((cfg.freeze_embedding and name == "llm.embed.embedding") or (cfg.freeze_vit and group == "vit")
            or (cfg.freeze_llm and group == "llm"))


def apply_freezing(model: nn.Module, cfg: OptimConfig) -> None:
    """The recipe's frozen parts; with LoRA adapters in the model only the adapters train."""
    lora = any("lora_" in name for name, _ in model.named_parameters())
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name if lora else not is_frozen(_strip(name), cfg))


def _strip(name: str) -> str:
    """FSDP / compile / LoRA wrappers add prefixes; group rules use the plain model names."""
    for prefix in ("_orig_mod.", "_checkpoint_wrapped_module.", "module."):
        name = name.replace(prefix, "")
    return name


def decays(name: str, p: torch.Tensor) -> bool:
    """Whether weight decay applies: weight matrices only, not norms, embeddings, position codes or biases."""
    return p.dim() >= 2 and not any(m in _strip(name) for m in NO_DECAY_MARKERS)


def build_param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    buckets: dict[tuple[str, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        buckets.setdefault((param_group_name(_strip(name)), decays(name, p)), []).append(p)
    groups = []
    for (group, decay), params in sorted(buckets.items()):
        groups.append({"params": params, "group": group, "lr": 0.0, "initial_lr": getattr(cfg, group).lr,
                       "weight_decay": cfg.weight_decay if decay else 0.0})
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    apply_freezing(model, cfg)
    groups = build_param_groups(model, cfg)
    if not groups:
        raise ValueError("no trainable parameters (every group is frozen)")
    fused = all(p.is_cuda for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=0.0, betas=cfg.betas, eps=cfg.eps, fused=fused or None)


def learning_rate(step: int, peak: float, warmup: int, total: int, final_fraction: float = 0.1) -> float:
    """Linear warm-up from 0 over `warmup` steps, then cosine to `final_fraction * peak` at step `total`.
    Steps count from 1 for the first update."""
    if warmup > 0 and step < warmup:
        return peak * step / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_learning_rates(optimizer: torch.optim.Optimizer, cfg: OptimConfig, step: int, total: int
                       ) -> dict[str, float]:
    lrs = {}
    for g in optimizer.param_groups:
        gc = getattr(cfg, g["group"])
        g["lr"] = learning_rate(step, gc.lr, gc.warmup, total, cfg.final_lr_fraction)
        lrs[g["group"]] = g["lr"]
    return lrs


def clip_per_group(optimizer: torch.optim.Optimizer, max_norm: float) -> dict[str, float]:
    """Scale each group's gradients (connector, vit, llm; decay and no-decay together) to an L2 norm of at
    most `max_norm`; returns the norms before clipping. Sharded (DTensor) gradients are reduced over ranks."""
    by_group: dict[str, list[torch.Tensor]] = {}
    for g in optimizer.param_groups:
        by_group.setdefault(g["group"], []).extend(p for p in g["params"] if p.grad is not None)
    norms = {}
    for name, params in by_group.items():
        if not params:
            continue
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], norm_type=2.0)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        if max_norm > 0:
            torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
        norms[name] = float(norm)
    return norms
