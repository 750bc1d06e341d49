"""Random initialisation for models trained from scratch (the released models start from pre-trained ViT
and LLM weights instead): normal(0, std) for weight matrices and embeddings, zero biases, unit norms,
residual output projections scaled by 1/sqrt(2·layers) so activations stay O(1) with depth, and the
connector's constant `image_scale` set so image tokens start at the scale of the text embeddings (with a
plain 0.02 init they come out ~100x smaller, and a small model then learns to ignore them). Call
`match_image_token_scale` again after loading a pre-trained ViT: its features are far larger.

    model = Molmo(config); init_weights(model, seed=0)
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn


@torch.no_grad()
def init_weights(model: nn.Module, seed: int = 0, std: float = 0.02) -> None:
    gen = torch.Generator().manual_seed(seed)
    # Each transformer block names the weights that write into its tower's residual stream and its tower's depth
    # (`residual_outputs`), so the ViT is scaled by the ViT's depth and the decoder by the decoder's.
    depth_scaled = {id(p): layers for m in model.modules() if hasattr(m, "residual_outputs")
                    for p, layers in [(w, m.cfg.layers) for w in m.residual_outputs()]}
    for name, p in model.named_parameters():
        if p.dim() == 1:
            is_norm = "norm" in name or "ln_" in name or "_ln" in name
            p.fill_(1.0 if is_norm and name.endswith("weight") else 0.0)
            continue
        scale = std / math.sqrt(2 * depth_scaled[id(p)]) if id(p) in depth_scaled else std
        p.copy_(torch.randn(p.shape, generator=gen) * scale)
    match_image_token_scale(model, gen)


@torch.no_grad()
def match_image_token_scale(model: nn.Module, gen: torch.Generator) -> float:
    """Set the connector's constant `image_scale` so image features have the text embeddings' RMS on random
    crops; returns the factor applied. A constant, not rescaled projector weights: Adam moves every weight
    by about the learning rate per step, so weights shrunk to ~1e-4 would lose their scale in one step (an
    earlier model's image tokens grew to ~1e6x the text embeddings that way)."""
    vcfg = model.config.vision
    crops = torch.rand((2, 1, vcfg.num_patches, vcfg.patch_dim), generator=gen) * 2 - 1
    features = model.vision(crops, torch.ones(2, 1, vcfg.num_patches))
    target = model.llm.embed.embedding.float().pow(2).mean().sqrt()
    factor = float(target / features.float().pow(2).mean().sqrt().clamp(min=1e-12))
    connector = dataclasses.replace(model.config.connector, image_scale=model.config.connector.image_scale * factor)
    model.config = dataclasses.replace(model.config, connector=connector)
    model.vision.cfg = model.config
    return factor
