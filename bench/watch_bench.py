"""Time from an interview file saved to it being answerable through `qabot serve --watch` (loopback HTTP).

    python bench/watch_bench.py --corpus DIR --index DIR [--rounds 5]

Copies the corpus and index to a scratch folder, starts `qabot serve --watch` on them, then saves new
interviews one at a time and polls /search (every 50 ms) until the new file is among the top 3 results.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve_bench import free_port, peak_rss_mb, start_server, stop_server  # noqa: E402

WORDS = ["amber", "quartz", "falcon", "meadow", "cobalt", "lantern", "harbor", "willow", "ember", "glacier"]


def interview(name: str, fact: str) -> str:
    """A small interview whose motivation answer carries `fact`."""
    return (f"# Knative Adopter Interview - {name}\n\nInterviewee: Sam Roe, Platform Lead, {name}\n\n"
            f"## Motivation\n\n### What drew you to the project?\n\n{fact}\n\n"
            f"### How long has your organization used the project?\n\nAbout two years, in production.\n")


def search_sources(base: str, query: str) -> list[str]:
    """Sources of the top 3 /search results."""
    with urllib.request.urlopen(f"{base}/search?q={quote(query)}&k=3", timeout=10) as r:
        return [p["source"] for p in json.load(r)["results"]]


def main(argv: list[str] | None = None) -> int:
    """Run the watch benchmark."""
    ap = argparse.ArgumentParser(description="file saved -> answerable with qabot serve --watch")
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--index", type=Path, required=True, help="an up-to-date index of --corpus")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--label", default="")
    args = ap.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="qabot-watch-bench-"))
    corpus, index = scratch / "corpus", scratch / "index"
    shutil.copytree(args.corpus, corpus)
    shutil.copytree(args.index, index)
    port = free_port()
    proc, ready = start_server(index, corpus, port, watch=True)
    base = f"http://127.0.0.1:{port}"
    took: list[float] = []
    try:
        time.sleep(2.5)  # the watcher's start-up check
        for i in range(args.rounds):
            w1, w2 = WORDS[i % len(WORDS)], WORDS[(i * 3 + 1) % len(WORDS)]
            name = f"Benchco {w1.title()} {i}"
            rel = f"knative/knative-adopter-interview-benchco-{w1}-{i}.md"
            fact = f"{name} runs {w1} {w2} telemetry pipelines on serverless functions to cut idle cost."
            saved = time.perf_counter()
            (corpus / rel).write_text(interview(name, fact), encoding="utf-8")
            while rel not in search_sources(base, f"{name} {w1} {w2} telemetry pipelines"):
                if time.perf_counter() - saved > 120:
                    raise SystemExit(f"{rel} not answerable after 120 s")
                time.sleep(0.05)
            took.append(time.perf_counter() - saved)
            time.sleep(0.5)
        result = {"bench": "file saved -> answerable (serve --watch)", "label": args.label, "rounds": len(took),
                  "median_s": round(statistics.median(took), 2), "max_s": round(max(took), 2),
                  "all_s": [round(t, 2) for t in took], "cold_start_s": round(ready, 2),
                  "serve_peak_rss_mb": round(peak_rss_mb(proc.pid))}
        print(json.dumps(result), flush=True)
    finally:
        stop_server(proc)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
