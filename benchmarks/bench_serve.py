"""Serving throughput: requests/s and generated tokens/s of the HTTP server with dynamic batching vs one
request at a time (max_batch_size=1), and of the Python API (`ask` in a loop vs one `ask_many`).

    python benchmarks/bench_serve.py                          # embedded model, CPU
    python benchmarks/bench_serve.py --model PATH --clients 16 --seconds 20
    python benchmarks/bench_serve.py --random molmo-7b-d --dtype bfloat16 --device cuda   # a lent GPU

`--random PRESET` builds a randomly initialised model of that preset (with a small BPE tokenizer), so sizes
can be measured without weights. Prints one table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import run_load_test  # noqa: E402

from molmo.api import DTYPES, Molmo  # noqa: E402
from molmo.serve.commands import SAMPLES_DIR  # noqa: E402
from molmo.serve.server import BackgroundServer, ServerSettings, create_app  # noqa: E402


def random_molmo(preset_name: str, dtype: str, device: str) -> Molmo:
    from molmo.model.config import preset
    from molmo.model.molmo import Molmo as MolmoModel
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


def bench_server(model: Molmo, batch: int, clients: int, seconds: float, max_tokens: int) -> tuple[str, float, float, dict]:
    settings = ServerSettings(max_batch_size=batch, max_queue=max(64, 2 * clients), max_tokens=max_tokens)
    with BackgroundServer(create_app(model, settings)) as server:
        r = run_load_test(server.url, clients=clients, seconds=seconds, max_tokens=max_tokens)
        health = httpx.get(server.url + "/health").json()
    label = f"server, {clients} clients, max_batch_size={batch} (largest {health['largest_batch']})"
    return label, r["requests_per_s"], r["tokens_per_s"], r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--random", default=None, help="benchmark a random model of this preset instead")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args(argv)
    model = random_molmo(args.random, args.dtype, args.device) if args.random else \
        Molmo.from_pretrained(args.model, dtype=args.dtype, device=args.device)
    print(f"model {model.name}, {args.dtype} on {args.device}, {args.max_tokens} max new tokens", flush=True)
    rows = bench_api(model, args.batch, args.max_tokens, args.device)
    for batch in (1, args.batch):
        label, rps, tps, r = bench_server(model, batch, args.clients, args.seconds, args.max_tokens)
        rows.append((label + f", p50 {r['p50_s']:.2f}s p99 {r['p99_s']:.2f}s, failures {r['failures']}", rps, tps))
    width = max(len(r[0]) for r in rows)
    print(f"| {'setting'.ljust(width)} | requests/s | tokens/s |")
    print(f"|{'-' * (width + 2)}|-----------:|---------:|")
    for name, rps, tps in rows:
        print(f"| {name.ljust(width)} | {rps:10.2f} | {tps:8.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
