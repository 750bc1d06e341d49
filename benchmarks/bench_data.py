"""Data-engine throughput: images/s of each synthetic generator (one process, and `generate_dataset` with
worker processes), then examples/s of each step of the training pipeline on generated examples — the Molmo
formatter, the pre-processor (crops + tokens + masks) at two crop budgets, the collator — and of the whole
`tiny-sft` data path (generate → format → pre-process → collate). Prints one table.

    python benchmarks/bench_data.py [--n 24] [--workers 2] [--tokenizer src/molmo/assets/tiny-molmo]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from molmo.api import DEFAULT_MODEL_DIR
from molmo.data.formatter import Formatter
from molmo.data.generators import generate_dataset, generate_one
from molmo.preprocess import MolmoProcessor, PreprocessorConfig
from molmo.text.tokenizer import MolmoTokenizer
from molmo.train.batches import Collator, GeneratorSource
from molmo.train.tiny_presets import TINY_PREPROCESSOR

GENERATORS = [("points", {}), ("clocks", {}), ("docs", {"doc_kind": "bar"}), ("docs", {"doc_kind": "table"}),
              ("docs", {"doc_kind": "any"}), ("captions", {"source": "points"})]


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=24, help="items per measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args()
    rows = []
    for kind, opts in GENERATORS:
        name = kind + (f" ({next(iter(opts.values()))})" if opts else "")
        single = rate(lambda i: generate_one(kind, 0, i, **opts), args.n)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            generate_dataset(kind, args.n * 2, tmp, seed=1, workers=args.workers, progress=False, **opts)
            parallel = args.n * 2 / (time.perf_counter() - start)
        rows.append((f"generate {name}", f"{single:.1f} img/s", f"{parallel:.1f} img/s ({args.workers} workers)"))

    tok = MolmoTokenizer.from_dir(args.tokenizer)
    base = PreprocessorConfig.from_json(args.tokenizer / "preprocessor_config.json").replace(**TINY_PREPROCESSOR)
    source = GeneratorSource("points", args.n, seed=3, options={})
    examples = [source[i] for i in range(args.n)]
    fmt = Formatter(stage="sft", seed=0)
    formatted = [fmt.format(ex, index=i) for i, ex in enumerate(examples)]
    rows.append(("format (points scene, all annotations)", f"{rate(lambda i: fmt.format(examples[i], index=i), args.n):.0f} ex/s", ""))
    for budget in (4, 12):
        proc = MolmoProcessor(tok, base.replace(max_crops=budget))
        processed = [proc.encode(examples[i].image, message_lists=formatted[i]) for i in range(args.n)]
        r = rate(lambda i: proc.encode(examples[i].image, message_lists=formatted[i]), args.n)
        crops = sum(p["images"].shape[0] for p in processed) / args.n
        tokens = sum(len(p["input_ids"]) for p in processed) / args.n
        rows.append((f"pre-process max_crops={budget}", f"{r:.1f} ex/s", f"{crops:.1f} crops, {tokens:.0f} tokens/ex"))
    collate = Collator(448)
    rows.append(("collate (batch 8, 448 tokens)", f"{rate(lambda i: collate(processed[:8]), args.n) * 8:.0f} ex/s", ""))

    proc = MolmoProcessor(tok, base.replace(max_crops=4))
    def full(i: int) -> None:
        ex = source[i]
        proc.encode(ex.image, message_lists=fmt.format(ex, index=i))
    rows.append(("generate+format+pre-process (tiny-sft points)", f"{rate(full, args.n):.1f} ex/s", "one process"))

    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}} | {'one process':>14} | notes")
    for name, a, b in rows:
        print(f"{name:<{width}} | {a:>14} | {b}")


if __name__ == "__main__":
    main()
