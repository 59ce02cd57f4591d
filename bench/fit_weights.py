"""Fit the fusion weights from labelled questions, and report them out-of-fold.

    python bench/fit_weights.py --index DIR [--questions ../shared/eval/dev.jsonl] [--folds 5] [--write]

How the weights are fit (nothing is set by hand):
1. Every question is scored once: `Retriever.features` gives each passage's signals (bot/search/fusion.py).
   A passage is relevant when it comes from a gold file and holds >= 60% of a gold quote's words (the same rule
   as `qabot eval`).
2. Pairwise logistic regression (scikit-learn, no intercept): for each training question, every relevant
   passage is paired with its 40 hardest irrelevant ones (highest by the plain sum of the signals) and 40 drawn
   at random; the model learns w so that w·(relevant - irrelevant) > 0. Its L2 strength C is picked among
   three values by mean reciprocal rank inside the training folds (an inner split), never on the held-out fold.
   Then coordinate ascent on (MRR + recall@5) / 2 of the training questions refines w. The weights of the
   signals that say "this is what the question names" are kept >= 0 (NONNEGATIVE).
   The refusal model (bot/answer/coverage.py, Answerability) is a balanced logistic regression on each
   question's evidence, cut where at most 3% of the answerable training questions are refused.
3. The diversity penalty (subtracted per passage already ranked from the same interview) is picked from a grid
   by recall@5 + MRR on the training folds, with w fixed.
4. k folds stratified by question kind: each fold's questions are answered by weights fit on the other folds;
   the report pools those held-out answers (the out-of-fold numbers) and, beside them, the in-sample numbers
   of weights fit on all questions, and the hand-set weights for reference.
`--write` saves the weights fit on all questions to bot/search/weights.json, with the out-of-fold numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answer.answerer import Answerer  # noqa: E402
from bot.answer.coverage import Answerability, evidence_features  # noqa: E402
from bot.answer.relevance import RelevanceCut, hit_features  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.eval_report import format_report  # noqa: E402
from bot.evaluation import (EvalQuestion, QuestionResult, build_report, load_questions,  # noqa: E402
                            matched_gold, score_questions)
from bot.search.fusion import SIGNALS, WEIGHTS_FILE, FusionWeights, fuse  # noqa: E402
from bot.search.query import matches  # noqa: E402

HARD_NEGATIVES = 40
RANDOM_NEGATIVES = 40
C_GRID = (0.1, 1.0, 10.0)
PENALTY_GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)  # in units of the fused score's spread over passages
SEED = 0
# Signals that say the passage is of what the question names or describes: their weights are kept >= 0, so a
# named adopter's passages never rank below the others for being named (noisy labels pulled them negative).
NONNEGATIVE = ("named", "project", "scope", "described", "described_dense")
_NONNEG = np.array([name in NONNEGATIVE for name in SIGNALS])
ASCENT = True  # refine the logistic weights by coordinate ascent on the ranking objective
ANSWERABILITY = True  # fit the refusal model too (else the hand rule of bot/answer/coverage.py decides)
RELEVANCE = True  # fit the citation cut too (else every selected passage is cited)
FALSE_REFUSALS = 0.03  # share of answerable training questions the refusal cut may refuse


@dataclass
class Sample:
    """One answerable question's candidate passages: their signals and which hold gold evidence."""

    features: np.ndarray  # (n_candidates, len(SIGNALS))
    relevant: np.ndarray  # (n_candidates,) bool


def collect(answerer: Answerer, questions: list[EvalQuestion]) -> dict[str, Sample]:
    """Signals and relevance labels of every answerable question's passages (filters applied)."""
    retriever = answerer._current()  # noqa: SLF001 - a bench script reads the live retriever
    chunks = retriever.index.chunks
    out: dict[str, Sample] = {}
    for q in questions:
        if not q.answerable:
            continue
        F, _ = retriever.features(q.question, adopter=q.adopter, project=q.project)
        rows = np.array([i for i, c in enumerate(chunks) if matches(c, q.project, q.adopter)], dtype=np.int64)
        relevant = np.array([bool(matched_gold(chunks[i], q.gold)) for i in rows])
        if relevant.any():
            out[q.id] = Sample(F[rows], relevant)
    return out


