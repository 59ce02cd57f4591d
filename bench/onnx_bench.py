"""Question encoding: the torch model vs its ONNX exports (fp32 and int8), side by side in one run.

    python bench/onnx_bench.py --index DIR [--questions FILE.jsonl ...]

For each encoder: one-query latency (median and p99 over the questions, repeated, one thread), the cosine of its
query vectors to the torch model's, and the metrics of `qabot eval` on each question file with that encoder
(passage and sentence vectors are the index's, made by the torch model). The exports are made in DIR/encoder
if missing (as `qabot index` does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.embed.embedders import OnnxQueryEmbedder, SentenceTransformerEmbedder  # noqa: E402

METRICS = ("recall@1", "recall@5", "mrr@10", "ndcg@10", "quote_hit", "thematic_coverage",
           "unanswerable_flagged", "false_refusals")


def latency(embed, questions: list[str], repeat: int = 5) -> dict:
    """Median and p99 ms of one-query encodes."""
    embed("warm up")
    times = []
    for _ in range(repeat):
        for q in questions:
            t = time.perf_counter()
            embed(q)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(times[int(0.99 * (len(times) - 1))], 2)}


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print JSON."""
    import torch

    from bot.answer.answerer import Answerer
    from bot.config import Settings
    from bot.evaluation import evaluate, load_questions

    ap = argparse.ArgumentParser(description="torch vs ONNX question encoding")
    ap.add_argument("--index", type=Path, required=True, help="a real-model index of the corpus")
    ap.add_argument("--questions", type=Path, nargs="*",
                    default=[ROOT.parent / "shared" / "eval" / "dev.jsonl", ROOT / "bench" / "heldout.jsonl",
                             ROOT / "bench" / "heldout2.jsonl"])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    documents = SentenceTransformerEmbedder()
    documents.warm_up()
    encoders = {"torch": documents}
    for kind in ("onnx", "onnx-int8"):
        encoders[kind] = OnnxQueryEmbedder(documents, args.index / "encoder", kind)
        encoders[kind].prepare()
        encoders[kind].warm_up()
    sets = {path.name: load_questions(path) for path in args.questions}
    texts = [q.question for qs in sets.values() for q in qs]
    reference = np.stack([documents.embed_query(t) for t in texts])
    out: dict = {}
    for name, embedder in encoders.items():
        vectors = np.stack([embedder.embed_query(t) for t in texts])
        cosine = (vectors * reference).sum(axis=1)
        row = {**latency(embedder.embed_query, texts), "cosine_min": round(float(cosine.min()), 4),
               "cosine_mean": round(float(cosine.mean()), 4)}
        answerer = Answerer(Settings(index_dir=args.index), embedder=embedder)
        answerer.reload()
        for set_name, questions in sets.items():
            report = evaluate(answerer, questions, top_k=10, answer_k=5, corpus=answerer.index.chunks)
            row[set_name] = {k: round(report["overall"][k], 3) for k in METRICS if k in report["overall"]}
        out[name] = row
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
