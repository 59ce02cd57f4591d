"""Serve memory and cold start: how big `qabot serve` is once loaded and at its peak, and how long it takes.

    python bench/serve_rss.py --index DIR [--corpus DIR] [--encoder DIR] [--asks 9] [--runs 1]

Starts `python -m bot serve` on a free loopback port over an existing index (e.g. the 10,000-interview one made by
bench/gen_corpus.py and bench/build_bench.py), waits for /readyz, asks `--asks` generic questions one at a time,
then reads the server's /proc status: VmRSS (resident now), VmHWM (the peak, reached while the index loads),
RssAnon (heap) and RssFile (mapped files). Prints one JSON object per run; `--runs` repeats the cold start.
The target of issue 6 is VmRSS and VmHWM <= 700 MB at 10,000 interviews.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serve_bench import QUESTIONS, ROOT, free_port, start_server, stop_server  # noqa: E402

FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def status_mb(pid: int) -> dict[str, int]:
    """The memory lines of /proc/PID/status, MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name = line.split(":")[0]
        if name in FIELDS:
            out[name] = round(int(line.split()[1]) / 1024)
    return out


def ask(port: int, question: str) -> float:
    """POST /ask once; the seconds it took."""
    body = json.dumps({"question": question}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/ask", data=body,
                                     headers={"content-type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise SystemExit(f"/ask answered {response.status}")
    return time.perf_counter() - started


def run(index: Path, corpus: Path, encoder: Path | None, asks: int, log: Path | None) -> dict:
    """One cold start, `asks` questions, and the server's memory afterwards."""
    port = free_port()
    env = {"QABOT_ENCODER_DIR": str(encoder)} if encoder else {}
    proc, ready_s = start_server(index, corpus, port, extra_env=env, log=log)
    try:
        at_ready = status_mb(proc.pid)
        took = [ask(port, QUESTIONS[i % len(QUESTIONS)]) * 1000 for i in range(asks)]
        after = status_mb(proc.pid)
    finally:
        stop_server(proc)
    return {"index": str(index), "ready_s": round(ready_s, 2), "rss_at_ready_mb": at_ready.get("VmRSS"),
            **{f"{k}_mb": v for k, v in after.items()},
            "ask_ms_first": round(took[0], 1) if took else None,
            "ask_ms_p50": round(statistics.median(took), 1) if took else None,
            "ask_ms_max": round(max(took), 1) if took else None,
            "loadavg": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description="qabot serve: cold start and resident memory")
    ap.add_argument("--index", type=Path, required=True, help="index folder (QABOT_INDEX_DIR)")
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus", help="corpus folder")
    ap.add_argument("--encoder", type=Path, default=None, help="ONNX encoder folder (QABOT_ENCODER_DIR)")
    ap.add_argument("--asks", type=int, default=9, help="questions asked one at a time after start")
    ap.add_argument("--runs", type=int, default=1, help="cold starts")
    ap.add_argument("--log", type=Path, default=None, help="append the server's log here")
    args = ap.parse_args(argv)
    if not args.index.is_dir():
        ap.error(f"no index folder at {args.index}")
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cores", "python": platform.python_version(),
                      "loadavg_before": round(os.getloadavg()[0], 2)}), flush=True)
    for _ in range(args.runs):
        print(json.dumps(run(args.index, args.corpus, args.encoder, args.asks, args.log)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
