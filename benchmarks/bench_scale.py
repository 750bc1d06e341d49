"""Performance at a released size, on a 0.5B-class random Molmo in the released layout (benchmarks/scale/
checkpoint.py), all ratios measured in this one run:

- loading: time and peak RSS growth over the import baseline (fresh process), bf16 and int8;
- decode: prefill and decode tokens/s at batch 1 and 8 against transformers' `Qwen2ForCausalLM.generate` on
  the same decoder weights (text-only prompt, greedy, same dtype and threads), with int8 and torch.compile;
- prefill memory at 1,200 tokens: the LM head on the last position only against logits at every position;
- pre-processing images/s at max_crops 12 and 36 on JPEGs of 224..2,000 px at 1 thread and the default,
  with each step's share, against the pre-processing of commit 7ce94db unpacked next to this tree;
- the server's requests/s gain at 32 clients (benchmarks/bench_serve.py `run_rps_comparison`).

    python benchmarks/bench_scale.py --quick --json     # ~10 minutes on 2 cores; the last line is one JSON object

Model runs use --threads (default 1: on a 2-core machine shared with other work one thread per process is the
stable setting; both implementations get the same). Each measurement runs in its own process.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SRC = REPO / "src"
PREVIOUS = "7ce94db"  # the pre-processing before issue 24
sys.path.insert(0, str(HERE))


def run_json(args: list[str], pythonpath: Path, threads: int | None = None, timeout: int = 900) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_images(path: Path, seed: int = 0) -> Path:
    """JPEGs of 224..2,000 px with smooth random content."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    blobs = {}
    for i, (h, w) in enumerate([(224, 224), (480, 640), (1000, 750), (1080, 1920), (2000, 1500)]):
        small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(small).resize((w, h), Image.BICUBIC).save(buf, "JPEG", quality=90)
        blobs[f"img{i}"] = np.frombuffer(buf.getvalue(), np.uint8)
    np.savez(path, **blobs)
    return path


