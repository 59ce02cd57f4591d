"""Decide whether the interviews answer a question, from how well the best passages match it."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from bot.index.keyword import terms
from bot.search.analysis import QueryAnalysis
from bot.search.quantity import states
from bot.search.retriever import Hit, Retrieval, Retriever
from bot.tuning import CoverageThresholds

__all__ = ["Answerability", "CoverageThresholds", "Evidence", "assess", "evidence_features", "is_answered"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evidence:
    """What the decision looks at, kept for logs, `qabot eval` and calibration."""

    top_sentence: float  # best sentence cosine among the top passages
    top_dense: float  # best passage cosine among the top passages
    term_coverage: float  # idf-weighted share of question words present in the top passages
    missing: tuple[str, ...]  # question words (stemmed) absent from the top passages, rarest first
    unknown: tuple[str, ...]  # question words no passage of the corpus has at all
    n_terms: int = 0  # distinct content words in the question
    named: bool = False  # the question names an adopter or project of the corpus
    foreign_names: tuple[str, ...] = ()  # names asked about that the corpus lacks or the passages don't mention
    single: bool = False  # the question is about one adopter (named once, or the `adopter` filter)
    top_fused: float = 0.0  # the best fused score (the ranking's own confidence)
    fused_gap: float = 0.0  # how far the best fused score stands above the mean of the top ten
    missing_rarity: float = 0.0  # idf of the rarest question word the top passages lack, over the highest idf
    asks_quantity: bool = False  # "how many", "what percentage", "which version", "what latency" ...
    quantity_in_top: bool = False  # the top passages state a number (in digits: what the fitted model reads)
    quantity_stated: bool = False  # the top passages state a number of the asked kind (bot/search/quantity.py)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


# A number in digits: what the fitted answerability model reads.
_NUMBER = re.compile(r"\d")


def assess(retriever: Retriever, retrieval: Retrieval, hits: Sequence[Hit] | None, analysis: QueryAnalysis,
           thresholds: CoverageThresholds | None = None, single: bool = False) -> Evidence:
    """Measure how well the top passages cover the question (`single`: it is about one adopter)."""
    t = thresholds or CoverageThresholds()
    top = list(hits if hits is not None else retrieval.hits)[: t.evidence_passages]
    qterms = list(dict.fromkeys(retrieval.scores.query_terms))
    if not top:
        return Evidence(0.0, 0.0, 0.0, tuple(qterms), tuple(q for q in qterms if q not in retriever.vocabulary),
                        len(qterms))
    present = frozenset().union(*(retriever.passage_terms(h.row) for h in top if h.row >= 0))
    foreign = []
    rare_df = max(1, int(t.rare_share * len(retriever.index.chunks)))
    for name in analysis.name_candidates:
        stems = terms(name)
        if stems and any(s not in retriever.vocabulary or (retriever.df(s) <= rare_df and s not in present)
                         for s in stems):
            foreign.append(name)
    # An acronym may be a concept (GPU) as well as a company (IBM): it counts as foreign only when no passage of
    # the corpus has it at all.
    foreign += [a for a in analysis.acronyms if any(s not in retriever.vocabulary for s in terms(a))]
    weights = {q: retriever.idf(q) for q in qterms}
    total = sum(weights.values())
    ceiling = retriever.idf("\x00never-a-word") or 1.0  # the idf of a word no passage has
    covered = sum(w for q, w in weights.items() if q in present)
    missing = tuple(sorted((q for q in qterms if q not in present), key=lambda q: -weights[q]))
    measure = analysis.measure
    return Evidence(
        top_sentence=max(h.sentence for h in top),
        top_dense=max(h.dense for h in top),
        term_coverage=covered / total if total else 1.0,
        missing=missing,
        unknown=tuple(q for q in qterms if q not in retriever.vocabulary),
        n_terms=len(qterms),
        named=bool(retrieval.scores.adopters or retrieval.scores.projects),
        foreign_names=tuple(foreign),
        single=single,
        missing_rarity=max((weights[q] for q in missing), default=0.0) / ceiling,
        # A question for a measurement of a named kind (a version, a latency) asks for a number even when its
        # wording is not one of the analysis' quantity phrases ("Which Elasticsearch version ...").
        asks_quantity=analysis.asks_quantity or measure.kind != "number",
        quantity_in_top=any(_NUMBER.search(h.chunk.text) for h in top),
        quantity_stated=any(states(measure, h.chunk.text) for h in top),
        top_fused=float(retrieval.hits[0].score) if retrieval.hits else 0.0,
        fused_gap=(float(retrieval.hits[0].score) - sum(h.score for h in retrieval.hits[:10])
                   / len(retrieval.hits[:10])) if retrieval.hits else 0.0,
    )


def is_answered(evidence: Evidence, thresholds: CoverageThresholds | None = None) -> bool:
    """True when the top passages plausibly answer the question."""
    t = thresholds or CoverageThresholds()
    if evidence.foreign_names:
        return False  # asks about a company or product the interviews don't talk about
    if evidence.unknown and len(evidence.unknown) == len(evidence.missing) == evidence.n_terms:
        return False  # not one word of the question occurs anywhere in the interviews
    if evidence.n_terms == 0:
        return evidence.named  # "Tell me about Gojek" is answered by Gojek's passages; "why?" by nothing
    if (evidence.single and evidence.n_terms >= t.min_single_terms
            and evidence.term_coverage < t.min_single_coverage and evidence.top_sentence < t.min_single_sentence):
        return False  # a detail the adopter's interview doesn't give
    if evidence.single and evidence.asks_quantity and not evidence.quantity_stated:
        return False  # asks one adopter for a number (a count, a version) its best passages don't state
    return evidence.top_dense >= t.min_dense



# What the answerability model reads from the evidence, in order.
ANSWERABILITY_FEATURES = ("top_sentence", "top_dense", "term_coverage", "missing_share", "unknown_share",
                          "log_terms", "named", "single", "foreign", "top_fused", "fused_gap", "missing_rarity",
                          "quantity_gap")


def evidence_features(e: Evidence) -> list[float]:
    """The evidence as numbers, in `ANSWERABILITY_FEATURES` order."""
    n = max(1, e.n_terms)
    return [e.top_sentence, e.top_dense, e.term_coverage, len(e.missing) / n, len(e.unknown) / n,
            math.log1p(e.n_terms), float(e.named), float(e.single), float(bool(e.foreign_names)),
            e.top_fused, e.fused_gap, e.missing_rarity, float(e.asks_quantity and not e.quantity_in_top)]


@dataclass(frozen=True)
class Answerability:
    """A logistic model of "the interviews answer this", fit on labelled answerable and unanswerable
    questions (bench/fit_weights.py) and cut at the probability that keeps false refusals rare."""

    coef: tuple[float, ...]
    intercept: float
    threshold: float
    mean: tuple[float, ...]  # the features are standardised with the training questions' mean and spread
    scale: tuple[float, ...]

    def probability(self, e: Evidence) -> float:
        """How likely the top passages answer the question."""
        x = [(v - m) / s for v, m, s in zip(evidence_features(e), self.mean, self.scale)]
        z = self.intercept + sum(c * v for c, v in zip(self.coef, x))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def answered(self, e: Evidence) -> bool:
        """True when the probability reaches the fitted cut."""
        return self.probability(e) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        """The weights-file form."""
        return {"features": list(ANSWERABILITY_FEATURES), "coef": [round(c, 5) for c in self.coef],
                "intercept": round(self.intercept, 5), "threshold": round(self.threshold, 5),
                "mean": [round(m, 5) for m in self.mean], "scale": [round(v, 5) for v in self.scale]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Answerability":
        """Parse the weights-file form; a file fit on other features is refused."""
        if tuple(d["features"]) != ANSWERABILITY_FEATURES:
            raise ValueError("the answerability model was fit on other features; refit it (bench/fit_weights.py)")
        return cls(tuple(d["coef"]), float(d["intercept"]), float(d["threshold"]), tuple(d["mean"]),
                   tuple(d["scale"]))
