"""Serving throughput: requests/s and p50/p99 latency of the HTTP server under 1, 8 and 32 concurrent clients,
one request at a time vs static batching (a batch waits for its longest answer) vs continuous batching (rows
join and leave at every decode step); and the Python API (`ask` in a loop vs one `ask_many`).

    python benchmarks/bench_serve.py --quick                  # embedded model, CPU, ~2 minutes
    python benchmarks/bench_serve.py --model PATH --clients 1 8 32 --seconds 20
    python benchmarks/bench_serve.py --random molmo-7b-d --dtype bfloat16 --device cuda   # a lent GPU

`run_rps_comparison(clients=(1, 8, 32), quick=True)` returns the figures as a dict, among them
`server_rps_gain_32_clients` (continuous batching over one at a time at 32 clients) and
`p99_continuous_over_static_32_clients`; benchmarks/bench_scale.py reports them. `--random PRESET` builds a
randomly initialised model of that preset (with a small BPE tokenizer), so sizes can be measured without weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import run_load_test  # noqa: E402

from molmo.api import Molmo  # noqa: E402
from molmo.precision import DTYPES  # noqa: E402
from molmo.serve.commands import SAMPLES_DIR  # noqa: E402
from molmo.serve.server import BackgroundServer, ServerSettings, create_app  # noqa: E402

# name -> (scheduler, max batch size or None for "as many as there are clients")
MODES = {"one at a time": ("continuous", 1), "static": ("static", None), "continuous": ("continuous", None)}


def random_molmo(preset_name: str, dtype: str, device: str) -> Molmo:
    from molmo.model.config import preset
    from molmo.model.molmo import MolmoModel
    from molmo.preprocess.config import PreprocessorConfig
    from molmo.text.tokenizer import train_bpe_tokenizer

    texts = ["Point to the red circle.", "How many gray hexagons are there?", "Counting the points shows 3."] * 30
    tok = train_bpe_tokenizer(texts, vocab_size=400)
    ids = tok.image_token_ids
    special = {"<im_start>": ids.start, "<im_end>": ids.end, "<im_patch>": ids.patch, "<im_col>": ids.col,
               "<|image|>": ids.image}
    config = preset(preset_name).replace(special_token_ids=special, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = MolmoModel(config).to(DTYPES[dtype])
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    grid = config.vision.image_size[0] // config.vision.patch_size
    pre = PreprocessorConfig.released().replace(base_image_input_size=tuple(config.vision.image_size),
                                                patch_size=config.vision.patch_size,
                                                overlap_margins=(min(4, grid // 4),) * 2)
    return Molmo(model.eval(), tok, pre, name=f"random-{preset_name}")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_api(model: Molmo, n: int, max_tokens: int, device: str) -> list[tuple[str, float, float]]:
    image = SAMPLES_DIR / "shapes.png"
    questions = [f"Point to the shapes number {i}." for i in range(n)]
    rows = []
    model.ask(image, questions[0], max_new_tokens=2)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    tokens = sum(model.ask(image, q, max_new_tokens=max_tokens).usage.completion_tokens for q in questions)
    sync(device)
    dt = time.perf_counter() - t0
    rows.append((f"API ask x{n} (one at a time)", n / dt, tokens / dt))
    t0 = time.perf_counter()
    answers = model.ask_many([image] * n, questions, max_new_tokens=max_tokens)
    sync(device)
    dt = time.perf_counter() - t0
    rows.append((f"API ask_many (batch of {n})", n / dt, sum(a.usage.completion_tokens for a in answers) / dt))
    return rows


def bench_server(model: Molmo, mode: str, clients: int, seconds: float, max_tokens: int) -> dict:
    scheduler, batch = MODES[mode]
    batch = batch or max(1, clients)
    settings = ServerSettings(scheduler=scheduler, max_batch_size=batch, max_queue=max(64, 2 * clients),
                              max_tokens=max_tokens, batch_window_s=0.01)
    with BackgroundServer(create_app(model, settings)) as server:
        run_load_test(server.url, clients=1, seconds=0.5, max_tokens=2)  # warm-up
        r = run_load_test(server.url, clients=clients, seconds=seconds, max_tokens=max_tokens)
        r["largest_batch"] = httpx.get(server.url + "/health").json()["largest_batch"]
    return r


def run_rps_comparison(clients=(1, 8, 32), quick: bool = True, model: Molmo | None = None,
                       seconds: float | None = None, max_tokens: int = 32) -> dict:
    """Requests/s and latency per (mode, clients) on the embedded model unless `model` is given."""
    model = model or Molmo.from_pretrained()
    seconds = seconds or (6.0 if quick else 20.0)
    rows = []
    for n in clients:
        for mode in MODES:
            r = bench_server(model, mode, n, seconds, max_tokens)
            rows.append({"mode": mode, "clients": n, "requests_per_s": r["requests_per_s"], "p50_s": r["p50_s"],
                         "p99_s": r["p99_s"], "tokens_per_s": r["tokens_per_s"], "failures": r["failures"],
                         "largest_batch": r["largest_batch"]})
            print(f"  {mode:>14}, {n:3d} clients: {r['requests_per_s']:6.2f} requests/s, p50 {r['p50_s']:.2f} s, "
                  f"p99 {r['p99_s']:.2f} s, largest batch {r['largest_batch']}", flush=True)
    out: dict = {"model": model.name, "seconds_per_run": seconds, "max_tokens": max_tokens, "rows": rows}
    top = max(clients)
    get = {(r["mode"], r["clients"]): r for r in rows}
    one, static, cont = get[("one at a time", top)], get[("static", top)], get[("continuous", top)]
    out[f"server_rps_gain_{top}_clients"] = cont["requests_per_s"] / one["requests_per_s"]
    out[f"static_rps_gain_{top}_clients"] = static["requests_per_s"] / one["requests_per_s"]
    out[f"p99_continuous_over_static_{top}_clients"] = cont["p99_s"] / static["p99_s"]
    return out


def print_table(result: dict) -> None:
    print("| mode           | clients | requests/s | p50 s | p99 s | tokens/s | largest batch | errors |")
    print("|----------------|--------:|-----------:|------:|------:|---------:|--------------:|-------:|")
    for r in result["rows"]:
        print(f"| {r['mode']:<14} | {r['clients']:7d} | {r['requests_per_s']:10.2f} | {r['p50_s']:5.2f} | "
              f"{r['p99_s']:5.2f} | {r['tokens_per_s']:8.1f} | {r['largest_batch']:13d} | {r['failures']:6d} |")
    for key, value in result.items():
        if key.endswith("_clients"):
            print(f"{key}: {value:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--random", default=None, help="benchmark a random model of this preset instead")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--quick", action="store_true", help="6 s per run (default 20 s)")
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--api", action="store_true", help="also time ask in a loop vs ask_many")
    p.add_argument("--json", action="store_true", help="end with the figures as one JSON object")
    args = p.parse_args(argv)
    model = random_molmo(args.random, args.dtype, args.device) if args.random else \
        Molmo.from_pretrained(args.model, dtype=args.dtype, device=args.device)
    print(f"model {model.name}, {args.dtype} on {args.device}, {args.max_tokens} max new tokens, "
          f"torch threads {torch.get_num_threads()}", flush=True)
    if args.api:
        for name, rps, tps in bench_api(model, 8, args.max_tokens, args.device):
            print(f"{name}: {rps:.2f} requests/s, {tps:.1f} tokens/s")
    result = run_rps_comparison(tuple(args.clients), quick=args.quick, model=model, seconds=args.seconds,
                                max_tokens=args.max_tokens)
    print_table(result)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
