"""Decide whether the interviews answer a question, from how well the best passages match it."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from bot.index.keyword import terms
from bot.search.retriever import Hit, Retrieval, Retriever

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoverageThresholds:
    """Where "answered" starts; calibrated on dev.jsonl + bench/heldout.jsonl (see README, "How answers are built")."""

    min_dense: float = 0.2  # best passage cosine below which the question is off-topic for the corpus
    rare_share: float = 0.02  # a known name in at most this share of passages counts as rare
    evidence_passages: int = 3  # how many top passages the evidence looks at
    # A question about one adopter (named or filtered) whose words the adopter's best passages barely have
    # and whose best sentence is not close either asks for a detail that interview doesn't give ("How many
    # revisions does <adopter> keep?"). Over the three question sets, answerable ones of this kind cover
    # 0.37 or more of their words (idf-weighted), such details 0.08-0.14 with best sentence cosines
    # 0.33-0.37; paraphrased questions about one adopter may cover as little as 0.15 but their best sentence
    # scores 0.44 or more (README, "What answered: false means").
    min_single_coverage: float = 0.2
    min_single_sentence: float = 0.4
    min_single_terms: int = 3  # ... counted only with this many content words (few words: coarse coverage)


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*")
# Words that describe where someone is ("the Dutch bank", "a South American retailer"), not who.
_PLACE_WORD = re.compile(r"(?:an|ese|ish|ic|i)$|^(?:north|south|east|west)", re.IGNORECASE)


def name_candidates(question: str, known: set[str]) -> list[str]:
    """Capitalized words inside the question that look like names of companies or products."""
    found = []
    for sentence in re.split(r"(?<=[.?!])\s+", question.strip()):
        tokens = [m.group(0) for m in _TOKEN.finditer(sentence)]
        capitalized = [tok for tok in tokens if tok[0].isupper()]
        if len(tokens) > 3 and len(capitalized) > 0.6 * len(tokens):
            continue  # Title Case Questions say nothing about names
        for i, tok in enumerate(tokens):
            word = tok.removesuffix("s") if tok.endswith("'s") else tok
            if i == 0 or not tok[0].isupper() or len(tok) < 3:
                continue
            if tok.isupper() and len(tok) <= 5:
                continue  # acronyms (LLM, CLI, GPU) are mostly concepts, not names
            if _PLACE_WORD.search(word) or re.sub(r"[^a-z0-9]", "", word.lower()) in known:
                continue
            found.append(word)
    return found


def assess(retriever: Retriever, retrieval: Retrieval, hits: Sequence[Hit] | None = None,
           thresholds: CoverageThresholds | None = None, question: str = "", single: bool = False) -> Evidence:
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
    for name in name_candidates(question, retriever.known_name_words):
        stems = terms(name)
        if stems and any(s not in retriever.vocabulary or (retriever.df(s) <= rare_df and s not in present)
                         for s in stems):
            foreign.append(name)
    weights = {q: retriever.idf(q) for q in qterms}
    total = sum(weights.values())
    covered = sum(w for q, w in weights.items() if q in present)
    missing = tuple(sorted((q for q in qterms if q not in present), key=lambda q: -weights[q]))
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
    return evidence.top_dense >= t.min_dense

