"""FlexAttention for packed multi-annotation training: the causal + padding + sub-segment rule
(query i sees key j iff j <= i, j is a real token and subseg[i] <= subseg[j]) as a block-sparse mask, so
fused kernels can skip masked blocks instead of materialising a dense [B, T, T] mask as the official code does.
Used by the trainer on GPU (`attention="flex"`); a test checks it against the dense SDPA mask.

    mask = flex_block_mask(attention_mask, subsegment_ids)      # BlockMask for the LLM's attention
    out = flex_attention_forward(q, k, v, mask)
"""

from __future__ import annotations

import torch

_compiled = None


def flex_block_mask(key_valid: torch.Tensor, subsegment_ids: torch.Tensor | None):
    from torch.nn.attention.flex_attention import create_block_mask

    b, t = key_valid.shape
    valid = key_valid.bool()

    if subsegment_ids is None:
        def mask_mod(bi, h, q, kv):
            return (q >= kv) & valid[bi, kv]
    else:
        sub = subsegment_ids

        def mask_mod(bi, h, q, kv):
            return (q >= kv) & valid[bi, kv] & (sub[bi, q] <= sub[bi, kv])

    return create_block_mask(mask_mod, b, None, t, t, device=key_valid.device)


def flex_attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask) -> torch.Tensor:
    global _compiled
    from torch.nn.attention.flex_attention import flex_attention

    if _compiled is None:
        _compiled = torch.compile(flex_attention, dynamic=False) if q.is_cuda else flex_attention
    return _compiled(q, k, v, block_mask=block_mask, enable_gqa=q.shape[1] != k.shape[1])
