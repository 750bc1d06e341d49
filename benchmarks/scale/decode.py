"""One decode measurement in a fresh process (so each starts from the same memory and thread state):
ours (`molmo.model.generation.generate`, optionally int8 / torch.compile) or transformers'
`Qwen2ForCausalLM.generate` on the same decoder weights; text-only prompt, greedy, EOS disabled.

    python benchmarks/scale/decode.py ours CKPT --dtype float32 --batch 1 [--int8] [--compile]
    python benchmarks/scale/decode.py hf CKPT --dtype float32 --batch 1
    python benchmarks/scale/decode.py prefill-rss CKPT --prompt 1200 [--all-logits]

Prints one JSON line: prefill tokens/s, decode tokens/s, the first row's greedy tokens (and RSS figures).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def prompt_ids(batch: int, length: int, vocab: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    row = torch.randint(100, vocab - 100, (1, length), generator=g)
    return row.expand(batch, -1).contiguous()


def hf_qwen2(model, dtype: torch.dtype):
    """transformers' Qwen2ForCausalLM holding our decoder's weights (fused qkv and [up | gate] split)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    c = model.config.llm
    cfg = Qwen2Config(vocab_size=c.embedding_size, hidden_size=c.d_model, intermediate_size=c.ffn_hidden,
                      num_hidden_layers=c.layers, num_attention_heads=c.heads, num_key_value_heads=c.kv_heads,
                      max_position_embeddings=c.max_position_embeddings, rope_theta=c.rope_theta,
                      rms_norm_eps=c.norm_eps, tie_word_embeddings=False, use_sliding_window=False)
    cfg._attn_implementation = "sdpa"
    with torch.device("meta"):
        hf = Qwen2ForCausalLM(cfg)
    q, kv = c.heads * c.head_dim, c.kv_heads * c.head_dim
    state = {"model.embed_tokens.weight": model.llm.embed.embedding, "model.norm.weight": model.llm.ln_f.weight,
             "lm_head.weight": model.llm.lm_head.weight}
    for i, block in enumerate(model.llm.blocks):
        p = f"model.layers.{i}."
        w, b = block.attn.att_proj.weight, block.attn.att_proj.bias
        for name, (lo, hi) in (("q_proj", (0, q)), ("k_proj", (q, q + kv)), ("v_proj", (q + kv, q + 2 * kv))):
            state[p + f"self_attn.{name}.weight"], state[p + f"self_attn.{name}.bias"] = w[lo:hi], b[lo:hi]
        state[p + "self_attn.o_proj.weight"] = block.attn.attn_out.weight
        up, gate = block.mlp.ff_proj.weight.chunk(2, dim=0)
        state[p + "mlp.up_proj.weight"], state[p + "mlp.gate_proj.weight"] = up, gate
        state[p + "mlp.down_proj.weight"] = block.mlp.ff_out.weight
        state[p + "input_layernorm.weight"] = block.attn_norm.weight
        state[p + "post_attention_layernorm.weight"] = block.ff_norm.weight
    hf.load_state_dict({k: v.detach().to(dtype).contiguous() for k, v in state.items()}, strict=False, assign=True)
    hf.model.rotary_emb.inv_freq = model.llm.rotary.inv_freq.clone()  # a non-persistent buffer, fp32
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    return hf.eval()


def _status_kb(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("impl", choices=["ours", "hf", "prefill-rss"])
    parser.add_argument("checkpoint")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--all-logits", action="store_true", help="prefill-rss: logits at every position")
    args = parser.parse_args()

    from molmo.checkpoint.io import load_molmo
    from molmo.model.generation import compile_decoder, generate

    dtype = getattr(torch, args.dtype)
    model, cfg = load_molmo(args.checkpoint, dtype=dtype, quantize="int8" if args.int8 else None)
    ids = prompt_ids(args.batch, args.prompt, cfg.llm.vocab_size)
    if args.impl == "prefill-rss":
        base = _status_kb("VmRSS")
        start = time.perf_counter()
        logits = model(ids, logits_to_keep=0 if args.all_logits else 1).logits
        print(json.dumps({"prompt": args.prompt, "all_logits": args.all_logits, "seconds": time.perf_counter() - start,
                          "logits_bytes": logits.numel() * logits.element_size(),
                          "peak_growth_bytes": (_status_kb("VmHWM") - base) * 1024}))
        return
    if args.impl == "hf":
        hf = hf_qwen2(model, dtype)
        del model

        def prefill():
            return hf(ids, logits_to_keep=1).logits

        def run():
            out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new,
                              min_new_tokens=args.new, do_sample=False)
            return out[:, ids.shape[1]:]
    else:
        if args.compile:
            compile_decoder(model)

        def prefill():
            return model(ids, logits_to_keep=1).logits

        def run():
            return generate(model, {"input_ids": ids}, max_new_tokens=args.new).sequences

    prefill()  # warm-up (kernel selection; compilation when compiled)
    if args.compile:
        run()
    start = time.perf_counter()
    prefill()
    prefill_s = time.perf_counter() - start
    start = time.perf_counter()
    tokens = run()
    total = time.perf_counter() - start
    decode_s = max(total - prefill_s, 1e-9)
    print(json.dumps({"impl": args.impl, "batch": args.batch, "dtype": args.dtype, "int8": args.int8,
                      "compile": args.compile, "threads": torch.get_num_threads(),
                      "prefill_tokens_per_s": args.batch * args.prompt / prefill_s,
                      "decode_tokens_per_s": args.batch * (tokens.shape[1] - 1) / decode_s,
                      "tokens": tokens[0].tolist()}))


if __name__ == "__main__":
    main()
