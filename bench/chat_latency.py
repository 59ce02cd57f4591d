"""Latency of `POST /v1/chat/completions` next to `POST /ask`, on loopback, at concurrency 1 and 8.

    python bench/chat_latency.py --index DIR [--corpus DIR] [--requests 60] [--rounds 3] [--levels 1 8]

Starts `python -m bot serve` over an existing index (bench/serve_bench.py's helpers), then for each level of
concurrency runs alternating rounds of the same questions through both routes (so a change in the machine's
load, shared with other work, hits both alike) and prints one JSON object per route and level: p50, p90 and
requests per second over all rounds. Both routes answer with the same Answerer and answer threads; the
difference is what the chat route adds (its request model, the Sources text, the word-piece counts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.serve_bench import QUESTIONS, ROOT, free_port, start_server, stop_server  # noqa: E402


def _body(route: str, question: str) -> dict:
    if route == "/ask":
        return {"question": question, "top_k": 5}
    return {"model": "qabot", "messages": [{"role": "user", "content": question}]}


async def _round(base: str, route: str, concurrency: int, requests: int, offset: int) -> tuple[list[float], float]:
    """`requests` questions with `concurrency` in flight; their latencies (s) and the wall time."""
    latencies: list[float] = []
    queue = list(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def client() -> None:
            while queue:
                i = queue.pop()
                started = time.perf_counter()
                async with session.post(base + route, json=_body(route, QUESTIONS[(i + offset) % len(QUESTIONS)])) as r:
                    await r.read()
                    if r.status != 200:
                        raise SystemExit(f"{route} answered {r.status}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--requests", type=int, default=60, help="requests per route per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--levels", type=int, nargs="*", default=[1, 8])
    args = ap.parse_args(argv)
    port = free_port()
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cores",
                      "loadavg_before": os.getloadavg()[0]}), flush=True)
    proc, _ = start_server(args.index, args.corpus, port)
    base = f"http://127.0.0.1:{port}"
    try:
        for route in ("/ask", "/v1/chat/completions"):  # warm-up: one of every question through each route
            asyncio.run(_round(base, route, 1, len(QUESTIONS), 0))
        for level in args.levels:
            results: dict[str, tuple[list[float], float]] = {"/ask": ([], 0.0), "/v1/chat/completions": ([], 0.0)}
            for n in range(args.rounds):
                order = ["/ask", "/v1/chat/completions"][::1 if n % 2 == 0 else -1]
                for route in order:
                    latencies, wall = asyncio.run(_round(base, route, level, args.requests, n * args.requests))
                    total, seconds = results[route]
                    results[route] = (total + latencies, seconds + wall)
            for route, (latencies, seconds) in results.items():
                print(json.dumps({"route": route, "concurrency": level, "requests": len(latencies),
                                  "p50_ms": _pct(latencies, 0.5), "p90_ms": _pct(latencies, 0.9),
                                  "rps": round(len(latencies) / seconds, 1)}), flush=True)
        print(json.dumps({"loadavg_after": os.getloadavg()[0]}), flush=True)
    finally:
        stop_server(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
