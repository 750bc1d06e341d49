"""Pre-processing throughput: images/s per image size and crop budget (load excluded, crops + layout +
token ids included). Prints a table.

    python benchmarks/bench_preprocess.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from molmo.preprocess import MolmoProcessor, PreprocessorConfig
from molmo.text.tokenizer import CharTokenizer

SIZES = [(224, 224), (480, 640), (1080, 1920), (3000, 4000)]
BUDGETS = [6, 12, 36]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per cell")
    args = parser.parse_args()
    tok = CharTokenizer(embedding_size=512, eos_token_id=511)
    rng = np.random.default_rng(0)
    print(f"{'image (HxW)':>12} | " + " | ".join(f"max_crops={b:<3} img/s (crops)" for b in BUDGETS))
    for h, w in SIZES:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        cells = []
        for budget in BUDGETS:
            proc = MolmoProcessor(tok, PreprocessorConfig.released().replace(max_crops=budget))
            n, start = 0, time.perf_counter()
            while True:
                ex = proc.encode(image, prompt="Describe this image.")
                n += 1
                if time.perf_counter() - start > args.seconds:
                    break
            cells.append(f"{n / (time.perf_counter() - start):>10.2f} ({ex['images'].shape[0]:>2})")
        print(f"{h:>5}x{w:<6} | " + " | ".join(f"{c:<26}" for c in cells))


if __name__ == "__main__":
    main()
