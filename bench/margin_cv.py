"""Cross-validate one of the citation margins of bot/tuning.py on a labelled question set.

    python bench/margin_cv.py --index DIR [--questions ../shared/eval/dev.jsonl] [--param CITE_MARGIN]
                              [--grid 5,6,6.5,7,8,9,10,12,16]

`CITE_MARGIN`: a passage whose fused score is this far below the best is not cited (questions about one
adopter, and an interview's further passages across adopters); it also bounds the passages the refusal
decision weighs. `SPAN_MARGIN`: across adopters, an interview whose best passage is this far below the best
one is not cited. For each value of the grid the whole question set is answered once (`qabot eval`'s scorer,
in-process); then, over 5 folds stratified by kind (the folds of bench/cite_cut.py), each fold takes the value
that maximises the objective on the other four: answer hit + citation precision + unanswerable questions
flagged for CITE_MARGIN, thematic coverage + citation precision for SPAN_MARGIN (ties: the value nearest
today's). Prints the value chosen per fold, the out-of-fold numbers and the in-sample ones per value.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import tuning  # noqa: E402
from bot.answer.answerer import Answerer  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.evaluation import evaluate, load_questions  # noqa: E402
from bench.folds import stratified_folds  # noqa: E402


def _mean(xs: list[float]) -> float:
    return statistics.mean(xs) if xs else 0.0


def parts(rows: list[dict]) -> dict[str, float]:
    """The objective's parts over some questions' eval rows."""
    answerable = [r for r in rows if r["answerable"]]
    return {"answer_hit": _mean([float(bool(r["answer_hit"])) for r in answerable]),
            "citation_precision": _mean([r["citation_precision"] for r in answerable
                                         if r.get("citation_precision") is not None]),
            "unanswerable_flagged": _mean([float(not r["answered"]) for r in rows if not r["answerable"]]),
            "thematic_coverage": _mean([r["gold_files_cited"] for r in answerable
                                        if r["kind"] == "thematic" and r.get("gold_files_cited") is not None])}


OBJECTIVES = {"CITE_MARGIN": ("answer_hit", "citation_precision", "unanswerable_flagged"),
              "SPAN_MARGIN": ("thematic_coverage", "citation_precision")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    ap.add_argument("--param", choices=sorted(OBJECTIVES), default="CITE_MARGIN")
    ap.add_argument("--grid", default="5,6,6.5,7,8,9,10,12,16")
    args = ap.parse_args()
    grid = [float(v) for v in args.grid.split(",")]
    today = getattr(tuning, args.param)
    answerer = Answerer(Settings.from_env({"QABOT_INDEX_DIR": str(args.index)}))
    answerer.reload()
    questions = load_questions(args.questions)
    runs: dict[float, dict[str, dict]] = {}
    for value in grid:
        setattr(tuning, args.param, value)
        report = evaluate(answerer, questions, corpus=answerer.index.chunks)
        runs[value] = {r["id"]: r for r in report["questions"]}
    setattr(tuning, args.param, today)
    keys = OBJECTIVES[args.param]
    score = lambda value, ids: sum(parts([runs[value][i] for i in ids])[k] for k in keys)  # noqa: E731
    ids = [q.id for q in questions]
    folds = [[q.id for q in fold] for fold in stratified_folds(questions, lambda q: q.kind)]
    chosen, oof = [], []
    for f in range(5):
        train = [i for j in range(5) if j != f for i in folds[j]]
        best = max(grid, key=lambda v: (round(score(v, train), 9), -abs(v - today)))
        chosen.append(best)
        oof += [runs[best][i] for i in folds[f]]
    fmt = lambda d: ", ".join(f"{k} {d[k]:.3f}" for k in keys)  # noqa: E731
    print(f"{args.param}: {len(ids)} questions; objective {' + '.join(keys)}; today {today}")
    print(f"chosen per fold: {chosen}")
    print(f"out of fold: {fmt(parts(oof))}")
    for value in grid:
        print(f"{value:>5}: in sample {fmt(parts(list(runs[value].values())))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
