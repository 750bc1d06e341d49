"""Load test of `molmo serve` on loopback: N concurrent clients send chat requests (with a sample image) for a
bounded time; a 429 is honoured (the client waits `Retry-After`) and counted as refused, anything else that is
not a 200 is an error. Prints requests, refusals, errors, throughput, latency percentiles and server memory.

    python benchmarks/load_test.py --clients 32 --seconds 60                 # in-process server, embedded model
    python benchmarks/load_test.py --compare 64 128 --seconds 30             # overload: 128 vs 64 clients
    python benchmarks/load_test.py --disconnect 20                           # 20 abandoned 600-token streams
    python benchmarks/load_test.py --url http://127.0.0.1:8000 --api-key KEY # an already running server

Exit status 1 if any request failed with something other than a 429. `run_load_test(...)` returns the
figures as a dict (used by the tests and benchmarks/bench_serve.py).
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
            wait = 0.0
            try:
                r = http.post(url + "/v1/chat/completions", json=body, headers=headers)
                status = r.status_code
                tokens = r.json()["usage"]["completion_tokens"] if status == 200 else 0
                err = None if status in (200, 429) else f"{status}: {r.text[:200]}"
                if status == 429:
                    wait = float(r.headers.get("retry-after", "1"))
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                status, tokens, err = 0, 0, repr(e)
            out.append((status, time.perf_counter() - t0, tokens, err))
            if wait:
                time.sleep(min(wait, max(0.0, stop_at - time.monotonic())))


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
    mem_peak = mem_start
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
        mem_peak = max(mem_peak, rss_mb())
    elapsed = time.monotonic() - start
    ok = [r for r in results if r[0] == 200]
    lat = np.array([r[1] for r in ok]) if ok else np.zeros(0)
    pct = (lambda q: float(np.percentile(lat, q)) if len(lat) else float("nan"))
    errors = [r for r in results if r[0] not in (200, 429)]
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(results), "succeeded": len(ok),
            "refused_429": sum(1 for r in results if r[0] == 429), "failures": len(errors),
            "errors": sorted({r[3] for r in errors})[:5],
            "requests_per_s": len(ok) / elapsed, "tokens_per_s": sum(r[2] for r in ok) / elapsed,
            "p50_s": pct(50), "p90_s": pct(90), "p99_s": pct(99),
            "max_s": float(lat.max()) if len(lat) else float("nan"),
            "rss_start_mb": mem_start, "rss_peak_mb": mem_peak, "rss_end_mb": rss_mb()}


def run_disconnect_test(url: str, *, streams: int = 20, tokens: int = 600, api_key: str | None = None) -> dict:
    """Open `streams` streams of `tokens` tokens at once (the server's batch must hold them all), read the first
    generated chunk of each, hang all up together; time until the server runs nothing (every slot freed), then
    a 1-token request against the same request on the idle server before."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {"messages": [{"role": "user", "content": "Describe this image."}]}

    ready, hang_up = threading.Semaphore(0), threading.Event()

    def abandon(http: httpx.Client) -> None:  # read the first generated chunk, wait for the others, hang up
        stream = {**body, "max_tokens": tokens, "stream": True}
        with http.stream("POST", url + "/v1/chat/completions", json=stream) as r:
            lines = r.iter_lines()
            for _ in range(3):  # the role chunk, a blank separator, the first text chunk
                next(lines)
            ready.release()
            hang_up.wait(60)

    with httpx.Client(timeout=120, headers=headers) as http:
        def one_token() -> float:
            t0 = time.perf_counter()
            r = http.post(url + "/v1/chat/completions", json={**body, "max_tokens": 1})
            assert r.status_code == 200, r.text
            return time.perf_counter() - t0

        one_token()
        idle = float(np.median([one_token() for _ in range(5)]))
        clients = [httpx.Client(timeout=120, headers=headers) for _ in range(streams)]
        threads = [threading.Thread(target=abandon, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        for _ in range(streams):
            ready.acquire(timeout=max(0.0, deadline - time.monotonic()))
        running = http.get(url + "/health").json()["running"]
        t0 = time.perf_counter()
        hang_up.set()  # every stream hangs up now
        for t in threads:
            t.join(120)
        for c in clients:
            c.close()
        while time.perf_counter() - t0 < 30 and http.get(url + "/health").json()["running"]:
            time.sleep(0.01)
        freed = time.perf_counter() - t0
        after = float(np.median([one_token() for _ in range(5)]))
    return {"streams": streams, "tokens": tokens, "running_before_hang_up": running, "freed_s": freed,
            "idle_1_token_s": idle, "after_1_token_s": after}


def print_table(r: dict) -> None:
    rows = [("clients", r["clients"]), ("duration s", r["seconds"]), ("requests", r["requests"]),
            ("succeeded", r["succeeded"]), ("refused (429)", r["refused_429"]), ("errors (not 429)", r["failures"]),
            ("successful requests/s", f"{r['requests_per_s']:.2f}"), ("tokens/s", f"{r['tokens_per_s']:.1f}"),
            ("latency p50 s", f"{r['p50_s']:.3f}"), ("latency p90 s", f"{r['p90_s']:.3f}"),
            ("latency p99 s", f"{r['p99_s']:.3f}"), ("latency max s", f"{r['max_s']:.3f}"),
            ("RSS start/peak/end MiB", f"{r['rss_start_mb']:.0f} / {r['rss_peak_mb']:.0f} / {r['rss_end_mb']:.0f}")]
    for k, v in rows:
        print(f"| {k:<22} | {v!s:>20} |")
    for e in r["errors"]:
        print("error:", e)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="load test of molmo serve (loopback only)")
    p.add_argument("--url", default=None, help="a running server; default: start one in this process")
    p.add_argument("--model", default=None, help="checkpoint for the in-process server (default: embedded)")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--compare", type=int, nargs=2, metavar=("BASE", "OVERLOAD"), default=None,
                   help="run BASE then OVERLOAD clients and report the overload throughput as a share of BASE")
    p.add_argument("--disconnect", type=int, default=0, metavar="N", help="the abandoned-streams test with N streams")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--max-batch-size", type=int, default=16)
    p.add_argument("--max-queue", type=int, default=64)
    p.add_argument("--scheduler", default="continuous", choices=["continuous", "static"])
    p.add_argument("--api-key", default=os.environ.get("MOLMO_API_KEY"))
    args = p.parse_args(argv)
    if args.url and not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        p.error("the load test only targets loopback servers")

    def measure(url: str) -> int:
        if args.disconnect:
            d = run_disconnect_test(url, streams=args.disconnect, api_key=args.api_key)
            print(f"{d['streams']} concurrent {d['tokens']}-token streams ({d['running_before_hang_up']} running) "
                  f"abandoned: every slot free after {d['freed_s']:.2f} s; 1-token request: idle "
                  f"{d['idle_1_token_s']:.3f} s, after {d['after_1_token_s']:.3f} s "
                  f"({d['after_1_token_s'] / d['idle_1_token_s']:.2f}x)")
            return 0
        runs = [run_load_test(url, clients=n, seconds=args.seconds, max_tokens=args.max_tokens, api_key=args.api_key)
                for n in (args.compare or (args.clients,))]
        for r in runs:
            print_table(r)
        if args.compare:
            base, over = runs
            print(f"successful requests/s at {over['clients']} clients = "
                  f"{over['requests_per_s'] / base['requests_per_s']:.1%} of {base['clients']} clients; "
                  f"p99 {base['p99_s']:.2f} s -> {over['p99_s']:.2f} s; errors other than 429: "
                  f"{base['failures'] + over['failures']}")
        return 1 if any(r["failures"] for r in runs) else 0

    if args.url:
        return measure(args.url)
    from molmo.api import Molmo
    from molmo.serve.server import BackgroundServer, ServerSettings, create_app

    model = Molmo.from_pretrained(args.model)
    settings = ServerSettings(max_batch_size=args.max_batch_size, max_queue=args.max_queue, scheduler=args.scheduler,
                              max_tokens=max(600, args.max_tokens))
    with BackgroundServer(create_app(model, settings)) as server:
        print(f"server {server.url}, model {model.name}, {args.scheduler} batching (max batch {args.max_batch_size}, "
              f"queue {args.max_queue})", flush=True)
        status = measure(server.url)
        health = httpx.get(server.url + "/health").json()
        print(f"batches {health['batches']}, largest batch {health['largest_batch']}, cancelled {health['cancelled']}")
    return status


if __name__ == "__main__":
    sys.exit(main())
