"""Random initialisation for models trained from scratch (the released models start from pre-trained ViT
and LLM weights instead): normal(0, std) for weight matrices and embeddings, zero biases, unit norms,
residual output projections scaled by 1/sqrt(2·layers) so activations stay O(1) with depth; and
`image_token_scale`, the connector's constant `image_scale` that makes image tokens start at the scale
of the text embeddings (with a plain 0.02 init they come out ~100x smaller, and a small model then learns to
ignore them). The scale is measured on initialised weights but belongs to the config, so a caller measures it
on one model and builds the model it trains from the completed config (`molmo.train.setup.from_scratch`).

    probe = MolmoModel(config); gen = init_weights(probe, seed=0)
    scale = image_token_scale(probe, gen)   # -> config.connector.image_scale of the model to train
"""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def init_weights(model: nn.Module, seed: int = 0, std: float = 0.02) -> torch.Generator:
    """Fill every parameter; returns the generator, whose next draws are the scale measurement's crops."""
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
    return gen


@torch.no_grad()
def image_token_scale(model: nn.Module, gen: torch.Generator, scale: float = 1.0) -> float:
    """The connector `image_scale` that gives image features the text embeddings' RMS on random crops, for
    `model` (built with image_scale 1.0) whose features are multiplied by `scale`; nothing is changed.
    A constant, not rescaled projector weights: Adam moves every weight by about the learning rate per step,
    so weights shrunk to ~1e-4 would lose their scale in one step and the image tokens would grow to ~1e6x
    the text embeddings."""
    if model.config.connector.image_scale != 1.0:
        raise ValueError("measure the image-token scale on a model built with connector.image_scale = 1.0")
    vcfg = model.config.vision
    crops = torch.rand((2, 1, vcfg.num_patches, vcfg.patch_dim), generator=gen) * 2 - 1
    features = model.vision(crops, torch.ones(2, 1, vcfg.num_patches))
    if scale != 1.0:  # as the connector applies it
        features = features * scale
    target = model.llm.embed.embedding.float().pow(2).mean().sqrt()
    return scale * float(target / features.float().pow(2).mean().sqrt().clamp(min=1e-12))
