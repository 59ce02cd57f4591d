"""Fit tuning.EVIDENCE_SHARE by 5-fold cross-validation on a labelled question set.

    python bench/cite_cut.py --index DIR [--questions ../shared/eval/dev.jsonl]

For every answerable question the Answerer plans its citations with no cut (share 0); each later citation's
evidence (citations.sentence_evidence) is compared with the first's. For each fold the share in 0, 0.1, ..., 1
that maximises citation precision + answer hit on the other folds is applied to the fold; the out-of-fold
numbers are printed beside the in-sample ones for every share.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import tuning  # noqa: E402
from bot.answer import citations  # noqa: E402
from bot.answer.answerer import Answerer  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.evaluation import load_questions, matched_gold  # noqa: E402
from bench.folds import stratified_folds  # noqa: E402

SHARES = [round(0.1 * i, 1) for i in range(11)]


def collect(answerer: Answerer, path: Path) -> list[dict]:
    """Per answered, answerable question: its uncut citations as (evidence, holds gold, interview) rows."""
    tuning.EVIDENCE_SHARE = 0.0  # plan every question with every chosen passage cited
    rows = []
    for q in load_questions(path):
        if not q.answerable:
            continue
        plan = answerer.plan(q.question, 5, q.project, q.adopter)
        if not plan.answered or not plan.hits:
            continue
        scores = plan.retrieval.scores
        weights = {t: plan.retriever.idf(t) for t in scores.analysis.topic_terms}
        cands = [{"evidence": citations.sentence_evidence(plan.retriever, h, weights), "src": h.chunk.source,
                  "gold": bool(matched_gold(h.chunk, q.gold))} for h in plan.hits]
        rows.append({"kind": q.kind, "across": plan.across, "cands": cands,
                     "gold_files": {g.file for g in q.gold}})
    return rows


def cut(row: dict, share: float) -> list[dict]:
    """citations.cite's rule on collected rows."""
    first, rest = row["cands"][0], row["cands"][1:]
    return [first] + [h for h in rest if (row["across"] and h["src"] != first["src"])
                      or h["evidence"] >= share * first["evidence"]]


def score(rows: list[tuple[dict, float]]) -> dict[str, float]:
    """Citation precision, answer hit and citations per answer."""
    kept = [cut(r, s) for r, s in rows]
    return {"precision": statistics.mean(sum(h["gold"] for h in k) / len(k) for k in kept),
            "answer_hit": statistics.mean(any(h["gold"] for h in k) for k in kept),
            "cited": statistics.mean(len(k) for k in kept)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    args = ap.parse_args()
    answerer = Answerer(Settings.from_env({"QABOT_INDEX_DIR": str(args.index)}))
    answerer.reload()
    rows = collect(answerer, args.questions)
    folds = stratified_folds(rows, lambda r: r["kind"])
    oof, chosen = [], []
    for i in range(5):
        train = [r for j in range(5) if j != i for r in folds[j]]
        best = max(SHARES, key=lambda s: sum(list(score([(r, s) for r in train]).values())[:2]))
        chosen.append(best)
        oof += [(r, best) for r in folds[i]]
    print(f"{len(rows)} answered questions; share chosen per fold: {chosen}")
    print("out of fold:", {k: round(v, 3) for k, v in score(oof).items()})
    for s in SHARES:
        print(f"share {s}: in sample", {k: round(v, 3) for k, v in score([(r, s) for r in rows]).items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
