"""The decode path without per-step copies: split embedding lookup, in-place KV cache (dynamic, static and
growing), SDPA grouped-query attention and last-position logits give the same results as the plain forward."""

from __future__ import annotations

import pytest
import torch

from molmo.model.config import tiny_olmo, tiny_qwen2
from molmo.model.generation import generate
from molmo.model.kv_cache import KVCache


def test_split_embedding_lookup_equals_concatenated_table(random_model):
    model = random_model(tiny_qwen2())
    emb = model.llm.embed
    ids = torch.tensor([[0, 5, 511, 512, 513, 639, -1]])
    table = torch.cat([emb.embedding, emb.new_embedding])
    assert torch.equal(emb(ids), table[ids.clamp(min=0)])


def test_static_cache_generation_equals_dynamic(random_model):
    model = random_model(tiny_qwen2())
    ids = torch.randint(0, 500, (2, 9), generator=torch.Generator().manual_seed(3))
    ids[1, 6:] = -1
    dynamic = generate(model, {"input_ids": ids}, max_new_tokens=7)
    static = generate(model, {"input_ids": ids}, max_new_tokens=7, static_cache=True)
    assert torch.equal(dynamic.sequences, static.sequences)


def test_growing_cache_and_logits_to_keep_match_full_forward(random_model):
    for cfg in (tiny_qwen2(), tiny_olmo()):  # GQA and MHA
        model = random_model(cfg)
        ids = torch.randint(0, 300, (1, 12), generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            full = model(ids).logits
            out = model(ids[:, :8], use_cache=True)  # no cache given: one of 8 slots, grown on demand
            cache = out.past_key_values
            assert isinstance(cache, KVCache) and cache.capacity == 8
            for i in range(8, 12):
                step = model(ids[:, i:i + 1], past_key_values=cache, use_cache=True, logits_to_keep=1)
                torch.testing.assert_close(step.logits[:, 0], full[:, i], atol=1e-5, rtol=1e-5)
            assert cache.length == 12 and cache.capacity == 16
            last = model(ids, logits_to_keep=torch.tensor([5])).logits
            torch.testing.assert_close(last[:, 0], full[:, 5])


def test_static_cache_refuses_overflow():
    cfg = tiny_qwen2()
    cache = KVCache.allocate(cfg.llm, 1, 4, torch.float32, static=True)
    k = torch.zeros(1, cfg.llm.kv_heads, 5, cfg.llm.head_dim)
    with pytest.raises(ValueError, match="cannot take 5"):
        cache.update(0, k, k)
