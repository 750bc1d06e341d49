"""Decoder building blocks: RMSNorm (fp32 statistics), rotary embeddings (rotate-half, fp32), the fused
SwiGLU MLP with the released [up | gate] halves order, and the token-dependent residual dropout used by the
Molmo recipe (a higher rate on response tokens during caption pre-training).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).to(x.dtype)


class RotaryEmbedding(nn.Module):
    """cos/sin computed in fp32 from explicit position ids (positions may restart per sub-segment)."""

    def __init__(self, head_dim: int, theta: float, max_positions: int):
        super().__init__()
        self.max_positions, self.head_dim, self.theta = max_positions, head_dim, theta
        self.register_buffer("inv_freq", self._inv_freq(), persistent=False)

    def _inv_freq(self) -> torch.Tensor:
        # on the CPU even inside a meta-device context (the meta `pow` costs seconds of lazy imports)
        steps = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device="cpu")
        return self.theta ** (-steps / self.head_dim)

    def reset_buffers(self) -> None:
        """Recompute the frequencies (after building the model on the meta device)."""
        self.inv_freq = self._inv_freq().to(self.inv_freq.device)

    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if position_ids.numel() and int(position_ids.max()) >= self.max_positions:
            raise ValueError(
                f"position {int(position_ids.max())} exceeds the model context of {self.max_positions} positions"
            )
        freqs = position_ids.float()[..., None] * self.inv_freq
        emb = torch.cat([freqs, freqs], dim=-1)  # [B, T, hd]
        return emb.cos()[:, None], emb.sin()[:, None]  # broadcast over heads


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (xf * cos + rotated * sin).to(x.dtype)


class SwiGLU(nn.Module):
    """ff_proj produces [up | gate]; output = ff_out(silu(gate) * up) (released halves order)."""

    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.ff_proj = nn.Linear(d_model, 2 * hidden, bias=False)
        self.ff_out = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up, gate = self.ff_proj(x).chunk(2, dim=-1)
        return self.ff_out(F.silu(gate) * up)


def residual_dropout(
    x: torch.Tensor, p: float, p_response: float, response_mask: torch.Tensor | None, training: bool
) -> torch.Tensor:
    """Dropout with a per-token rate: `p_response` where response_mask > 0, `p` elsewhere."""
    if not training or (p == 0 and p_response == 0):
        return x
    if response_mask is None or p == p_response:
        return F.dropout(x, p=p if response_mask is None else p_response, training=True)
    rate = torch.where(response_mask > 0, p_response, p).to(x.dtype)[..., None]  # [B, T, 1]
    keep = torch.rand_like(x) >= rate
    return x * keep / (1 - rate)
