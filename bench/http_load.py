"""HTTP load generator on loopback: p50/p99 latency of POST /ask and GET /search at given concurrencies.

    python bench/http_load.py --corpus ../shared/corpus --index /tmp/qabot-bench-index   # starts qabot serve
    python bench/http_load.py --url http://127.0.0.1:8000                                # an existing server
    python bench/http_load.py --index /tmp/oi --corpus ../shared/corpus --workers 2 --client wrk --duration 20

`--client wrk` drives the load with wrk (Debian package `wrk`, C, one thread): it costs the shared cores far less
than the Python client, so the numbers are the server's. Each level runs for `--duration` seconds after a
warm-up; the table has p50/p99 and requests/s (wrk reports no server-side time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The same generic questions and server start as every load benchmark.
from bench.serve_bench import QUESTIONS, free_port, start_server, stop_server  # noqa: E402


@dataclass
class Result:
    """Latency summary of one endpoint at one concurrency."""

    endpoint: str
    concurrency: int
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    throughput_rps: float
    server_p50_ms: float | None  # /ask's own took_ms: the part of the latency spent answering


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def _one(client: httpx.AsyncClient, endpoint: str, i: int) -> tuple[float, bool, float | None]:
    question = QUESTIONS[i % len(QUESTIONS)]
    started = time.perf_counter()
    if endpoint == "/ask":
        r = await client.post("/ask", json={"question": question, "top_k": 5})
    else:
        r = await client.get("/search", params={"q": question, "k": 10})
    ms = (time.perf_counter() - started) * 1000
    took = r.json().get("took_ms") if r.status_code == 200 and endpoint == "/ask" else None
    return ms, r.status_code == 200, took


async def run_level(url: str, endpoint: str, concurrency: int, requests: int, warmup: int) -> Result:
    """Send `requests` requests with `concurrency` in flight and summarize latency."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        for i in range(warmup):
            await _one(client, endpoint, i)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)
        latencies: list[float] = []
        server: list[float] = []
        errors = 0

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                ms, ok, took = await _one(client, endpoint, i)
                latencies.append(ms)
                if took is not None:
                    server.append(took)
                errors += 0 if ok else 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(endpoint, concurrency, requests, errors, round(percentile(latencies, 50), 1),
                  round(percentile(latencies, 99), 1), round(statistics.fmean(latencies), 1),
                  round(requests / elapsed, 1), round(percentile(server, 50), 1) if server else None)


WRK_SCRIPT = """
local qs = {%s}
local i = 0
request = function()
  i = i + 1
  local q = qs[(i %% #qs) + 1]
  if "%s" == "/ask" then
    return wrk.format("POST", "/ask", {["Content-Type"]="application/json"}, '{"question": "' .. q .. '", "top_k": 5}')
  end
  return wrk.format("GET", "/search?k=10&q=" .. q:gsub(" ", "+"))
end
"""


def _wrk_ms(text: str) -> float:
    """wrk's latency with its unit ("412.00us", "25.01ms", "1.20s") in ms."""
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 1)
    raise ValueError(text)


def run_wrk(url: str, endpoint: str, concurrency: int, seconds: int) -> Result:
    """One level with wrk: warm up for 3 s, then measure for `seconds`."""
    import re
    import tempfile

    questions = ", ".join(json.dumps(q) for q in QUESTIONS)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % (questions, endpoint))
    try:
        base = ["wrk", "-t1", f"-c{concurrency}", "-s", f.name, "--latency", url]
        subprocess.run([*base[:3], "-d3s", *base[3:]], capture_output=True, check=True)
        out = subprocess.run([*base[:3], f"-d{seconds}s", *base[3:]], capture_output=True, text=True,
                             check=True).stdout
    finally:
        os.unlink(f.name)
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.MULTILINE))
    count = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    mean = re.search(r"Latency\s+(\S+)", out).group(1)
    return Result(endpoint, concurrency, count, errors, _wrk_ms(pct["50"]), _wrk_ms(pct["99"]), _wrk_ms(mean),
                  float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), None)


def markdown(results: list[Result], note: str) -> str:
    """A Markdown table of the results."""
    lines = ["| endpoint | concurrency | requests | errors | p50 ms | p99 ms | mean ms | req/s | server p50 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {'POST' if r.endpoint == '/ask' else 'GET'} {r.endpoint} | {r.concurrency} | {r.requests} | "
                     f"{r.errors} | {r.p50_ms} | {r.p99_ms} | {r.mean_ms} | {r.throughput_rps} | "
                     f"{'' if r.server_p50_ms is None else r.server_p50_ms} |")
    return "\n".join(lines) + (f"\n\n{note}" if note else "")


def main() -> None:
    """Parse arguments, run every endpoint at every concurrency, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="An already running server; otherwise one is started.")
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("QABOT_CORPUS_DIR", "corpus")))
    parser.add_argument("--index", type=Path, default=Path(os.environ.get("QABOT_INDEX_DIR", "index")))
    parser.add_argument("--requests", type=int, default=200, help="Requests per endpoint and concurrency.")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--concurrency", default="1,8", help="Comma-separated levels.")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a Markdown table.")
    parser.add_argument("--workers", type=int, default=1, help="`qabot serve --workers` for the started server.")
    parser.add_argument("--client", choices=("httpx", "wrk"), default="httpx", help="Load generator.")
    parser.add_argument("--duration", type=int, default=20, help="Seconds per level with --client wrk.")
    args = parser.parse_args()

    proc = None
    url = args.url
    load_before = os.getloadavg()[0]
    if url is None:
        port = free_port()
        # A first start builds the index: allow it 10 minutes.
        proc, _ = start_server(args.index, args.corpus, port, workers=args.workers, ready_within=600)
        url = f"http://127.0.0.1:{port}"
    try:
        info = httpx.get(f"{url}/readyz", timeout=10).json()
        levels = [(endpoint, int(c)) for endpoint in ("/ask", "/search") for c in args.concurrency.split(",")]
        if args.client == "wrk":
            results = [run_wrk(url, endpoint, c, args.duration) for endpoint, c in levels]
        else:
            results = [asyncio.run(run_level(url, endpoint, c, args.requests, args.warmup)) for endpoint, c in levels]
    finally:
        if proc is not None:
            stop_server(proc)
    if args.json:
        print(json.dumps({"index": info, "results": [asdict(r) for r in results]}, indent=2))
    else:
        per_row = (f"wrk for {args.duration} s per row after 3 s of warm-up" if args.client == "wrk" else
                   f"{args.requests} requests per row after {args.warmup} warm-up requests")
        note = (f"Index: {info.get('chunks')} passages from {info.get('interviews')} interviews; "
                f"{os.cpu_count()} CPUs; {args.workers} worker process(es); {per_row}; "
                f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.")
        print(markdown(results, note))


if __name__ == "__main__":
    main()