def pairs(samples: list[Sample], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise differences (relevant - irrelevant) and their mirror images, with labels 1 and 0."""
    diffs = []
    for s in samples:
        neg = np.flatnonzero(~s.relevant)
        if not len(neg):
            continue
        hard = neg[np.argsort(-s.features[neg].sum(axis=1))[:HARD_NEGATIVES]]
        rand = rng.choice(neg, min(RANDOM_NEGATIVES, len(neg)), replace=False)
        chosen = np.unique(np.concatenate([hard, rand]))
        for p in np.flatnonzero(s.relevant):
            diffs.append(s.features[p] - s.features[chosen])
    X = np.concatenate(diffs)
    return np.concatenate([X, -X]), np.concatenate([np.ones(len(X)), np.zeros(len(X))])


def fit_w(samples: list[Sample], C: float, seed: int = SEED) -> np.ndarray:
    """Weights from pairwise logistic regression over the samples."""
    from sklearn.linear_model import LogisticRegression

    X, y = pairs(samples, np.random.default_rng(seed))
    model = LogisticRegression(C=C, fit_intercept=False, max_iter=2000)
    model.fit(X, y)
    return np.where(_NONNEG, np.maximum(model.coef_[0], 0.0), model.coef_[0]).astype(np.float32)


def mrr(samples: list[Sample], w: np.ndarray) -> float:
    """Mean reciprocal rank of the first relevant passage by w alone (no diversity)."""
    total = 0.0
    for s in samples:
        fused = fuse(s.features, w)
        best = fused[s.relevant].max()
        total += 1.0 / (1 + int((fused > best).sum()))
    return total / max(1, len(samples))


def objective(samples: list[Sample], w: np.ndarray) -> float:
    """Mean of MRR and recall@5 of the first relevant passage by w alone: what the ranking is judged on."""
    total = 0.0
    for s in samples:
        fused = fuse(s.features, w)
        rank = 1 + int((fused > fused[s.relevant].max()).sum())
        total += 0.5 / rank + 0.5 * (rank <= 5)
    return total / max(1, len(samples))


def ascend(samples: list[Sample], w: np.ndarray, rounds: int = 8) -> np.ndarray:
    """Coordinate ascent on `objective` from w: each weight in turn tries steps of a few sizes, both ways,
    and keeps the best; stops when a round changes nothing. Ties keep the smaller change."""
    w = w.astype(np.float64).copy()
    best = objective(samples, w)
    scale = float(np.abs(w).max()) or 1.0
    for _ in range(rounds):
        moved = False
        for i in range(len(w)):
            for step in (0.5, 0.2, 0.05):
                for sign in (1.0, -1.0):
                    trial = w.copy()
                    trial[i] += sign * step * scale
                    if _NONNEG[i] and trial[i] < 0:
                        continue
                    score = objective(samples, trial)
                    if score > best + 1e-9:
                        w, best, moved = trial, score, True
        if not moved:
            break
    return w.astype(np.float32)


def choose_c(samples: list[Sample]) -> float:
    """The C with the best MRR on an inner 3-way split of the training samples."""
    order = np.random.default_rng(SEED).permutation(len(samples))
    best_c, best = C_GRID[0], -1.0
    for C in C_GRID:
        score = 0.0
        for k in range(3):
            test = [samples[i] for i in order[k::3]]
            train = [samples[i] for j in range(3) if j != k for i in order[j::3]]
            score += mrr(test, fit_w(train, C))
        if score > best:
            best_c, best = C, score
    return best_c


def run(answerer: Answerer, questions: list[EvalQuestion], fusion: FusionWeights | None,
        top_k: int) -> list[QuestionResult]:
    """The questions answered by the full pipeline with these fusion weights."""
    base = answerer._current()  # noqa: SLF001
    answerer._retriever = base.with_fusion(fusion)  # noqa: SLF001 - swap the ranking, keep the index
    try:
        results, _ = score_questions(answerer, questions, top_k=10, answer_k=top_k, corpus=base.index.chunks)
    finally:
        answerer._retriever = base  # noqa: SLF001
    return results


def choose_penalty(answerer: Answerer, questions: list[EvalQuestion], w: np.ndarray, spread: float,
                   top_k: int) -> float:
    """The diversity penalty with the best recall@5 + MRR on these (training) questions."""
    best_p, best = 0.0, -1.0
    for unit in PENALTY_GRID:
        rep = build_report(run(answerer, questions, FusionWeights(_named(w), unit * spread), top_k))["overall"]
        score = (rep.get("recall@5") or 0) + (rep.get("mrr@10") or 0)
        if score > best + 1e-9:
            best_p, best = unit * spread, score
    return best_p


def _named(w: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(SIGNALS, w)}


def fit(answerer: Answerer, questions: list[EvalQuestion], samples: dict[str, Sample], top_k: int,
        with_penalty: bool = True) -> FusionWeights:
    """Fusion weights fit on these questions (C by inner split, then the penalty)."""
    train = [samples[q.id] for q in questions if q.id in samples]
    C = choose_c(train)
    w = fit_w(train, C)
    if ASCENT:
        w = ascend(train, w)
    spread = float(np.mean([fuse(s.features, w).std() for s in train]))
    penalty = choose_penalty(answerer, questions, w, spread, top_k) if with_penalty else 0.0
    return FusionWeights(_named(w), penalty, {"C": C})


def evidence_rows(answerer: Answerer, questions: list[EvalQuestion], fusion: FusionWeights | None,
                  top_k: int) -> np.ndarray:
    """The answerability features of each question's evidence under these ranking weights."""
    base = answerer._current()  # noqa: SLF001
    answerer._retriever = base.with_fusion(fusion)  # noqa: SLF001
    try:
        return np.array([evidence_features(answerer.plan(q.question, top_k, q.project, q.adopter).evidence)
                         for q in questions], dtype=np.float64)
    finally:
        answerer._retriever = base  # noqa: SLF001


def fit_answerability(X: np.ndarray, answerable: np.ndarray) -> Answerability:
    """A balanced logistic model of answerable vs not, cut where at most FALSE_REFUSALS of the answerable
    training questions would be refused (the cut is the highest that keeps that)."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    Z = (X - mean) / scale
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(Z, answerable)
    p = model.predict_proba(Z)[:, 1]
    pos = np.sort(p[answerable])
    threshold = float(pos[int(np.floor(FALSE_REFUSALS * len(pos)))]) if len(pos) else 0.5
    return Answerability(tuple(float(c) for c in model.coef_[0]), float(model.intercept_[0]), threshold,
                         tuple(float(m) for m in mean), tuple(float(v) for v in scale))


def fit_relevance(answerer: Answerer, questions: list[EvalQuestion], fusion: FusionWeights,
                  top_k: int) -> RelevanceCut:
    """A logistic model of "this candidate citation (past the first) holds gold evidence", on the answerable
    training questions' uncut citations, cut at the probability with the best citation F1 there."""
    from sklearn.linear_model import LogisticRegression

    base = answerer._current()  # noqa: SLF001
    answerer._retriever = base.with_fusion(replace(fusion, relevance=None))  # noqa: SLF001
    rows, labels, per_question = [], [], []
    try:
        for q in questions:
            if not q.answerable:
                continue
            planned = answerer.plan(q.question, top_k, q.project, q.adopter)
            if planned.across:
                continue  # questions across adopters are not cut (see Answerer.plan)
            hits = planned.hits
            if not hits:
                continue
            held = [bool(matched_gold(h.chunk, q.gold)) for h in hits]
            start = len(rows)
            rows += [hit_features(h, hits[0], r) for r, h in enumerate(hits[1:], 1)]
            labels += held[1:]
            per_question.append((held[0], start, len(rows), sum(held)))
    finally:
        answerer._retriever = base  # noqa: SLF001
    X, y = np.array(rows, dtype=np.float64), np.array(labels)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=1.0, max_iter=2000).fit((X - mean) / scale, y)
    p = model.predict_proba((X - mean) / scale)[:, 1]
    best_t, best_f1 = 1.01, -1.0
    for t in np.unique(np.concatenate([p, [1.01]])):
        tp = cited = relevant = 0
        for first, a, b, total in per_question:
            keep = p[a:b] >= t
            tp += first + int(y[a:b][keep].sum())
            cited += 1 + int(keep.sum())
            relevant += total
        f1 = 2 * tp / (cited + relevant) if cited + relevant else 0.0
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = float(t), f1
    return RelevanceCut(tuple(float(c) for c in model.coef_[0]), float(model.intercept_[0]), best_t,
                        tuple(float(m) for m in mean), tuple(float(v) for v in scale))


