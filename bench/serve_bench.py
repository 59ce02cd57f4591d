"""HTTP benchmarks on loopback: cold start to /readyz, /ask and /search latency and throughput, peak RSS.

    python bench/serve_bench.py --index DIR [--corpus DIR] [--levels 1 8 32] [--seconds 8]

Starts `python -m bot serve` on a free loopback port over an existing index (build it first with
`qabot index`, or bench/build_bench.py for the synthetic ones), then drives it with an asyncio client (aiohttp),
one level of concurrency at a time. Prints one JSON object per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp

ROOT = Path(__file__).resolve().parents[1]

# Generic questions of the kind users ask (not taken from the evaluation set).
QUESTIONS = [
    "Why did adopters choose Knative?",
    "How do teams upgrade to new versions?",
    "What challenges did adopters face in production?",
    "Which features are used the most?",
    "How large is the production deployment?",
    "What would adopters like to see improved?",
    "How does the community support adopters?",
    "What alternatives were evaluated before adopting?",
    "How is security handled in the supply chain?",
    "What is the scale of model serving in production?",
    "How long has the organization used the project?",
    "Who maintains the integration internally?",
]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate a started server, killing it if it takes over 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _ready(port: int, workers: int = 1, log: Path | None = None) -> bool:
    """True when /readyz on `port` answers 200 (a 503 raises, as urllib does), with `serve --workers N` once the
    log shows all N workers started (a worker accepts only once its index is loaded; until then the started
    ones take every connection)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
        if r.status != 200:
            return False
    return workers == 1 or (log is not None and log.read_text().count("Application startup complete") >= workers)


def start_server(index: Path, corpus: Path, port: int, watch: bool = False,
                 extra_env: dict[str, str] | None = None, log: Path | None = None, workers: int = 1,
                 ready_within: float = 300) -> tuple[subprocess.Popen, float]:
    """Start `qabot serve` (`--workers N`) and wait for /readyz from every worker; return the process and the
    seconds to ready."""
    if workers > 1 and log is None:  # the workers' "Application startup complete" lines say when all are ready
        log = Path(tempfile.mkstemp(prefix="qabot-serve-", suffix=".log")[1])
    env = {**os.environ, "QABOT_INDEX_DIR": str(index), "QABOT_CORPUS_DIR": str(corpus), "HF_HUB_OFFLINE": "1",
           "QABOT_LOG_LEVEL": "INFO" if log else "WARNING", **(extra_env or {})}
    cmd = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers",
           str(workers)]
    started = time.perf_counter()
    # The server's log goes to a file (a pipe nobody reads would block the server once full).
    log_file = (log or Path(os.devnull)).open("a")
    proc = subprocess.Popen(cmd + (["--watch"] if watch else []), env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=log_file, text=True)
    while True:
        if proc.poll() is not None:
            tail = log.read_text()[-2000:] if log else "(run with a log file to see why)"
            raise SystemExit(f"qabot serve exited with {proc.returncode}: {tail}")
        try:
            if _ready(port, workers, log):
                return proc, time.perf_counter() - started
        except OSError:
            pass
        if time.perf_counter() - started > ready_within:
            proc.kill()
            raise SystemExit(f"qabot serve not ready within {ready_within:.0f} s")
        time.sleep(0.05)


async def _worker(session: aiohttp.ClientSession, base: str, route: str, stop_at: float,
                  lat: list[float], errors: list[str], rng: random.Random) -> None:
    while time.perf_counter() < stop_at:
        q = rng.choice(QUESTIONS)
        t = time.perf_counter()
        try:
            if route == "/ask":
                resp = await session.post(base + "/ask", json={"question": q, "top_k": 5})
            else:
                resp = await session.get(f"{base}/search?q={quote(q)}&k=10")
            await resp.read()
            if resp.status != 200:
                errors.append(str(resp.status))
                continue
        except aiohttp.ClientError as exc:
            errors.append(type(exc).__name__)
            continue
        lat.append(time.perf_counter() - t)


async def load(base: str, route: str, concurrency: int, seconds: float) -> dict:
    """Run `concurrency` clients against a route for `seconds`; latency percentiles and throughput."""
    lat: list[float] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        # Warm-up: one request per connection.
        await asyncio.gather(*(_worker(session, base, route, time.perf_counter() + 0.3, [], [], random.Random(i))
                               for i in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(_worker(session, base, route, started + seconds, lat, errors, random.Random(100 + i))
                               for i in range(concurrency)))
        wall = time.perf_counter() - started
    lat.sort()

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else float("nan")

    return {"route": route, "concurrency": concurrency, "requests": len(lat), "errors": len(errors),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "rps": round(len(lat) / wall, 1)}


def main(argv: list[str] | None = None) -> int:
    """Run the serve benchmarks."""
    ap = argparse.ArgumentParser(description="qabot HTTP benchmarks on loopback")
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--levels", type=int, nargs="*", default=[1, 8, 32])
    ap.add_argument("--routes", nargs="*", default=["/ask", "/search"])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--label", default="")
    args = ap.parse_args(argv)
    port = free_port()
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cores",
                      "loadavg_before": os.getloadavg()[0], "label": args.label}), flush=True)
    proc, ready_s = start_server(args.index, args.corpus, port)
    try:
        print(json.dumps({"cold_start_to_readyz_s": round(ready_s, 2), "label": args.label}), flush=True)
        base = f"http://127.0.0.1:{port}"
        for route in args.routes:
            for c in args.levels:
                result = asyncio.run(load(base, route, c, args.seconds))
                result["label"] = args.label
                print(json.dumps(result), flush=True)
        print(json.dumps({"serve_peak_rss_mb": round(peak_rss_mb(proc.pid)), "label": args.label,
                          "loadavg_after": os.getloadavg()[0]}), flush=True)
    finally:
        stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
