"""Mapping between the released HF-format Molmo parameter names (arch-spec §7) and this package's module
names. Kept apart from the model so the model code stays free of external naming (torchtitan style).

    ours = to_ours(released_state_dict, config)   # names and, for MoE experts, layouts
    ours_name, layout = released_target(name, config)  # one tensor (the streaming loader)
    released = to_released(model.state_dict(), config)
    released_module_name("llm.blocks.0.attn.att_proj") == "model.transformer.blocks.0.att_proj"   # (and back)
"""

from __future__ import annotations

import re
from typing import Callable

import torch

from molmo.model.config import MolmoConfig

# (released prefix/pattern, our name); applied in order, first match wins.
_RULES: list[tuple[str, str]] = [
    (r"^model\.transformer\.wte\.embedding$", "llm.embed.embedding"),
    (r"^model\.transformer\.wte\.new_embedding$", "llm.embed.new_embedding"),
    (r"^model\.transformer\.ln_f\.weight$", "llm.ln_f.weight"),
    (r"^model\.transformer\.ff_out\.weight$", "llm.lm_head.weight"),
    (r"^model\.transformer\.blocks\.(\d+)\.att_proj\.(weight|bias)$", r"llm.blocks.\1.attn.att_proj.\2"),
    (r"^model\.transformer\.blocks\.(\d+)\.attn_out\.weight$", r"llm.blocks.\1.attn.attn_out.weight"),
    (r"^model\.transformer\.blocks\.(\d+)\.(q_norm|k_norm)\.weight$", r"llm.blocks.\1.attn.\2.weight"),
    (r"^model\.transformer\.blocks\.(\d+)\.(attn_norm|ff_norm)\.weight$", r"llm.blocks.\1.\2.weight"),
    (r"^model\.transformer\.blocks\.(\d+)\.(ff_proj|ff_out)\.weight$", r"llm.blocks.\1.mlp.\2.weight"),
    (r"^model\.transformer\.blocks\.(\d+)\.ffn\.router\.layer\.weight$", r"llm.blocks.\1.mlp.router.weight"),
    (r"^model\.vision_backbone\.image_vit\.transformer\.resblocks\.(\d+)\.(.*)$", r"vision.vit.blocks.\1.\2"),
    (r"^model\.vision_backbone\.image_vit\.(.*)$", r"vision.vit.\1"),
    (r"^model\.vision_backbone\.image_pooling_2d\.(.*)$", r"vision.pooling.\1"),
    (r"^model\.vision_backbone\.image_projector\.(.*)$", r"vision.projector.\1"),
    (r"^model\.vision_backbone\.pad_embed$", "vision.pad_embed"),
]
# MoE experts in the megablocks layout: each [E * hidden, d], experts concatenated along dim 0.
# w1 = gate, v1 = up, w2 = down transposed. [INFERRED from the official OLMoE block; see docs/checkpoints.md]
_EXPERTS = re.compile(r"^model\.transformer\.blocks\.(\d+)\.ffn\.experts\.mlp\.(w1|v1|w2)$")
_EXPERT_TO_OURS = {"w1": "w_gate", "v1": "w_up", "w2": "w_down"}


def released_to_ours_name(name: str) -> str | None:
    if name.startswith("transformer.") or name.startswith("vision_backbone."):
        name = "model." + name  # the official training repo's state dicts drop the leading "model."
    for pattern, repl in _RULES:
        if re.match(pattern, name):
            return re.sub(pattern, repl, name)
    return None


Layout = Callable[[torch.Tensor], torch.Tensor]


def released_target(name: str, config: MolmoConfig) -> tuple[str | None, Layout | None]:
    """(our name or None if unknown, a function from the file's layout to ours or None if the bytes already
    match ours row for row)."""
    m = _EXPERTS.match(name if name.startswith("model.") else "model." + name)
    if m:
        layer, kind = m.groups()
        e, h, d = config.llm.num_experts, config.llm.ffn_hidden, config.llm.d_model
        ours = f"llm.blocks.{layer}.mlp.{_EXPERT_TO_OURS[kind]}"
        if kind == "w2":  # [E*h, d] -> [E, d, h]
            return ours, lambda t: t.reshape(e, h, d).transpose(1, 2).contiguous()
        return ours, lambda t: t.reshape(e, h, d)
    return released_to_ours_name(name), None


