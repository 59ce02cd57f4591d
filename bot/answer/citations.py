"""Which ranked passages an answer cites: chosen by score (`select_citations`, or one per interview for a question
across adopters, `spread_citations`), then each one after the first must carry the question's words (`cite`).

A passage's evidence is its best sentence's share of the question's content words, each word weighed by its
IDF (so "zero" in "scale to zero" counts more than "scale"). A passage is cited when its evidence is at least
`EVIDENCE_SHARE` (bot/tuning.py) of the first passage's, or when it is another interview's passage in an answer across
adopters (one per interview, chosen for coverage by `interview_order`). The first passage is always cited: the
refusal decision (coverage.py) is what guards it.

EVIDENCE_SHARE was fit on ../shared/eval/dev.jsonl with bench/cite_cut.py: 5-fold cross-validation stratified
by kind, the share chosen on the training folds from 0, 0.1, ..., 1 to maximise citation precision + answer hit
(over answered questions). Out of fold, precision went from 0.378 to 0.491 and answer hit from 0.870 to 0.831;
0.6 is the share the whole set picks (BENCHMARKS.md, "Citations").
"""

from __future__ import annotations

from typing import Sequence

from bot import tuning
from bot.search.retriever import Hit, Retrieval, Retriever
from bot.tuning import INTERVIEW_KEYWORD, PROJECT_PENALTY, SECOND_PASSAGE


def sentence_evidence(retriever: Retriever, hit: Hit, weights: dict[str, float]) -> float:
    """The IDF-weighted share of the question's words held by the passage's best sentence (0-1)."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    best = max((sum(w for t, w in weights.items() if t in sentence) for sentence in retriever.sentence_terms(hit.row)),
               default=0.0)
    return best / total


def cite(retriever: Retriever, hits: Sequence[Hit], query_terms: Sequence[str], across: bool,
         share: float | None = None) -> list[Hit]:
    """The hits worth citing, in their order (see the module doc); `share` defaults to EVIDENCE_SHARE."""
    share = tuning.EVIDENCE_SHARE if share is None else share  # read at call time: bench/cite_cut.py sets it
    if not hits:
        return []
    weights = {t: retriever.idf(t) for t in set(query_terms)}
    if not weights:  # nothing to weigh evidence by (a question of stop words): keep the choice as it is
        return list(hits)
    first = hits[0]
    floor = share * sentence_evidence(retriever, first, weights)
    return [first] + [h for h in hits[1:]
                      if (across and h.chunk.source != first.chunk.source)
                      or sentence_evidence(retriever, h, weights) >= floor]


def select_citations(retrieval: Retrieval, top_k: int, per_interview: int | None,
                     margin: float | None = None) -> list[Hit]:
    """The hits to cite: at most `per_interview` from one interview, none more than `margin` (default
    CITE_MARGIN) below the best."""
    margin = tuning.CITE_MARGIN if margin is None else margin  # read at call time: bench/margin_cv.py sets it
    picked: list[Hit] = []
    taken: dict[str, int] = {}
    best = retrieval.hits[0].score if retrieval.hits else 0.0
    for hit in retrieval.hits:
        if len(picked) >= top_k:
            break
        if picked and hit.score < best - margin:
            break
        if per_interview is not None and taken.get(hit.chunk.source, 0) >= per_interview:
            continue
        picked.append(hit)
        taken[hit.chunk.source] = taken.get(hit.chunk.source, 0) + 1
    return picked


def interview_order(retrieval: Retrieval, second: float = SECOND_PASSAGE, keyword: float = INTERVIEW_KEYWORD,
                    margin: float | None = None, project_penalty: float = PROJECT_PENALTY) -> list[Hit]:
    """Each interview's best hit, interviews ordered by their evidence as a whole (questions spanning adopters).

    An interview's score is its best passage's, plus `second` times its second-best candidate's (its best
    again when it has one candidate: one passage that answers is enough), plus `keyword` times the standard
    score of the question's BM25 over the whole interview; interviews whose best passage is more than
    `margin` below the top one are left out.
    """
    if not retrieval.hits:
        return []
    margin = tuning.SPAN_MARGIN if margin is None else margin  # read at call time: bench/margin_cv.py sets it
    best: dict[str, Hit] = {}
    runner_up: dict[str, float] = {}
    for hit in retrieval.hits:
        if hit.chunk.source not in best:
            best[hit.chunk.source] = hit
        else:
            runner_up.setdefault(hit.chunk.source, hit.score)
    top = retrieval.hits[0].score
    kw = retrieval.scores.interview_kw

    def evidence(hit: Hit) -> float:
        whole = float(kw[hit.doc]) if kw is not None and 0 <= hit.doc < len(kw) else 0.0
        return hit.score + second * runner_up.get(hit.chunk.source, hit.score) + keyword * whole

    kept = sorted((h for h in best.values() if h.score >= top - margin), key=evidence, reverse=True)
    if not project_penalty or retrieval.scores.projects or len({h.chunk.project for h in kept}) < 2:
        return kept
    # A question about adopters in general (no project named): each interview already taken from a project
    # costs the next interview of that project `project_penalty`, so one project's interviews don't fill
    # every place.
    ordered: list[Hit] = []
    taken: dict[str, int] = {}
    while kept:
        pick = max(kept, key=lambda h: evidence(h) - project_penalty * taken.get(h.chunk.project, 0))
        kept.remove(pick)
        ordered.append(pick)
        taken[pick.chunk.project] = taken.get(pick.chunk.project, 0) + 1
    return ordered


def spread_citations(retrieval: Retrieval, top_k: int, per_interview: int = 1,
                     margin: float | None = None) -> list[Hit]:
    """Citations for a question spanning adopters: the best passage of each interview in `interview_order`;
    when fewer interviews than `top_k` are left, their next passages (up to `per_interview` each, none more
    than `margin` below the best)."""
    picked = interview_order(retrieval)[:top_k]
    if len(picked) >= top_k or per_interview <= 1 or not picked:
        return picked
    floor = retrieval.hits[0].score - (tuning.CITE_MARGIN if margin is None else margin)
    more: dict[str, list[Hit]] = {h.chunk.source: [] for h in picked}
    chosen = {id(h) for h in picked}
    for hit in retrieval.hits:
        if hit.chunk.source in more and id(hit) not in chosen and hit.score >= floor:
            more[hit.chunk.source].append(hit)
    firsts = list(picked)
    for extra in range(per_interview - 1):
        for first in firsts:
            if len(picked) >= top_k:
                return picked
            queue = more[first.chunk.source]
            if len(queue) > extra:
                picked.append(queue[extra])
    return picked
