"""The decoder-only language model shared by every Molmo family: Qwen2 (qkv bias, grouped-query
attention), OLMo-7B-1024 (qk-norm over the full q/k vectors, norm-after blocks, optional clip_qkv) and OLMoE
(mixture-of-experts FFN). Token embeddings are the base matrix plus 128 new rows; logits cover only
`embedding_size` ids, so the image special tokens can never be generated.

    llm = Decoder(LLMConfig()); x = llm.embed(ids); logits, cache = llm(x, attention_mask=..., position_ids=...)

Decoding writes keys/values in place into a preallocated `KVCache` (model/kv_cache.py); grouped-query
attention is SDPA's `enable_gqa` (no repeated K/V); `logits_to_keep` limits the LM head to the positions a
caller needs (generation: one per row), which at a 152k vocabulary is most of a prefill's memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from molmo.model.config import LLMConfig
from molmo.model.flex import flex_attention_forward, flex_block_mask
from molmo.model.kv_cache import KVCache
from molmo.model.layers import RMSNorm, RotaryEmbedding, SwiGLU, apply_rotary, residual_dropout
from molmo.model.moe import MoEFeedForward


class TokenEmbedding(nn.Module):
    """Base vocabulary rows (`embedding`, frozen by the recipe) + `new_embedding` rows for special tokens.
    The lookup splits ids between the two tables instead of concatenating them (a copy of the whole table,
    ~2 GB at 7B in fp32, per call)."""

    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(cfg.embedding_size, cfg.d_model))
        self.new_embedding = nn.Parameter(torch.zeros(cfg.additional_vocab_size, cfg.d_model))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        base_rows = self.embedding.shape[0]
        ids = ids.clamp(min=0)  # -1 padding ids read row 0 (masked later)
        base = F.embedding(ids.clamp(max=base_rows - 1), self.embedding)
        is_new = ids >= base_rows
        new = F.embedding((ids - base_rows).clamp(0, self.new_embedding.shape[0] - 1), self.new_embedding)
        return torch.where(is_new[..., None], new, base)


class Attention(nn.Module):
    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.cfg = cfg
        q_dim, kv_dim = cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
        self.q_dim, self.kv_dim = q_dim, kv_dim
        self.att_proj = nn.Linear(cfg.d_model, q_dim + 2 * kv_dim, bias=cfg.qkv_bias)  # rows [q; k; v]
        self.attn_out = nn.Linear(q_dim, cfg.d_model, bias=False)
        self.q_norm = RMSNorm(q_dim, cfg.norm_eps) if cfg.qk_norm else None
        self.k_norm = RMSNorm(kv_dim, cfg.norm_eps) if cfg.qk_norm else None

    def forward(self, x, cos, sin, mask, cache: KVCache | None, layer: int):
        cfg = self.cfg
        b, t, _ = x.shape
        qkv = self.att_proj(x)
        if cfg.clip_qkv is not None:
            qkv = qkv.clamp(-cfg.clip_qkv, cfg.clip_qkv)
        q, k, v = qkv.split([self.q_dim, self.kv_dim, self.kv_dim], dim=-1)
        if self.q_norm is not None:  # over the whole q / k vectors, before splitting into heads
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.view(b, t, cfg.heads, cfg.head_dim).transpose(1, 2)
        k = k.view(b, t, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        v = v.view(b, t, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        gqa = cfg.heads != cfg.kv_heads  # kv head j serves query heads j*G .. j*G+G-1 (G = heads / kv_heads)
        if isinstance(mask, torch.Tensor) or mask is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa,
                                                 dropout_p=cfg.attention_dropout if self.training else 0.0)
        else:  # a FlexAttention BlockMask (training on GPU)
            out = flex_attention_forward(q, k, v, mask)
        return self.attn_out(out.transpose(1, 2).reshape(b, t, self.q_dim))


class Block(nn.Module):
    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.cfg = cfg
        self.attn = Attention(cfg)
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.ff_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MoEFeedForward(cfg) if cfg.num_experts else SwiGLU(cfg.d_model, cfg.ffn_hidden)

    def forward(self, x, cos, sin, mask, cache=None, layer=0, response_mask=None):
        cfg = self.cfg

        def drop(h):
            return residual_dropout(h, cfg.residual_dropout, cfg.response_residual_dropout, response_mask,
                                    self.training)

        if cfg.norm_after:  # OLMo-1024 / OLMo2 style
            h = x + drop(self.attn_norm(self.attn(x, cos, sin, mask, cache, layer)))
            return h + drop(self.ff_norm(self.mlp(h)))
        h = x + drop(self.attn(self.attn_norm(x), cos, sin, mask, cache, layer))
        return h + drop(self.mlp(self.ff_norm(h)))

    def residual_outputs(self) -> list[nn.Parameter]:
        """The weights that write into the residual stream (depth-scaled at random init)."""
        ffn_out = self.mlp.w_down if isinstance(self.mlp, MoEFeedForward) else self.mlp.ff_out.weight
        return [self.attn.attn_out.weight, ffn_out]


def build_attention_mask(
    key_valid: torch.Tensor, q_len: int, subsegment_ids: torch.Tensor | None, dtype: torch.dtype,
    query_start: int | None = None,
) -> torch.Tensor:
    """Additive mask [B, 1, q_len, K]: causal, padding keys masked, and the multi-annotation rule (query i
    sees key j only if subseg[i] <= subseg[j]). The queries sit at key slots query_start .. +q_len (default:
    the last q_len keys; a static cache has unwritten slots after them)."""
    b, k_len = key_valid.shape
    device = key_valid.device
    start = k_len - q_len if query_start is None else query_start
    q_pos = torch.arange(start, start + q_len, device=device)
    allowed = q_pos[:, None] >= torch.arange(k_len, device=device)[None, :]  # [q, K]
    allowed = allowed[None] & key_valid[:, None, :].bool()
    if subsegment_ids is not None:
        sub_q = subsegment_ids[:, -q_len:]
        allowed = allowed & (sub_q[:, :, None] <= subsegment_ids[:, None, :])
    mask = torch.zeros(b, 1, q_len, k_len, dtype=dtype, device=device)
    return mask.masked_fill(~allowed[:, None], torch.finfo(dtype).min)


class Decoder(nn.Module):
    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = TokenEmbedding(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.embedding_size, bias=False)
        self.rotary = RotaryEmbedding(cfg.head_dim, cfg.rope_theta, cfg.max_position_embeddings)
        self.activation_checkpointing = False
        self.attention_backend = "sdpa"  # "flex": FlexAttention block mask (training without a KV cache)

    def forward(
        self,
        x: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        subsegment_ids: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        response_mask: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
    ) -> tuple[torch.Tensor, KVCache | None]:
        """x [B, T, d] embeddings; attention_mask [B, K] (1 = real token) over the keys attention reads:
        past + T, or the whole capacity of a static cache; position_ids [B, T]. `past_key_values` is
        written in place. logits_to_keep: 0 = every position, k > 0 = the last k, a LongTensor [B] = one
        position per row (returns [B, 1, E])."""
        cache = past_key_values
        if cache is None and use_cache:
            cache = KVCache.allocate(self.cfg, x.shape[0], x.shape[1], x.dtype, x.device)
        if self.attention_backend == "flex" and cache is None:
            mask = flex_block_mask(attention_mask, subsegment_ids)
        else:
            mask = build_attention_mask(attention_mask, x.shape[1], subsegment_ids, x.dtype,
                                        query_start=None if cache is None else cache.length)
        cos, sin = self.rotary(position_ids)
        for i, block in enumerate(self.blocks):
            if self.activation_checkpointing and self.training:
                x = checkpoint(block, x, cos, sin, mask, cache, i, response_mask, use_reentrant=False)
            else:
                x = block(x, cos, sin, mask, cache, i, response_mask)
        if cache is not None:
            cache.advance(x.shape[1])
        if isinstance(logits_to_keep, torch.Tensor):
            x = x[torch.arange(x.shape[0], device=x.device), logits_to_keep.to(x.device)][:, None]
        elif logits_to_keep > 0:
            x = x[:, -logits_to_keep:]
        logits = self.lm_head(self.ln_f(x))
        return logits, cache
