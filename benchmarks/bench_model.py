"""Model throughput: prefill and decode tokens/s for the tiny fixture-shaped models on CPU (fp32, bf16), or
a Molmo-7B-D-sized random model on a GPU (bf16: decode tokens/s at batch 1 and 8, prefill time at 12 and 36
crops, peak memory). Prints a table.

    python benchmarks/bench_model.py                       # CPU, tiny models
    python benchmarks/bench_model.py --preset molmo-7b-d --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch

from molmo.model.config import preset
from molmo.model.generation import generate
from molmo.model.molmo import MolmoModel


def random_batch(cfg, batch: int, n_crops: int, n_text: int, device):
    v = cfg.vision
    th, tw = -(-v.grid[0] // 2), -(-v.grid[1] // 2)
    tokens = th * tw
    images = torch.randn(batch, n_crops, v.num_patches, v.patch_dim, device=device)
    idx = torch.arange(1, 1 + n_crops * tokens, device=device).view(1, n_crops, tokens).expand(batch, -1, -1)
    ids = torch.randint(0, cfg.llm.vocab_size, (batch, 1 + n_crops * tokens + n_text), device=device)
    return {"input_ids": ids, "images": images, "image_masks": torch.ones(batch, n_crops, v.num_patches,
                                                                               device=device),
            "image_input_idx": idx.contiguous()}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(model, cfg, device, dtype, batch, n_crops, new_tokens=32, repeats=3):
    data = random_batch(cfg, batch, n_crops, 16, device)
    data["images"] = data["images"].to(dtype)
    with torch.no_grad():
        model(**data)  # warm-up
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            model(**data)
        sync(device)
        prefill = (time.perf_counter() - start) / repeats
        start = time.perf_counter()
        out = generate(model, data, max_new_tokens=new_tokens)
        sync(device)
        total = time.perf_counter() - start
    decode_tps = batch * (out.sequences.shape[1] - 1) / max(total - prefill, 1e-9)
    return data["input_ids"].shape[1], prefill, batch * data["input_ids"].shape[1] / prefill, decode_tps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", nargs="*", default=["tiny-qwen2", "tiny-olmo"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    big = device.type == "cuda"
    dtypes = [torch.bfloat16] if big else [torch.float32, torch.bfloat16]
    settings = [(1, 13), (8, 13), (1, 37)] if big else [(1, 5), (4, 5)]
    print(f"{'model':<12} {'dtype':<9} {'batch':>5} {'crops':>5} {'seq':>6} {'prefill s':>10} "
          f"{'prefill tok/s':>14} {'decode tok/s':>13} {'peak GiB':>9}")
    for name in args.preset:
        cfg = preset(name)
        for dtype in dtypes:
            torch.manual_seed(0)
            with torch.device(device):
                model = MolmoModel(cfg).to(dtype).eval()
            model.llm.rotary.reset_buffers()
            for batch, crops in settings:
                if big:
                    torch.cuda.reset_peak_memory_stats()
                seq, prefill, ptps, dtps = measure(model, cfg, device, dtype, batch, crops)
                peak = torch.cuda.max_memory_allocated() / 2**30 if big else float("nan")
                print(f"{name:<12} {str(dtype)[6:]:<9} {batch:>5} {crops:>5} {seq:>6} {prefill:>10.4f} "
                      f"{ptps:>14.0f} {dtps:>13.1f} {peak:>9.2f}")
            del model


if __name__ == "__main__":
    main()
