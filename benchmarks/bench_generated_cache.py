"""What the generated-image cache saves: milliseconds per image drawn vs read back, for each generator, then the
step time of short real runs with images drawn during training vs `--pregenerate`d beforehand: the vision
stage (`tiny-vision-clocks`, 32 images per step) and the Molmo trainer (`tiny-sft` from the embedded model).
Each run is a `python -m molmo.train` subprocess; the first `--warmup` steps are left out. Prints one table.

    python benchmarks/bench_generated_cache.py [--steps 12] [--warmup 2] [--n 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from molmo.api import DEFAULT_MODEL_DIR
from molmo.data.generators import generate_one
from molmo.data.generators.cache import GeneratedCache

ROOT = Path(__file__).resolve().parents[1]
KINDS = [("points", {}), ("clocks", {}), ("docs", {"doc_kind": "bar"}), ("captions", {"source": "points"})]
VISION_INIT = ROOT / "training" / "tiny-molmo" / "tiny-vision-regions" / "vit.safetensors"


def per_image_ms(fn, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e3


def median_step_s(preset: str, args: list[str], warmup: int) -> float:
    """The median step seconds of a short run, after warm-up."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "molmo.train", preset, f"--out_dir={out}", *args]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    if "step_time" in rows[0]:
        times = [r["step_time"] for r in rows if "step_time" in r]
    else:  # the vision stage logs the elapsed time
        elapsed = [r["elapsed_s"] for r in rows]
        times = [b - a for a, b in zip(elapsed, elapsed[1:])]
    return statistics.median(times[warmup:] or times)


def pregenerate(preset: str, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "molmo.train", preset, *args, "--pregenerate"], check=True,
                   capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--n", type=int, default=20, help="images per per-image measurement")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = GeneratedCache(Path(tmp) / "per-image")
        for kind, opts in KINDS:
            drawn = per_image_ms(lambda i: generate_one(kind, 0, i, **opts), args.n)
            for i in range(args.n):
                cache.get(kind, 0, i, **opts)
            read = per_image_ms(lambda i: cache.get(kind, 0, i, **opts), args.n)
            rows.append((f"{kind} image", f"{drawn:.1f} ms", f"{read:.2f} ms", f"{drawn / read:.0f}x"))

        runs = [("tiny-vision-clocks", [f"--steps={args.steps}", "--log_every=1", "--save_every=100000",
                                        f"--init_vit={VISION_INIT}"], "generated_cache"),
                ("tiny-sft", [f"--steps={args.steps}", f"--init={DEFAULT_MODEL_DIR}", "--save_every=100000",
                              "--eval_every=0", "--export=false"], "data.generated_cache")]
        for preset, run_args, field in runs:
            cached = f"--{field}={Path(tmp) / preset}"
            fresh = median_step_s(preset, [*run_args, f"--{field}="], args.warmup)
            ahead = pregenerate(preset, [*run_args, cached])
            read = median_step_s(preset, [*run_args, cached], args.warmup)
            rows.append((f"{preset} step ({args.steps} steps; pregenerate {ahead:.0f} s)", f"{fresh:.2f} s",
                         f"{read:.2f} s", f"{fresh / read:.2f}x"))
    width = max(len(r[0]) for r in rows)
    print(f"{'':<{width}} | {'drawn':>9} | {'cached':>9} | speed-up")
    for name, a, b, ratio in rows:
        print(f"{name:<{width}} | {a:>9} | {b:>9} | {ratio}")


if __name__ == "__main__":
    main()
