"""PixMo reader memory at growing table sizes: peak RSS growth and the process-private (anonymous) memory left
after opening a PixMo-Cap-shaped parquet table (caption + 3 transcripts per image) and reading 2,000 random
examples, with the memory-mapped reader
(`molmo.data.pixmo.read_cap`, the one training uses) against loading the whole table into Python rows
(`pyarrow.parquet.read_table(...).to_pylist()`, what the readers did before). Each measurement runs in a fresh
process; the table's one-time conversion to the Arrow cache is done before measuring. Prints one table.

    python benchmarks/bench_tables.py [--rows 25000 100000] [--out /tmp/bench_tables]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, time
import numpy as np
path, mode = sys.argv[1], sys.argv[2]
import pyarrow.parquet as pq
from molmo.data.pixmo import read_cap
def private_kb():  # anonymous (process-private) resident memory; mapped table pages are shared page cache
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("RssAnon")))
base, base_private = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, private_kb()
t0 = time.perf_counter()
if mode == "mmap":
    examples = read_cap(path, transcripts=True)
    n = len(examples)
    picked = [examples[int(i)] for i in np.random.default_rng(0).integers(0, n, 2000)]
else:
    rows = pq.read_table(path).to_pylist()
    n = len(rows)
    picked = [rows[int(i)] for i in np.random.default_rng(0).integers(0, n, 2000)]
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "rss_growth_mb": (peak - base) / 1024, "private_mb": (private_kb() - base_private) / 1024,
                  "seconds": dt}))
"""


def write_table(path: Path, n: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    words = "a red bus parked beside a small bakery with striped awnings under a grey sky".split()
    text = (" ".join(words) + " ") * 6  # ~470 characters
    writer = None
    for start in range(0, n, 10000):
        rows = [{"image_url": f"https://example.com/img/{i}.jpg", "caption": f"{i} {text}",
                 "transcripts": [f"{i}.{k} {text[:240]}" for k in range(3)]} for i in range(start, min(n, start + 10000))]
        table = pa.Table.from_pylist(rows)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def measure(path: Path, mode: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[25000, 100000])
    parser.add_argument("--out", default=None, help="folder for the tables and the Arrow cache (default: a temp dir)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="bench_tables_"))
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MOLMO_TABLE_CACHE": str(root / "cache"), "OMP_NUM_THREADS": "1"}
    print(f"{'rows':>8} {'parquet MB':>10} | {'mmap: peak RSS':>14} {'private':>8} {'s':>6} | "
          f"{'lists: peak RSS':>15} {'private':>8} {'s':>6}   (MB over the import baseline)")
    for n in args.rows:
        path = root / f"cap_{n}.parquet"
        if not path.exists():
            write_table(path, n)
        measure(path, "mmap", env)  # first open converts to the Arrow cache (one time)
        lazy, eager = measure(path, "mmap", env), measure(path, "lists", env)
        print(f"{n:>8} {path.stat().st_size / 2**20:>10.1f} | {lazy['rss_growth_mb']:>14.1f} {lazy['private_mb']:>8.1f} "
              f"{lazy['seconds']:>6.2f} | {eager['rss_growth_mb']:>15.1f} {eager['private_mb']:>8.1f} {eager['seconds']:>6.2f}")


if __name__ == "__main__":
    main()
