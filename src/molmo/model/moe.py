"""OLMoE-style mixture-of-experts feed-forward (MolmoE-1B): a linear router, softmax over all experts,
top-k selection (weights not renormalised unless `norm_topk_prob`, as OLMoE defines it), SwiGLU experts.

Expert weights are stored stacked: w_gate / w_up [E, hidden, d], w_down [E, d, hidden].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from molmo.model.config import LLMConfig


class MoEFeedForward(nn.Module):
    def __init__(self, cfg: LLMConfig):
        super().__init__()
        e, h, d = cfg.num_experts, cfg.ffn_hidden, cfg.d_model
        self.top_k, self.norm_topk_prob = cfg.experts_top_k, cfg.norm_topk_prob
        self.router = nn.Linear(d, e, bias=False)
        self.w_gate = nn.Parameter(torch.empty(e, h, d))
        self.w_up = nn.Parameter(torch.empty(e, h, d))
        self.w_down = nn.Parameter(torch.empty(e, d, h))
        for w in (self.w_gate, self.w_up, self.w_down):
            nn.init.normal_(w, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])
        probs = F.softmax(self.router(tokens).float(), dim=-1)
        weights, experts = probs.topk(self.top_k, dim=-1)  # [N, k]
        if self.norm_topk_prob:
            weights = weights / weights.sum(-1, keepdim=True)
        out = torch.zeros_like(tokens)
        # Loop over experts that received tokens (dropless): gather, run, scatter-add.
        for e in experts.unique().tolist():
            token_idx, slot = (experts == e).nonzero(as_tuple=True)
            xe = tokens[token_idx]
            he = F.silu(xe @ self.w_gate[e].t()) * (xe @ self.w_up[e].t())
            ye = he @ self.w_down[e].t()
            out.index_add_(0, token_idx, ye * weights[token_idx, slot, None].to(ye.dtype))
        return out.view(shape)
