"""Training throughput of the real trainer on the tiny presets: tokens/s, examples/s and step time for
1 process and N processes (torchrun, gloo, FSDP2) with the same global batch, and fp32 vs bf16 autocast.
Each configuration is a short `molmo.train` run started from the embedded model (so no tokenizer is trained);
the first `--warmup` steps are skipped and the median of the rest is reported. Prints one table.

    python benchmarks/bench_train.py [--preset tiny-sft] [--steps 6] [--procs 1,2] [--precisions fp32,bf16] [--compile]

FlexAttention vs the dense mask is a GPU comparison (`--attention=flex` needs CUDA); on a GPU machine add
`--extra=--attention=flex` to a run and compare with the default sdpa.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from molmo.api import DEFAULT_MODEL_DIR


def run(preset: str, procs: int, precision: str, steps: int, extra: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        args = [f"--init={DEFAULT_MODEL_DIR}", f"--steps={steps}", f"--out_dir={out}", f"--precision={precision}",
                "--save_every=100000", "--eval_every=0", "--export=false", *extra]
        if procs == 1:
            cmd = [sys.executable, "-m", "molmo.train", preset, *args]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
                   "-m", "molmo.train", preset, *args]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // procs))}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny-sft")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--procs", default="1,2")
    parser.add_argument("--precisions", default="fp32", help="e.g. fp32,bf16 (bf16 is slow on CPUs without AMX)")
    parser.add_argument("--compile", action="store_true", help="also run each precision on 1 process with torch.compile")
    parser.add_argument("--extra", action="append", default=[], help="more trainer overrides, e.g. --extra=--global_batch=32")
    args = parser.parse_args()
    results = []
    for precision in args.precisions.split(","):
        variants = [(int(p), False) for p in args.procs.split(",")] + ([(1, True)] if args.compile else [])
        for procs, compiled in variants:
            if precision != "fp32" and procs != 1:
                continue  # the precision comparison is made on one process
            extra = [*args.extra, "--compile=true"] if compiled else args.extra
            rows = [r for r in run(args.preset, procs, precision, args.steps, extra) if "tokens_per_s" in r]
            timed = rows[args.warmup:] or rows
            tok = statistics.median(r["tokens_per_s"] for r in timed)
            step = statistics.median(r["step_time"] for r in timed)
            results.append((procs, precision, compiled, tok, step))
            print(f"done: {procs} proc {precision}{' compiled' if compiled else ''}: {tok:.0f} tok/s", file=sys.stderr)
    base = next((r[3] for r in results if r[0] == 1 and r[1] == "fp32" and not r[2]), results[0][3])
    print(f"preset {args.preset}, {args.steps} steps (median after {args.warmup} warm-up), {os.cpu_count()} CPUs")
    print(f"{'processes':>9} | {'precision':>9} | {'compile':>7} | {'tokens/s':>9} | {'step s':>7} | vs 1 proc fp32 eager")
    for procs, precision, compiled, tok, step in results:
        print(f"{procs:>9} | {precision:>9} | {str(compiled).lower():>7} | {tok:>9.0f} | {step:>7.2f} | {tok / base:.2f}x")

if __name__ == "__main__":
    main()
