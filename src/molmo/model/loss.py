"""Weighted token cross-entropy and z-loss, returned as sums so callers can normalise by the total weight
over micro-batches and ranks (the recipe's loss is Σ w·CE / Σ w over the whole global batch).

    parts = token_loss(logits, labels, loss_masks, z_loss_weight=1e-4)
    loss = (parts.ce_sum + parts.z_sum) / parts.weight_sum
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class LossParts(NamedTuple):
    ce_sum: torch.Tensor
    z_sum: torch.Tensor
    weight_sum: torch.Tensor


def token_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-position CE in fp32. Labels outside the output vocabulary (-1 padding, image special tokens,
    which always carry weight 0) give 0."""
    vocab = logits.shape[-1]
    valid = (labels >= 0) & (labels < vocab)
    flat = logits.float().reshape(-1, vocab)
    ce = F.cross_entropy(flat, torch.where(valid, labels, 0).reshape(-1), reduction="none").view(labels.shape)
    return ce * valid


def token_loss(logits: torch.Tensor, labels: torch.Tensor, loss_masks: torch.Tensor,
               z_loss_weight: float = 0.0) -> LossParts:
    w = loss_masks.float() * (labels >= 0)
    if bool(((labels >= logits.shape[-1]) & (w > 0)).any()):
        raise ValueError("a loss-weighted label is outside the output vocabulary (only image tokens may be)")
    ce = token_ce(logits, labels)
    z = torch.zeros((), device=logits.device)
    if z_loss_weight:
        z = (z_loss_weight * torch.logsumexp(logits.float(), dim=-1).pow(2) * w).sum()
    return LossParts((ce * w).sum(), z, w.sum())