def previous_tree(tmp: Path) -> Path:
    """`git archive` of the previous commit's src/ into tmp (nothing is checked out in the repository)."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS, "src"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "src"


def bench_load(ckpt: Path, weight_bytes: int) -> dict:
    bf16 = run_json([str(HERE / "scale" / "load_rss.py"), str(ckpt), "bfloat16"], SRC)
    int8 = run_json([str(HERE / "scale" / "load_rss.py"), str(ckpt), "float32", "int8"], SRC)
    return {"bf16_weight_bytes": weight_bytes, "load_s_bf16": bf16["load_s"],
            "load_peak_rss_over_bf16_bytes": bf16["peak_growth_bytes"] / weight_bytes,
            "load_s_int8": int8["load_s"], "int8_peak_rss_over_bf16_bytes": int8["peak_growth_bytes"] / weight_bytes,
            "int8_rss_after_over_bf16_bytes": int8["rss_after_bytes"] / weight_bytes}


def bench_decode(ckpt: Path, dtype: str, threads: int, quick: bool) -> dict:
    new = 16 if quick else 64
    script = str(HERE / "scale" / "decode.py")
    common = [str(ckpt), "--dtype", dtype, "--new", str(new)]
    runs = {
        "ours_b1": ["ours", *common],
        "hf_b1": ["hf", *common],
        "ours_b8": ["ours", *common, "--batch", "8"],
        "ours_int8_b1": ["ours", *common, "--int8", "--dtype", "float32"],  # int8 layers compute in fp32
        "ours_compile_b1": ["ours", *common, "--compile"],
    }
    if not quick:
        runs["hf_b8"] = ["hf", *common, "--batch", "8"]
    results = {name: run_json([script, *args], SRC, threads) for name, args in runs.items()}
    ours, hf = results["ours_b1"], results["hf_b1"]
    int8 = results["ours_int8_b1"]
    agree = sum(a == b for a, b in zip(int8["tokens"], ours["tokens"]))
    return {
        "decode_runs": {k: {m: v[m] for m in ("prefill_tokens_per_s", "decode_tokens_per_s", "batch", "threads")}
                        for k, v in results.items()},
        "decode_tokens_per_s": ours["decode_tokens_per_s"],
        "decode_tokens_per_s_batch8": results["ours_b8"]["decode_tokens_per_s"],
        "prefill_tokens_per_s": ours["prefill_tokens_per_s"],
        "decode_speedup_vs_transformers": ours["decode_tokens_per_s"] / hf["decode_tokens_per_s"],
        "prefill_speedup_vs_transformers": ours["prefill_tokens_per_s"] / hf["prefill_tokens_per_s"],
        "greedy_same_as_transformers": ours["tokens"] == hf["tokens"],
        "int8_decode_speedup": int8["decode_tokens_per_s"] / ours["decode_tokens_per_s"],
        "int8_decode_speedup_vs_transformers": int8["decode_tokens_per_s"] / hf["decode_tokens_per_s"],
        "int8_greedy_tokens_agreeing": f"{agree}/{len(ours['tokens'])}",
        "compile_decode_speedup": results["ours_compile_b1"]["decode_tokens_per_s"] / ours["decode_tokens_per_s"],
        "decode_dtype": dtype, "decode_threads": threads, "new_tokens": new,
    }


def bench_prefill_memory(ckpt: Path, dtype: str, prompt: int) -> dict:
    script = str(HERE / "scale" / "decode.py")
    last = run_json([script, "prefill-rss", str(ckpt), "--dtype", dtype, "--prompt", str(prompt)], SRC)
    full = run_json([script, "prefill-rss", str(ckpt), "--dtype", dtype, "--prompt", str(prompt), "--all-logits"], SRC)
    return {"prefill_tokens": prompt, "prefill_logits_bytes_last_only": last["logits_bytes"],
            "prefill_logits_bytes_all": full["logits_bytes"],
            "prefill_peak_rss_growth_last_only": last["peak_growth_bytes"],
            "prefill_peak_rss_growth_all_logits": full["peak_growth_bytes"]}


def bench_preprocess(images: Path, previous_src: Path, quick: bool) -> dict:
    script = str(HERE / "scale" / "preprocess_worker.py")
    repeats = "1" if quick else "3"
    out: dict = {"preprocess": {}}
    for crops in (12, 36):
        for threads in (1, 0):
            args = [script, str(images), "--max-crops", str(crops), "--threads", str(threads), "--repeats", repeats]
            new = run_json(args + (["--steps"] if threads == 1 else []), SRC)
            old = run_json(args, previous_src)
            key = f"max_crops_{crops}_threads_{'default' if threads == 0 else 1}"
            out["preprocess"][key] = {"images_per_s": new["images_per_s"], "previous_images_per_s": old["images_per_s"],
                                      "speedup": new["images_per_s"] / old["images_per_s"],
                                      "threads": new["threads"], **({"step_shares": new["step_shares"]}
                                                                    if "step_shares" in new else {})}
    default12 = out["preprocess"]["max_crops_12_threads_default"]
    out["preprocess_images_per_s"] = default12["images_per_s"]
    out["preprocess_speedup_vs_previous"] = default12["speedup"]
    one12 = out["preprocess"]["max_crops_12_threads_1"]
    out["preprocess_default_threads_over_one_thread"] = default12["images_per_s"] / one12["images_per_s"]
    return out


def bench_server() -> dict:
    try:
        from bench_serve import run_rps_comparison
    except ImportError as e:  # the serving benchmark is another module's; report its absence, not a number
        return {"server_rps_gain_32_clients": None, "server_note": f"bench_serve unavailable: {e}"}
    result = run_rps_comparison(clients=(1, 8, 32), quick=True)
    return {"server_rps_gain_32_clients": result.get("server_rps_gain_32_clients"),
            "server": {k: v for k, v in result.items() if not isinstance(v, (list, dict))}}


def print_table(r: dict) -> None:
    rows = [
        ("load bf16: peak RSS growth / bf16 weight bytes", f"{r['load_peak_rss_over_bf16_bytes']:.2f}x"),
        ("load bf16: seconds", f"{r['load_s_bf16']:.1f}"),
        ("load int8: peak RSS / bf16 bytes, after", f"{r['int8_peak_rss_over_bf16_bytes']:.2f}x, "
                                                    f"{r['int8_rss_after_over_bf16_bytes']:.2f}x"),
    ]
    for name, run in r["decode_runs"].items():
        rows.append((f"{name}: prefill / decode tokens/s", f"{run['prefill_tokens_per_s']:.1f} / "
                                                           f"{run['decode_tokens_per_s']:.2f}"))
    rows += [
        ("decode speedup vs transformers (batch 1)", f"{r['decode_speedup_vs_transformers']:.2f}x"),
        ("greedy tokens same as transformers", str(r["greedy_same_as_transformers"])),
        ("int8 decode speedup (vs ours fp32 / vs transformers)", f"{r['int8_decode_speedup']:.2f}x / "
                                                                 f"{r['int8_decode_speedup_vs_transformers']:.2f}x"),
        ("int8 greedy tokens agreeing with fp32", r["int8_greedy_tokens_agreeing"]),
        ("torch.compile decode speedup", f"{r['compile_decode_speedup']:.2f}x"),
        (f"prefill {r['prefill_tokens']} tokens: logits bytes last-only / all",
         f"{r['prefill_logits_bytes_last_only'] / 1e6:.1f} MB / {r['prefill_logits_bytes_all'] / 1e6:.0f} MB"),
        ("  peak RSS growth last-only / all logits", f"{r['prefill_peak_rss_growth_last_only'] / 1e9:.2f} GB / "
                                                    f"{r['prefill_peak_rss_growth_all_logits'] / 1e9:.2f} GB"),
    ]
    for key, p in r["preprocess"].items():
        figures = f"{p['images_per_s']:.1f} ({p['previous_images_per_s']:.1f}) = {p['speedup']:.1f}x"
        rows.append((f"preprocess {key}: img/s (previous)", figures))
        for step, share in p.get("step_shares", {}).items():
            rows.append((f"  share: {step}", f"{100 * share:.0f}%"))
    rows.append(("server requests/s gain at 32 clients", str(r.get("server_rps_gain_32_clients"))))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer tokens and repeats (~10 min on 2 cores)")
    parser.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    parser.add_argument("--threads", type=int, default=1, help="threads for the model runs (same for both)")
    parser.add_argument("--dtype", default="float32",
                        help="model runs: float32 (default: greedy tokens comparable across implementations), "
                             "bfloat16 or auto (molmo.precision)")
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(SRC))
    import torch

    from molmo.precision import resolve_dtype
    from scale.checkpoint import write_released_checkpoint

    dtype = str(resolve_dtype(args.dtype, "cpu")).removeprefix("torch.")
    result: dict = {"torch": torch.__version__, "cpu_count": os.cpu_count()}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        tmp = Path(tmp)
        ckpt, weight_bytes = write_released_checkpoint(tmp / "molmo-0.5b-class")
        result.update(bench_load(ckpt, weight_bytes))
        result.update(bench_decode(ckpt, dtype, args.threads, args.quick))
        result.update(bench_prefill_memory(ckpt, dtype, 1200))
        result.update(bench_preprocess(test_images(tmp / "images.npz"), previous_tree(tmp / "previous"), args.quick))
    result.update({"server_rps_gain_32_clients": None, "server_note": "skipped (--skip-server)"}
                  if args.skip_server else bench_server())
    result["bench_seconds"] = time.perf_counter() - start
    print_table(result)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
