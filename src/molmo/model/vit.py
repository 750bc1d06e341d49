"""The vision transformer: CLIP-style (pre-LN, quick_gelu, class token), SigLIP-style (no class token,
patch bias, gelu-tanh) and DINOv2-style (layer scale). Input is already patchified crops
[B, P, 3*p*p] in (dy, dx, channel) order; output is the hidden state after every block.

    vit = VisionTransformer(VisionConfig()); hidden = vit(patches)  # list of [B, P(+1), width]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from molmo.model.config import Activation, VisionConfig


def activation_fn(name: Activation):
    if name == Activation.QUICK_GELU:
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == Activation.GELU_TANH:
        return lambda x: F.gelu(x, approximate="tanh")
    if name == Activation.GELU:
        return F.gelu
    raise ValueError(f"unknown ViT activation {name!r}")


class ViTAttention(nn.Module):
    """Bidirectional multi-head attention with biases; softmax in fp32 as in the released code."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        inner = cfg.heads * cfg.head_dim
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        self.wq = nn.Linear(cfg.width, inner)
        self.wk = nn.Linear(cfg.width, inner)
        self.wv = nn.Linear(cfg.width, inner)
        self.wo = nn.Linear(inner, cfg.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (w(x).view(b, t, self.heads, self.head_dim).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
        out = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(v.dtype)
        return self.wo(out.transpose(1, 2).reshape(b, t, -1))


class ViTMLP(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.width, cfg.mlp_dim)
        self.w2 = nn.Linear(cfg.mlp_dim, cfg.width)
        self.act = activation_fn(cfg.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(self.act(self.w1(x)))


class ViTBlock(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.cfg = cfg
        self.attention = ViTAttention(cfg)
        self.feed_forward = ViTMLP(cfg)
        self.attention_norm = nn.LayerNorm(cfg.width, eps=cfg.norm_eps)
        self.ffn_norm = nn.LayerNorm(cfg.width, eps=cfg.norm_eps)
        if cfg.layer_scale:  # DINOv2
            self.lambda1 = nn.Parameter(torch.ones(cfg.width))
            self.lambda2 = nn.Parameter(torch.ones(cfg.width))
        else:
            self.lambda1 = self.lambda2 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attention(self.attention_norm(x))
        x = x + (a * self.lambda1 if self.lambda1 is not None else a)
        m = self.feed_forward(self.ffn_norm(x))
        return x + (m * self.lambda2 if self.lambda2 is not None else m)

    def residual_outputs(self) -> list[nn.Parameter]:
        """The weights that write into the residual stream (depth-scaled at random init)."""
        return [self.attention.wo.weight, self.feed_forward.w2.weight]


class VisionTransformer(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embedding = nn.Linear(cfg.patch_dim, cfg.width, bias=cfg.patch_bias)
        self.class_embedding = nn.Parameter(torch.zeros(cfg.width)) if cfg.class_token else None
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.num_positions, cfg.width))
        self.pre_ln = nn.LayerNorm(cfg.width, eps=cfg.norm_eps) if cfg.pre_ln else None
        self.blocks = nn.ModuleList(ViTBlock(cfg) for _ in range(cfg.layers))

    def _positions(self, num_patches: int) -> torch.Tensor:
        pos = self.positional_embedding
        cls, grid = (pos[:1], pos[1:]) if self.class_token_present else (pos[:0], pos)
        if grid.shape[0] != num_patches:
            # Other input sizes: bicubic interpolation of the square position grid.
            old, new = int(math.isqrt(grid.shape[0])), int(math.isqrt(num_patches))
            if new * new != num_patches:
                raise ValueError(f"cannot interpolate ViT positions to a non-square grid of {num_patches} patches")
            g = grid.reshape(1, old, old, -1).permute(0, 3, 1, 2).float()
            g = F.interpolate(g, size=(new, new), mode="bicubic", align_corners=False, antialias=True)
            grid = g.permute(0, 2, 3, 1).reshape(new * new, -1).to(pos.dtype)
        return torch.cat([cls, grid], dim=0)

    @property
    def class_token_present(self) -> bool:
        return self.class_embedding is not None

    def forward(self, patches: torch.Tensor) -> list[torch.Tensor]:
        """patches [B, P, 3*p*p] -> hidden states after each block, each [B, P + cls, width]."""
        x = self.patch_embedding(patches)
        if self.class_embedding is not None:
            cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
            x = torch.cat([cls, x], dim=1)
        x = x + self._positions(patches.shape[1]).to(x.dtype)[None]
        if self.pre_ln is not None:  # in fp32, as the released code does
            ln = self.pre_ln
            x = F.layer_norm(x.float(), ln.normalized_shape, ln.weight.float(), ln.bias.float(), ln.eps).to(x.dtype)
        hidden = []
        for block in self.blocks:
            x = block(x)
            hidden.append(x)
        return hidden