def to_ours(state: dict[str, torch.Tensor], config: MolmoConfig) -> dict[str, torch.Tensor]:
    """Rename a released state dict; unknown names raise with the full list."""
    out, unknown = {}, []
    for name, tensor in state.items():
        ours, layout = released_target(name, config)
        if ours is None:
            unknown.append(name)
        else:
            out[ours] = layout(tensor) if layout is not None else tensor
    if unknown:
        raise KeyError(f"checkpoint has {len(unknown)} tensor(s) with unknown names, e.g. {unknown[:5]}")
    return out


def to_released(state: dict[str, torch.Tensor], config: MolmoConfig) -> dict[str, torch.Tensor]:
    """Inverse of `to_ours` (used for export and the converters' round-trip tests)."""
    expert_names = {v: k for k, v in _EXPERT_TO_OURS.items()}
    out = {}
    for name, tensor in state.items():
        m = re.match(r"^llm\.blocks\.(\d+)\.mlp\.(w_gate|w_up|w_down)$", name)
        if m:
            t = tensor.transpose(1, 2) if m.group(2) == "w_down" else tensor
            released = f"model.transformer.blocks.{m.group(1)}.ffn.experts.mlp.{expert_names[m.group(2)]}"
            out[released] = t.reshape(-1, t.shape[-1]).contiguous()
            continue
        released = next((c for c in _released_candidates(name) if released_to_ours_name(c) == name), None)
        if released is None:
            raise KeyError(f"no released name for parameter {name!r}")
        out[released] = tensor
    return out


def _released_candidates(ours: str) -> list[str]:
    m = re.match(r"^llm\.blocks\.(\d+)\.(?:attn\.|mlp\.)?(.*)$", ours)
    if m:
        layer, rest = m.groups()
        if rest == "router.weight":
            return [f"model.transformer.blocks.{layer}.ffn.router.layer.weight"]
        return [f"model.transformer.blocks.{layer}.{rest}"]
    m = re.match(r"^vision\.vit\.blocks\.(\d+)\.(.*)$", ours)
    if m:
        return [f"model.vision_backbone.image_vit.transformer.resblocks.{m.group(1)}.{m.group(2)}"]
    fixed = {
        "llm.embed.embedding": "model.transformer.wte.embedding",
        "llm.embed.new_embedding": "model.transformer.wte.new_embedding",
        "llm.ln_f.weight": "model.transformer.ln_f.weight",
        "llm.lm_head.weight": "model.transformer.ff_out.weight",
        "vision.pad_embed": "model.vision_backbone.pad_embed",
    }
    if ours in fixed:
        return [fixed[ours]]
    for ours_prefix, rel_prefix in (("vision.vit.", "model.vision_backbone.image_vit."),
                                    ("vision.pooling.", "model.vision_backbone.image_pooling_2d."),
                                    ("vision.projector.", "model.vision_backbone.image_projector.")):
        if ours.startswith(ours_prefix):
            return [rel_prefix + ours[len(ours_prefix):]]
    return []


def released_module_name(ours: str) -> str:
    """Our module name (a Linear, e.g. a LoRA target) -> its released module name; KeyError when none."""
    released = next((c for c in _released_candidates(ours + ".weight")
                     if released_to_ours_name(c) == ours + ".weight"), None)
    if released is None:
        raise KeyError(f"no released name for module {ours!r}")
    return released[: -len(".weight")]


def ours_module_name(released: str) -> str | None:
    """Inverse of `released_module_name`; None for names the released checkpoints do not have."""
    ours = released_to_ours_name(released + ".weight")
    return ours[: -len(".weight")] if ours else None
