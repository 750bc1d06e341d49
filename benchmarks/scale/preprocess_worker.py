"""Pre-processing throughput of whichever `molmo` package is first on PYTHONPATH (bench_scale runs it once
for this tree and once for an older commit unpacked next to it, on the same images, in the same run).

    PYTHONPATH=SRC python benchmarks/scale/preprocess_worker.py IMAGES.npz --max-crops 12 --threads 1 [--steps]

IMAGES.npz holds JPEG bytes (uint8 arrays). Times processor.encode (older trees: .process) on each decoded
uint8 image, best of --repeats, and prints one JSON line with images/s; --steps adds the share of each step (this tree only).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections import defaultdict

import numpy as np
import torch
from PIL import Image


def _tokenizer():
    try:
        from molmo.text.tokenizer import CharTokenizer
    except ImportError:  # older trees
        from molmo.tokenizer import CharTokenizer
    return CharTokenizer(embedding_size=512, eos_token_id=511)


def _timed(module, name: str, totals: dict[str, float], label: str) -> None:
    inner = getattr(module, name)

    def wrapper(*a, **k):
        start = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            totals[label] += time.perf_counter() - start

    setattr(module, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("images")
    parser.add_argument("--max-crops", type=int, default=12)
    parser.add_argument("--threads", type=int, default=0, help="0 = torch's default")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from molmo.preprocess import MolmoProcessor, PreprocessorConfig

    blobs = [bytes(v) for _, v in sorted(np.load(args.images).items())]
    start = time.perf_counter()
    arrays = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs]
    decode_s = time.perf_counter() - start
    proc = MolmoProcessor(_tokenizer(), PreprocessorConfig.released().replace(max_crops=args.max_crops))
    totals: dict[str, float] = defaultdict(float)
    if args.steps:
        from molmo.preprocess import crops
        for name, label in (("_resized_channels", "resize+normalise"), ("_letterbox", "crop (letter-box canvas)"),
                            ("_patchify_into", "patchify"), ("_patch_fractions", "masks")):
            _timed(crops, name, totals, label)
    run = getattr(proc, "encode", None) or proc.process  # renamed to `encode` after that commit
    run(arrays[0], prompt="Describe this image.")  # warm-up
    totals.clear()
    best, mean_pass = [], 0.0
    for image in arrays:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run(image, prompt="Describe this image.")
            times.append(time.perf_counter() - start)
        best.append(min(times))
        mean_pass += sum(times) / args.repeats
    total = sum(best)
    out = {"max_crops": args.max_crops, "threads": torch.get_num_threads(), "images": len(arrays),
           "images_per_s": len(arrays) / total, "decode_s_per_image": decode_s / len(arrays)}
    if args.steps:
        whole = decode_s + mean_pass  # one decode + one pre-processing pass over the images
        shares = {"decode": decode_s / whole, **{k: v / args.repeats / whole for k, v in totals.items()}}
        shares["other (tiling, token layout, text)"] = max(0.0, 1 - sum(shares.values()))
        out["step_shares"] = shares
    print(json.dumps(out))


if __name__ == "__main__":
    main()
