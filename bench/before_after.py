"""Issue 13 before/after on one tree: full build (fresh process), no-change rebuild, cold start to /readyz, /ask p50/p99, RSS.

    python bench/before_after.py TREE INDEX_DIR [CORPUS]   # TREE: a checkout (git worktree) of the commit to measure
"""
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"  # ../shared/corpus beside the checkout
tree, index = Path(sys.argv[1]), Path(sys.argv[2])
if len(sys.argv) > 3:
    CORPUS = Path(sys.argv[3])
sys.path.insert(0, str(tree))
from bench.serve_bench import free_port, start_server, stop_server, QUESTIONS
import aiohttp
env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "QABOT_CORPUS_DIR": str(CORPUS),
       "QABOT_INDEX_DIR": str(index)}
py = sys.executable
def timed(args):
    t = time.perf_counter(); subprocess.run([py, "-m", "bot", *args], cwd=tree, env=env, check=True,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t
out = {"tree": str(tree)}
out["full_build_s"] = round(timed(["index", "--full"]), 2)
out["nochange_s"] = round(statistics.median(timed(["index"]) for _ in range(3)), 2)
async def load(base, conc, n):
    lat = []; qs = list(range(n))
    async with aiohttp.ClientSession() as s:
        async def c():
            while qs:
                i = qs.pop(); t = time.perf_counter()
                async with s.post(base + "/ask", json={"question": QUESTIONS[i % len(QUESTIONS)], "top_k": 5}) as r:
                    await r.read(); assert r.status == 200
                lat.append(time.perf_counter() - t)
        await asyncio.gather(*(c() for _ in range(conc)))
    lat.sort(); return round(lat[len(lat)//2]*1000, 1), round(lat[int(len(lat)*0.99)]*1000, 1)
starts = []
for _ in range(3):
    port = free_port(); proc, ready = start_server(index, CORPUS, port); starts.append(ready)
    if _ < 2: stop_server(proc)
out["cold_start_s"] = round(statistics.median(starts), 2)
base = f"http://127.0.0.1:{port}"
asyncio.run(load(base, 1, len(QUESTIONS)))
out["ask_c1_p50_p99_ms"] = asyncio.run(load(base, 1, 200))
out["ask_c8_p50_p99_ms"] = asyncio.run(load(base, 8, 200))
rss = int(open(f"/proc/{proc.pid}/status").read().split("VmRSS:")[1].split()[0]) // 1024
out["serve_rss_mb"] = rss
stop_server(proc)
print(json.dumps(out))
