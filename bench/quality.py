"""Retrieval quality: qabot against the BM25 and plain-dense baselines, same index, same questions, one run.

    python bench/quality.py [QUESTIONS.jsonl ...] [--index DIR] [--systems qabot,bm25,dense] [--json OUT]

Prints a markdown table per question file (the "Retrieval quality" section of BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QUESTIONS = [ROOT.parent / "shared" / "eval" / "dev.jsonl", ROOT / "bench" / "heldout.jsonl",
                     ROOT / "bench" / "heldout2.jsonl"]
RETRIEVAL_COLS = ("recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10", "gold_coverage@5",
                  "passage_words", "search_p50_ms")
ANSWER_COLS = ("quote_hit", "thematic_coverage", "false_refusals", "unanswerable_flagged", "p50_ms")


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}" if v <= 1.0 else f"{v:.0f}"
    return str(v)


def table(rows: list[tuple[str, dict]], cols: tuple[str, ...]) -> str:
    """A markdown table of the chosen overall metrics, one row per system."""
    lines = ["| system | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, overall in rows:
        lines.append(f"| {name} | " + " | ".join(_fmt(overall.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Evaluate the chosen systems on each question file and print the tables."""
    from bench.baseline_bm25 import BM25Baseline
    from bench.baseline_dense import DenseBaseline
    from bot.answer.answerer import Answerer
    from bot.config import Settings
    from bot.evaluation import evaluate, load_questions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions", nargs="*", type=Path, default=DEFAULT_QUESTIONS)
    ap.add_argument("--index", type=Path, default=None, help="index folder [QABOT_INDEX_DIR]")
    ap.add_argument("--systems", default="qabot,bm25,dense")
    ap.add_argument("--json", type=Path, default=None, help="also write the full reports here")
    args = ap.parse_args(argv)

    settings = Settings.from_env()
    if args.index:
        settings = settings.replace(index_dir=args.index)
    answerer = Answerer(settings)
    answerer.reload()
    chunks = answerer.index.chunks
    systems = {"qabot": ("qabot (hybrid)", answerer, True),
               "bm25": (BM25Baseline.name, BM25Baseline(chunks), False),
               "dense": (DenseBaseline.name, DenseBaseline(answerer.index, answerer.embedder), False)}
    chosen = [s.strip() for s in args.systems.split(",") if s.strip()]
    answerer.embedder.embed_query("warm up")
    everything = {}
    for path in args.questions:
        questions = load_questions(path)
        rows, answer_rows = [], []
        for key in chosen:
            name, system, answers = systems[key]
            report = evaluate(system, questions, corpus=chunks, answers=answers, answer_k=settings.top_k)
            everything[f"{path.name}:{key}"] = report
            rows.append((name, report["overall"]))
            if answers:
                answer_rows.append((name, report["overall"]))
        n = len(questions)
        print(f"\n### {path.name} ({n} questions, top 5 unless noted, {len(chunks)} passages)\n")
        print(table(rows, RETRIEVAL_COLS))
        if answer_rows:
            print()
            print(table(answer_rows, ANSWER_COLS))
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
