"""Peak RSS growth while loading a checkpoint, measured in a fresh process: VmHWM after the load minus VmRSS
after importing torch and molmo (the import baseline), from /proc/self/status (Linux).

    python benchmarks/scale/load_rss.py CKPT_DIR bfloat16 [int8]   # prints one JSON line
"""

from __future__ import annotations

import json
import sys
import time


def _status_kb(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def main() -> None:
    import torch

    from molmo.checkpoint.io import load_molmo

    path, dtype = sys.argv[1], getattr(torch, sys.argv[2])
    quantize = sys.argv[3] if len(sys.argv) > 3 else None
    baseline = _status_kb("VmRSS")
    start = time.perf_counter()
    model, _ = load_molmo(path, dtype=dtype, **({"quantize": quantize} if quantize else {}))
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    print(json.dumps({"load_s": seconds, "peak_growth_bytes": (peak - baseline) * 1024,
                      "rss_after_bytes": (_status_kb("VmRSS") - baseline) * 1024}))


if __name__ == "__main__":
    main()
