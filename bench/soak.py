"""Soak: queries at concurrency 8 against `qabot serve --watch` on loopback while interviews are added,
changed and deleted every few seconds and one `qabot index` is SIGKILLed mid-way.

    python bench/soak.py [--seconds 60] [--model all-MiniLM-L6-v2|fake] [--workers 2]

Checks: zero 5xx, zero failed requests; every cited/returned source existed on disk at some moment between
(request start - LAG) and request end, LAG being the watch target (5 s: a deleted file may be served until
the rebuild that drops it goes live); the final index equals a clean full rebuild (same chunk ids and counts).
tests/test_soak.py runs a short version of the same function in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gen_corpus import DEFAULT_SOURCE, read_pools, synthesize  # noqa: E402
from bench.serve_bench import QUESTIONS, free_port, peak_rss_mb, start_server, stop_server  # noqa: E402
from tests.fakes import FAKE_MODEL  # noqa: E402

LAG = 5.0
TOKEN = "soak-admin-token-0123456789"
MODEL_SPECS = {"fake": FAKE_MODEL}  # `--model fake`: the test helper, named to qabot as a QABOT_MODEL plugin spec


@dataclass
class Timeline:
    """When each source file existed on disk (perf_counter seconds)."""

    born: dict[str, list[float]] = field(default_factory=dict)
    died: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, source: str) -> None:
        """Record a file appearing."""
        with self.lock:
            self.born.setdefault(source, []).append(time.perf_counter())

    def remove(self, source: str) -> None:
        """Record a file disappearing."""
        with self.lock:
            self.died.setdefault(source, []).append(time.perf_counter())

    def existed(self, source: str, start: float, end: float) -> bool:
        """True if the file was on disk at some moment of [start, end]."""
        with self.lock:
            births, deaths = sorted(self.born.get(source, [])), sorted(self.died.get(source, []))
        for i, b in enumerate(births):
            d = deaths[i] if i < len(deaths) else float("inf")
            if b <= end and d >= start:
                return True
        return False


def _mutate(corpus: Path, timeline: Timeline, stop: threading.Event, every: float, log: list[str],
            rng: random.Random) -> None:
    pools = read_pools(DEFAULT_SOURCE)
    added: list[Path] = []
    i = 0
    while not stop.wait(every):
        op = ("add", "change", "delete")[i % 3]
        i += 1
        if op == "add" or (op == "delete" and not added):
            folder, name, text = synthesize(1000 + i, pools, seed=rng.randint(0, 10**6))
            path = corpus / folder / name.replace(".md", f"-soak{i}.md")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            timeline.add(path.relative_to(corpus).as_posix())
            added.append(path)
            log.append(f"add {path.name}")
        elif op == "change":
            path = rng.choice(sorted(p for p in corpus.rglob("*.md") if p.name.lower() != "readme.md"))
            with path.open("a", encoding="utf-8") as f:
                f.write(f"\n### Anything else to add?\n\n{rng.choice(pools.sentences)}\n")
            log.append(f"change {path.name}")
        else:
            path = added.pop(rng.randrange(len(added)))
            path.unlink()
            timeline.remove(path.relative_to(corpus).as_posix())
            log.append(f"delete {path.name}")


def _kill_a_reindex(corpus: Path, index: Path, model: str, delay: float, log: list[str]) -> None:
    env = {**os.environ, "QABOT_CORPUS_DIR": str(corpus), "QABOT_INDEX_DIR": str(index), "QABOT_MODEL": model,
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "index", "--full"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.append(f"SIGKILLed qabot index --full after {delay:.1f}s (exit {proc.returncode})")


async def _client(session: aiohttp.ClientSession, base: str, stop_at: float, rng: random.Random,
                  results: list[tuple[float, float, int, list[str]]], failures: list[str]) -> None:
    while time.perf_counter() < stop_at:
        q = rng.choice(QUESTIONS)
        start = time.perf_counter()
        try:
            if rng.random() < 0.5:
                resp = await session.post(base + "/ask", json={"question": q, "top_k": 5})
                body = await resp.json(content_type=None)
                sources = [c["source"] for c in body.get("citations", [])] + [p["source"] for p in body.get("related", [])]
            else:
                resp = await session.get(f"{base}/search?q={quote(q)}&k=10")
                body = await resp.json(content_type=None)
                sources = [p["source"] for p in body.get("results", [])]
            results.append((start, time.perf_counter(), resp.status, sources))
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")


async def _load(base: str, seconds: float, concurrency: int, results: list, failures: list) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                     connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(_client(session, base, stop_at, random.Random(i), results, failures)
                               for i in range(concurrency)))


def _status(base: str) -> dict:
    req = urllib.request.Request(f"{base}/admin/status", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def _settle(base: str, corpus: Path, timeout: float = 120) -> dict:
    """Wait until the served index matches the corpus on disk and no rebuild is pending."""
    from bot.ingest.files import iter_files, relative_source

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        status = _status(base)
        with urllib.request.urlopen(f"{base}/interviews", timeout=10) as r:
            served = {i["source"] for i in json.load(r)["interviews"]}
        on_disk = {relative_source(p, corpus) for p in iter_files(corpus)}
        watch = status.get("watch") or {}
        if served | set(status.get("skipped", {})) == on_disk and not status["building"] and not watch.get("pending"):
            time.sleep(1.0)
            again = _status(base)
            if again["generation"] == status["generation"] and not again["building"]:
                return again
        time.sleep(0.2)
    raise AssertionError("the served index did not settle on the corpus")


def run_soak(seconds: float = 60, model: str = "all-MiniLM-L6-v2", concurrency: int = 8, every: float = 3.0,
             work: Path | None = None, seed: int = 1, workers: int = 1) -> dict:
    """Run the soak and return its measurements and checks (raises nothing on a failed check)."""
    from bot.index import store
    from bot.embed.embedders import make_embedder
    from bot.index.build import build

    spec = MODEL_SPECS.get(model, model)  # what QABOT_MODEL is set to; `model` is what the report shows

    scratch = Path(work or tempfile.mkdtemp(prefix="qabot-soak-"))
    corpus, index, clean = scratch / "corpus", scratch / "index", scratch / "clean-index"
    shutil.rmtree(scratch / "corpus", ignore_errors=True)
    shutil.copytree(DEFAULT_SOURCE, corpus, ignore=shutil.ignore_patterns("README.md"))
    embedder = make_embedder(spec)
    build(corpus, index, embedder)
    timeline = Timeline()
    for p in corpus.rglob("*.md"):
        timeline.add(p.relative_to(corpus).as_posix())
    port = free_port()
    proc, ready = start_server(index, corpus, port, watch=True, log=scratch / "serve.log", workers=workers,
                               extra_env={"QABOT_MODEL": spec, "QABOT_ADMIN_TOKEN": TOKEN})
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(seed)
    results: list[tuple[float, float, int, list[str]]] = []
    failures: list[str] = []
    log: list[str] = []
    stop = threading.Event()
    try:
        mutator = threading.Thread(target=_mutate, args=(corpus, timeline, stop, every, log, rng), daemon=True)
        killer = threading.Timer(seconds * 0.4, _kill_a_reindex,
                                 args=(corpus, index, spec, rng.uniform(1.0, 2.0), log))
        mutator.start()
        killer.start()
        asyncio.run(_load(base, seconds, concurrency, results, failures))
        stop.set()
        mutator.join()
        killer.join()
        status = _settle(base, corpus)
        rss = peak_rss_mb(proc.pid)
    finally:
        stop.set()
        stop_server(proc)
    bad_sources = [(s, round(t0, 2)) for t0, t1, code, sources in results if code == 200
                   for s in sources if not timeline.existed(s, t0 - LAG, t1)]
    # How long after its deletion a file was still cited (the swap lag a stale citation reveals).
    lags = [t0 - max(timeline.died.get(s, [t0])) for s, t0 in bad_sources]
    build(corpus, clean, embedder, full=True)
    served, fresh = store.load(index, embedder.name), store.load(clean, embedder.name)
    same = ([c.chunk_id for c in served.chunks] == [c.chunk_id for c in fresh.chunks]
            and {s: e.chunks for s, e in served.manifest.files.items()} == {s: e.chunks for s, e in fresh.manifest.files.items()})
    codes: dict[str, int] = {}
    for *_, code, _ in results:
        codes[str(code)] = codes.get(str(code), 0) + 1
    out = {"seconds": seconds, "model": model, "concurrency": concurrency, "requests": len(results),
           "status_codes": codes, "server_errors": sum(1 for *_, c, _ in results if c >= 500),
           "failed_requests": len(failures), "failures": failures[:5], "stale_or_unknown_sources": bad_sources[:10],
           "stale_count": len(bad_sources), "stale_max_seconds_after_delete": round(max(lags), 2) if lags else None,
           "file_ops": log, "final_generation": status["generation"],
           "final_equals_clean_rebuild": same, "chunks": len(served.chunks), "cold_start_s": round(ready, 2),
           "serve_peak_rss_mb": round(rss), "server_log": str(scratch / "serve.log") if work else None,
           "deaths": {s: [round(t, 2) for t in ts] for s, ts in timeline.died.items()}}
    if work is None:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the full soak and print the result; exit 1 if a check failed."""
    ap = argparse.ArgumentParser(description="qabot soak on loopback")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--model", default="all-MiniLM-L6-v2",
                    help="the bundled model's name, `fake` (tests/fakes.py) or a QABOT_MODEL plugin spec module:Class")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--every", type=float, default=3.0, help="seconds between file operations")
    ap.add_argument("--workers", type=int, default=1, help="`qabot serve --workers N --watch`")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = run_soak(args.seconds, args.model, args.concurrency, args.every, workers=args.workers)
    print(json.dumps(out, indent=1))
    ok = (out["server_errors"] == 0 and out["failed_requests"] == 0 and out["stale_count"] == 0
          and out["final_equals_clean_rebuild"])
    print("PASS" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
