"""Load test of `molmo serve` on loopback: N concurrent clients send chat requests (with a sample image) for a
bounded time; prints requests, failures, throughput, latency percentiles and server memory.

    python benchmarks/load_test.py --clients 32 --seconds 60                 # in-process server, embedded model
    python benchmarks/load_test.py --model PATH --clients 8 --seconds 10
    python benchmarks/load_test.py --url http://127.0.0.1:8000 --api-key KEY # an already running server

Exit status 1 if any request failed. `run_load_test(...)` returns the figures as a dict (used by the tests).
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

QUESTIONS = ["Point to the yellow shapes.", "How many gray hexagons are there?", "What is in this image?",
             "Describe this image briefly."]


def rss_mb() -> float:
    """Resident memory of this process (the in-process server) in MiB; Linux only, else NaN."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _client(url: str, image_url: str, stop_at: float, max_tokens: int, headers: dict, out: list, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with httpx.Client(timeout=120) as http:
        while time.monotonic() < stop_at:
            q = QUESTIONS[int(rng.integers(len(QUESTIONS)))]
            body = {"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": image_url}}, {"type": "text", "text": q}]}],
                "max_tokens": max_tokens}
            t0 = time.perf_counter()
            try:
                r = http.post(url + "/v1/chat/completions", json=body, headers=headers)
                ok = r.status_code == 200
                tokens = r.json()["usage"]["completion_tokens"] if ok else 0
                err = None if ok else f"{r.status_code}: {r.text[:200]}"
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                ok, tokens, err = False, 0, repr(e)
            out.append((ok, time.perf_counter() - t0, tokens, err))


def run_load_test(url: str, *, clients: int, seconds: float, max_tokens: int = 16, api_key: str | None = None,
                  image: Path | None = None) -> dict:
    from molmo.serve.commands import SAMPLES_DIR

    image = image or SAMPLES_DIR / "shapes.png"
    image_url = "data:image/png;base64," + base64.b64encode(Path(image).read_bytes()).decode()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    results: list = []
    mem_start = rss_mb()
    start = time.monotonic()
    stop_at = start + seconds
    threads = [threading.Thread(target=_client, args=(url, image_url, stop_at, max_tokens, headers, results, i))
               for i in range(clients)]
    for t in threads:
        t.start()
    mem_mid = float("nan")
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
        if time.monotonic() > start + seconds / 2 and mem_mid != mem_mid:
            mem_mid = rss_mb()
    elapsed = time.monotonic() - start
    lat = np.array([r[1] for r in results if r[0]]) if results else np.zeros(0)
    pct = (lambda q: float(np.percentile(lat, q)) if len(lat) else float("nan"))
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(results),
            "failures": sum(1 for r in results if not r[0]),
            "errors": sorted({r[3] for r in results if r[3]})[:5],
            "requests_per_s": len(results) / elapsed, "tokens_per_s": sum(r[2] for r in results) / elapsed,
            "p50_s": pct(50), "p90_s": pct(90), "p99_s": pct(99), "max_s": float(lat.max()) if len(lat) else float("nan"),
            "rss_start_mb": mem_start, "rss_mid_mb": mem_mid, "rss_end_mb": rss_mb()}


def print_table(r: dict) -> None:
    rows = [("clients", r["clients"]), ("duration s", r["seconds"]), ("requests", r["requests"]),
            ("failures", r["failures"]), ("requests/s", f"{r['requests_per_s']:.2f}"),
            ("tokens/s", f"{r['tokens_per_s']:.1f}"), ("latency p50 s", f"{r['p50_s']:.3f}"),
            ("latency p90 s", f"{r['p90_s']:.3f}"), ("latency p99 s", f"{r['p99_s']:.3f}"),
            ("latency max s", f"{r['max_s']:.3f}"),
            ("RSS start/mid/end MiB", f"{r['rss_start_mb']:.0f} / {r['rss_mid_mb']:.0f} / {r['rss_end_mb']:.0f}")]
    for k, v in rows:
        print(f"| {k:<22} | {v!s:>20} |")
    for e in r["errors"]:
        print("error:", e)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="load test of molmo serve (loopback only)")
    p.add_argument("--url", default=None, help="a running server; default: start one in this process")
    p.add_argument("--model", default=None, help="checkpoint for the in-process server (default: embedded)")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument("--api-key", default=os.environ.get("MOLMO_API_KEY"))
    args = p.parse_args(argv)
    if args.url:
        if not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            p.error("the load test only targets loopback servers")
        result = run_load_test(args.url, clients=args.clients, seconds=args.seconds, max_tokens=args.max_tokens,
                               api_key=args.api_key)
    else:
        from molmo.api import Molmo
        from molmo.serve.server import BackgroundServer, ServerSettings, create_app

        model = Molmo.from_pretrained(args.model)
        settings = ServerSettings(max_batch_size=args.max_batch_size, max_queue=max(64, 2 * args.clients))
        with BackgroundServer(create_app(model, settings)) as server:
            print(f"server {server.url}, model {model.name}, {args.clients} clients for {args.seconds:.0f} s", flush=True)
            result = run_load_test(server.url, clients=args.clients, seconds=args.seconds, max_tokens=args.max_tokens)
            health = httpx.get(server.url + "/health").json()
            print(f"batches {health['batches']}, largest batch {health['largest_batch']}")
    print_table(result)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
