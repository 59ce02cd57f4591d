"""How closely a large index's sampled best-sentence BM25 (bot/search/sentence_keywords.py) ranks like the exact one.

    python bench/sentence_kw_bench.py --index DIR [--candidates 200] [--sample 4096]

Loads the index twice in one process: once with a BM25 index of every sentence (the exact path small indexes
use; at 10,000 interviews it needs ~1.3 GB at peak and ~25 s), once as served (sampled statistics, candidate
passages scored exactly). Questions are embedded with the fake embedder (the synthetic indexes hold stand-in
vectors of the same kind), so the dense signals are the same in both. Prints one JSON object: top-5/top-10 overlap,
questions with an identical top 5, best-sentence BM25 error on the exact path's top 50, and build time and
memory of each path.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serve_bench import QUESTIONS  # noqa: E402
from bot.search import retriever as retrieval
from bot.search import state
from bot.search import sentence_keywords as sentencekw
from bot.index import store  # noqa: E402
from tests.fakes import FakeEmbedder  # noqa: E402

# More generic questions (not from the evaluation sets), short and long, with and without names.
EXTRA = [
    "why scale to zero?", "what did they use before?", "how do they monitor serving?",
    "what about cold starts and latency?", "How do teams handle multi-tenancy and isolation?",
    "What did adopters say about documentation and onboarding?", "Which cloud providers are used?",
    "How are costs kept under control?", "What testing happens before a release?",
    "What was hard about the migration?", "How many clusters do they run?", "Do they contribute upstream?",
]


def rss_mb() -> float:
    """Resident memory of this process now, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison."""
    ap = argparse.ArgumentParser(description="sampled vs exact best-sentence BM25 on a large index")
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--candidates", type=int, default=sentencekw.CANDIDATES)
    ap.add_argument("--sample", type=int, default=sentencekw.SAMPLE)
    args = ap.parse_args(argv)
    manifest = store.read_manifest(args.index)
    embedder = FakeEmbedder(name=manifest.model, dim=manifest.dim)
    index = store.load(args.index, manifest.model)
    if len(index.chunks) <= state.SENTENCE_KW_THRESHOLD:
        ap.error(f"{len(index.chunks)} passages: below the threshold, the index is ranked exactly anyway")
    sentencekw.SAMPLE, sentencekw.CANDIDATES = args.sample, args.candidates
    before = rss_mb()
    started = time.perf_counter()
    sampled = retrieval.Retriever(index, embedder)
    sampled_s, sampled_mb = time.perf_counter() - started, rss_mb() - before
    threshold = state.SENTENCE_KW_THRESHOLD
    state.SENTENCE_KW_THRESHOLD = 10**12
    started, before = time.perf_counter(), rss_mb()
    exact = retrieval.Retriever(index, embedder)
    exact_s, exact_mb = time.perf_counter() - started, rss_mb() - before
    state.SENTENCE_KW_THRESHOLD = threshold
    top5, top10, same, errors = [], [], 0, []
    questions = list(QUESTIONS) + EXTRA
    for q in questions:
        want = [h.row for h in exact.retrieve(q, 10).hits]
        got = [h.row for h in sampled.retrieve(q, 10).hits]
        top5.append(len(set(want[:5]) & set(got[:5])) / 5)
        top10.append(len(set(want) & set(got)) / 10)
        same += want[:5] == got[:5]
        s = exact.score(q)
        best = np.zeros(len(index.chunks), dtype=np.float32)
        np.maximum.at(best, exact._sentence_owner, s.sentence_kw)
        rows = np.argsort(-s.fused)[:50]
        values, _, _ = sampled._sampled_kw.scores(s.query_terms, s.body, s.fused)
        scale = float(best.max()) or 1.0
        errors.append(float(np.abs(values[rows] - best[rows]).max()) / scale)
    print(json.dumps({
        "index": str(args.index), "passages": len(index.chunks), "questions": len(questions),
        "sample": args.sample, "candidates": args.candidates,
        "top5_overlap": round(float(np.mean(top5)), 4), "top10_overlap": round(float(np.mean(top10)), 4),
        "identical_top5": same, "best_sentence_error_top50_rel_max": round(float(np.max(errors)), 4),
        "best_sentence_error_top50_rel_median": round(float(np.median(errors)), 4),
        "sampled_build_s": round(sampled_s, 1), "sampled_build_mb": round(sampled_mb),
        "exact_build_s": round(exact_s, 1), "exact_build_mb": round(exact_mb),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
