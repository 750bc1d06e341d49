"""Generation with a KV cache: the image is encoded once in the prefill step, then one token per step.
The cache is preallocated for prompt + max_new_tokens and written in place; the prefill computes logits
only at each row's last real token; `static_cache=True` gives every decode step the same shapes.

Right-padded batches follow the reference semantics: the first new token comes from the logits of each
row's last real token; new tokens are appended after the padding; pads are masked out of attention;
position ids continue from each row's last real position + 1. Greedy (temperature 0) or sampling with
temperature / top-p / top-k; stop tokens and stop strings; per-row finishing; a streaming callback.

    out = generate(model, batch, max_new_tokens=64, eos_token_ids=[tok.eos_token_id])
    out.tokens[0]  # list of new ids of row 0 (without the stop token)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from molmo.model.kv_cache import KVCache
from molmo.model.molmo import MolmoModel, default_position_ids
from molmo.text.context import check_context_length
from molmo.text.stops import first_stop


@dataclass
class GenerationOutput:
    tokens: list[list[int]]  # new tokens per row, stop token / stop string excluded
    finish_reasons: list[str] = field(default_factory=list)  # "stop" | "length"
    sequences: torch.Tensor | None = None  # [B, n_new] all generated ids, EOS-filled after finishing


def _sample(logits: torch.Tensor, temperature: float, top_p: float, top_k: int | None,
            generator: torch.Generator | None) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) > top_p  # keep the smallest prefix with mass >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def compile_decoder(model: MolmoModel) -> MolmoModel:
    """torch.compile the decoder's pure-tensor pieces (norms and feed-forward; dynamic shapes, so prefill and
    decode share graphs). Attention with its cache write stays eager. Opt-in: compilation takes a while
    and the gain depends on the machine (benchmarks/bench_scale.py measures it)."""
    for block in model.llm.blocks:
        for module in (block.attn_norm, block.ff_norm, block.mlp):
            module.compile(dynamic=True)
    model.llm.ln_f.compile(dynamic=True)
    return model


@torch.no_grad()
def generate(
    model: MolmoModel,
    batch: dict[str, torch.Tensor],
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int] = (),
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int | None = None,
    stop_strings: Sequence[str] = (),
    decode: Callable[[list[int]], str] | None = None,
    generator: torch.Generator | None = None,
    on_token: Callable[[int, int], None] | None = None,
    static_cache: bool = False,
    should_stop: Callable[[bool], bool] | None = None,
) -> GenerationOutput:
    """`batch` holds input_ids [B, T] (right-padded with -1) and optionally images / image_masks /
    image_input_idx. `on_token(row, token_id)` is called for every new token before a row finishes.
    static_cache: attend over the whole preallocated cache with unwritten slots masked (fixed shapes for
    compiled / graph-captured steps) instead of over the written prefix.
    should_stop(all_rows_done) -> stop now?, asked once per decode step (default: stop when all rows are done);
    sharded multi-process callers agree through it, so every process runs the same forwards."""
    if stop_strings and decode is None:
        raise ValueError("stop_strings need a `decode` function (token ids -> text)")
    device = next(model.parameters()).device
    input_ids = batch["input_ids"].to(device)
    b, t = input_ids.shape
    mask = input_ids != -1
    if not mask.any(dim=1).all():
        raise ValueError("every row of input_ids needs at least one real (non -1) token")
    lengths = mask.sum(dim=1)
    check_context_length(int(lengths.max()), max_new_tokens, model.config.llm.max_position_embeddings)
    images = {k: batch[k].to(device) for k in ("images", "image_masks", "image_input_idx") if batch.get(k) is not None}
    dtype = model.llm.embed.embedding.dtype
    if "images" in images:
        images["images"] = images["images"].to(dtype)
    capacity = t + max_new_tokens
    cache = KVCache.allocate(model.config.llm, b, capacity, dtype, device, static=static_cache)
    attn = torch.zeros(b, capacity, dtype=torch.bool, device=device)  # written in place, one column a step
    attn[:, :t] = mask
    positions = default_position_ids(mask)
    last = positions.gather(1, (lengths - 1)[:, None])  # [B, 1] last real position
    last_idx = (mask.long().cumsum(1) == lengths[:, None]).long().argmax(dim=1)  # index of last real token
    out = model(input_ids, attention_mask=attn if static_cache else attn[:, :t], position_ids=positions,
                past_key_values=cache, use_cache=True, logits_to_keep=last_idx, **images)
    logits = out.logits[:, -1]

    eos = torch.tensor(list(eos_token_ids), device=device, dtype=torch.long)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    tokens: list[list[int]] = [[] for _ in range(b)]
    reasons = ["length"] * b
    fill = int(eos[0]) if len(eos) else 0
    generated = []
    for step in range(max_new_tokens):
        nxt = _sample(logits, temperature, top_p, top_k, generator)
        nxt = torch.where(done, torch.full_like(nxt, fill), nxt)
        generated.append(nxt)
        step_tokens, eos_ids = nxt.tolist(), set(eos.tolist())
        for row in range(b):
            if done[row]:
                continue
            tok = step_tokens[row]
            if tok in eos_ids:
                done[row], reasons[row] = True, "stop"
                continue
            tokens[row].append(tok)
            if on_token is not None:
                on_token(row, tok)
            if stop_strings:
                cut = first_stop(decode(tokens[row]), stop_strings)
                if cut is not None:
                    done[row], reasons[row] = True, "stop"
                    while tokens[row] and len(decode(tokens[row])) > cut:
                        tokens[row].pop()  # drop the tokens that spell the stop string
        finished = bool(done.all())
        if should_stop is not None:
            finished = should_stop(finished)
        if finished or step == max_new_tokens - 1:
            break
        attn[:, t + step] = True
        last = last + 1
        out = model(nxt[:, None], attention_mask=attn if static_cache else attn[:, :t + step + 1],
                    position_ids=last, past_key_values=cache, use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1]
    return GenerationOutput(tokens=tokens, finish_reasons=reasons, sequences=torch.stack(generated, dim=1))
