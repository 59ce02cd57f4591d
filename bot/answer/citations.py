"""Which of the chosen passages an answer cites: each one after the first must carry the question's words.

A passage's evidence is its best sentence's share of the question's content words, each word weighed by its
IDF (so "zero" in "scale to zero" counts more than "scale"). A passage is cited when its evidence is at least
`EVIDENCE_SHARE` of the first passage's, or when it is another interview's passage in an answer across
adopters (one per interview, chosen for coverage by `interview_order`). The first passage is always cited: the
refusal decision (coverage.py) is what guards it.

EVIDENCE_SHARE was fit on ../shared/eval/dev.jsonl with bench/cite_cut.py: 5-fold cross-validation stratified
by kind, the share chosen on the training folds from 0, 0.1, ..., 1 to maximise citation precision + answer hit
(over answered questions). Out of fold, precision went from 0.378 to 0.491 and answer hit from 0.870 to 0.831;
0.6 is the share the whole set picks (BENCHMARKS.md, "Citations").
"""

from __future__ import annotations

from typing import Sequence

from bot.search.retriever import Hit, Retriever

EVIDENCE_SHARE = 0.6


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
    share = EVIDENCE_SHARE if share is None else share
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