def folds(questions: list[EvalQuestion], k: int) -> list[list[int]]:
    """Question indexes of k folds stratified by kind (seeded)."""
    from sklearn.model_selection import StratifiedKFold

    kinds = [q.kind for q in questions]
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=SEED)
    return [list(test) for _, test in splitter.split(np.zeros(len(kinds)), kinds)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="save the all-questions fit to bot/search/weights.json")
    parser.add_argument("--json", type=Path, help="write the three reports here")
    parser.add_argument("--no-ascent", action="store_true", help="logistic weights only")
    parser.add_argument("--no-answerability", action="store_true", help="keep the hand-set refusal rule")
    parser.add_argument("--no-relevance", action="store_true", help="cite every selected passage")
    args = parser.parse_args()
    global ASCENT, ANSWERABILITY, RELEVANCE
    ASCENT, ANSWERABILITY, RELEVANCE = not args.no_ascent, not args.no_answerability, not args.no_relevance

    settings = Settings(index_dir=args.index, state_dir=args.index.parent / "var")
    answerer = Answerer(settings)
    answerer.reload()
    questions = load_questions(args.questions)
    samples = collect(answerer, questions)

    oof: list[QuestionResult] = []
    fold_weights = []
    for n, test_idx in enumerate(folds(questions, args.folds), 1):
        test = [questions[i] for i in test_idx]
        train = [q for i, q in enumerate(questions) if i not in set(test_idx)]
        fusion = fit(answerer, train, samples, args.top_k)
        if ANSWERABILITY:
            model = fit_answerability(evidence_rows(answerer, train, fusion, args.top_k),
                                      np.array([q.answerable for q in train]))
            fusion = replace(fusion, answerability=model.to_dict())
        if RELEVANCE:
            fusion = replace(fusion, relevance=fit_relevance(answerer, train, fusion, args.top_k).to_dict())
        fold_weights.append(fusion)
        oof += run(answerer, test, fusion, args.top_k)
        print(f"fold {n}: C={fusion.fit['C']} penalty={fusion.repeat_penalty:.3f}", file=sys.stderr)
    everything = fit(answerer, questions, samples, args.top_k)
    everything = replace(everything, answerability=fit_answerability(
        evidence_rows(answerer, questions, everything, args.top_k),
        np.array([q.answerable for q in questions])).to_dict())
    if RELEVANCE:
        everything = replace(everything, relevance=fit_relevance(answerer, questions, everything,
                                                                 args.top_k).to_dict())
    reports = {"out_of_fold": build_report(oof), "in_sample": build_report(run(answerer, questions, everything,
                                                                                args.top_k)),
               "hand_set": build_report(run(answerer, questions, None, args.top_k))}
    for name, rep in reports.items():
        print(f"\n== {name}\n{format_report(rep).split(chr(10) + 'to look at')[0]}")
    spread = np.array([f.vector() for f in fold_weights])
    print("\nweights (all questions; across folds: min..max)")
    for i, name in enumerate(SIGNALS):
        print(f"  {name:16s} {everything.weights[name]:8.3f}   {spread[:, i].min():8.3f} .. {spread[:, i].max():8.3f}")
    print(f"  repeat_penalty   {everything.repeat_penalty:8.3f}")
    if args.json:
        args.json.write_text(json.dumps({k: {"overall": v["overall"], "by_kind": v["by_kind"]}
                                         for k, v in reports.items()}, indent=2))
    if args.write:
        o = reports["out_of_fold"]["overall"]
        provenance = {"method": "pairwise logistic regression (scikit-learn), C by inner 3-way split, "
                                "diversity penalty by grid on the training questions",
                      "C": everything.fit["C"], "questions": len(questions), "folds": args.folds,
                      "data": args.questions.name, "date": dt.date.today().isoformat(),
                      "out_of_fold": {k: o.get(k) for k in ("recall@5", "mrr@10", "quote_hit", "thematic_coverage",
                                                              "false_refusals", "unanswerable_flagged")},
                      "script": "bench/fit_weights.py"}
        WEIGHTS_FILE.write_text(replace(everything, fit=provenance).to_json())
        print(f"wrote {WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
