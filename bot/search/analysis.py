"""Read a question once: the names, scope and descriptions in it, and the words left for keyword matching.

`analyze` turns the question text and the index's known names into a `QueryAnalysis`, plain data that the
signals (bot/search/signals.py) and the answer stage read instead of parsing the question again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Collection, Mapping

from bot.index.keyword import terms
from bot.search.quantity import ASKS_QUANTITY, Measure, asked_measure
from bot.search.query import (without_names, excluded_names, descriptions, embedding_query, name_counts, names_in, place_variants,
                              scoped_projects, spans_adopters, without_descriptions)

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*")
# Words that describe where someone is ("the Dutch bank", "a South American retailer"), not who.
_PLACE_WORD = re.compile(r"(?:an|ese|ish|ic|i)$|^(?:north|south|east|west)", re.IGNORECASE)


@dataclass(frozen=True)
class KnownNames:
    """What an index knows that reading a question needs: its adopter and project names and their words."""

    adopters: frozenset[str]  # name keys of every adopter
    projects: frozenset[str]  # name keys of every project
    adopter_terms: Mapping[str, set[str]]  # name key -> stems of the adopter's name
    project_terms: Mapping[str, set[str]]  # name key -> stems of the project's name
    place_vocab: Collection[str]  # stems the interview profiles use (where a demonym's country may be)
    name_words: Collection[str]  # every word of every name, lower-case alphanumerics ("meadows", "intoto")


@dataclass(frozen=True)
class QueryAnalysis:
    """One question, read against one index's names."""

    text: str
    embedding_text: str  # the question as the model sees it (`embedding_query`)
    adopters: frozenset[str]  # name keys of the adopters it names (and asks about)
    excluded: frozenset[str]  # name keys of the adopters it sets apart ("besides Read AI"): left out of the answer
    projects: frozenset[str]  # name keys of the projects it names
    scoped: frozenset[str]  # of those, the projects whose adopters it is about: "<P> adopters"
    project_counts: tuple[tuple[str, int], ...]  # each named project and how often it is named (at least 1)
    descriptions: tuple[str, ...]  # adopters described, not named: "the Dutch bank"
    described_terms: frozenset[str]  # their stems and their demonyms' countries (empty when an adopter is named)
    described_text: str  # the question without its descriptions, as the model sees it ("" when not described)
    # the question without the adopters and projects it names, as the model sees it ("" when it names no adopter)
    unnamed_text: str
    query_terms: tuple[str, ...]  # stems left for keyword matching (named adopters' and scope words taken out)
    name_terms: frozenset[str]  # stems of the named projects' names
    topic_terms: tuple[str, ...]  # query terms without `name_terms`: what a whole interview or a quote is matched by
    spans: bool  # about adopters in the plural: the answer spans interviews
    asks_quantity: bool  # "how many", "which version", "what latency" ...
    measure: Measure  # the kind of number it asks for (bot/search/quantity.py)
    name_candidates: tuple[str, ...]  # capitalised words that look like names the index does not know
    acronyms: tuple[str, ...] = ()  # all-capital words (IBM, AWS, LLM): names or concepts, known only by the index

    @property
    def described(self) -> bool:
        """True when the question describes an adopter instead of naming one."""
        return bool(self.described_terms)


def analyze(query: str, names: KnownNames) -> QueryAnalysis:
    """Everything the search and the answer read from `query`, computed once."""
    adopters = names_in(query, names.adopters)
    # "Besides Read AI, ...": an adopter set apart is left out of the answer, not steered to.
    excluded = excluded_names(query, adopters) if adopters else set()
    adopters -= excluded
    projects = names_in(query, names.projects)
    scoped = scoped_projects(query, projects)
    # A named adopter steers through its boost; its name would only add noise to keyword matching, and so
    # would the project of "KServe adopters", which every passage in scope says. A name set apart is no keyword
    # either, unless it is asked about again ("Outside Bloomberg's interviews, where does Bloomberg come up?").
    adopter_terms = set().union(*(names.adopter_terms.get(a, set()) for a in adopters))
    named = set(adopter_terms)
    named |= set().union(*(names.adopter_terms.get(a, set()) for a in excluded if name_counts(query, a) < 2))
    named |= set().union(*(names.project_terms.get(s, set()) for s in scoped))
    phrases = descriptions(query)
    described = set(terms(" ".join(phrases))) if not adopters else set()
    if described:
        # A demonym also matches its country: "the Italian retailer" is introduced as "... in Italy".
        words = re.findall(r"[A-Za-z]+", " ".join(phrases))
        described |= {t for w in words if w[:1].isupper() for v in place_variants(w) for t in terms(v)
                      if t in names.place_vocab}
    qterms = [t for t in terms(query) if t not in named]
    if described:
        qterms = [t for t in qterms if t not in described] or qterms
    project_terms = set().union(*(names.project_terms.get(name, set()) for name in projects))
    # Project names are in nearly every sentence of their interviews, so they say nothing about which passage or
    # quote answers, except a project asked about beside "<P> adopters": "Which KServe adopter uses Knative?"
    # asks about Knative in the KServe interviews (the scoped project's words are out of the query already).
    not_topic = project_terms if not scoped else set()
    return QueryAnalysis(
        text=query,
        embedding_text=embedding_query(query),
        adopters=frozenset(adopters),
        excluded=frozenset(excluded),
        projects=frozenset(projects),
        scoped=frozenset(scoped),
        project_counts=tuple(sorted((name, max(1, name_counts(query, name))) for name in projects)),
        descriptions=tuple(phrases),
        described_terms=frozenset(described),
        described_text=embedding_query(without_descriptions(query)) if described else "",
        unnamed_text=embedding_query(without_names(query, adopter_terms, project_terms)) if adopters else "",
        query_terms=tuple(qterms),
        name_terms=frozenset(project_terms),
        topic_terms=tuple(t for t in qterms if t not in not_topic),
        spans=spans_adopters(query),
        asks_quantity=bool(ASKS_QUANTITY.search(query)),
        measure=asked_measure(query),
        name_candidates=tuple(name_candidates(query, names.name_words)),
        acronyms=tuple(acronyms_in(query, names.name_words)),
    )


def name_candidates(question: str, known: Collection[str]) -> list[str]:
    """Capitalized words inside the question that look like names of companies or products (and words in mixed
    case, "vLLM", "eBPF": a product's spelling even where it starts in lower case)."""
    found = []
    for sentence in re.split(r"(?<=[.?!])\s+", question.strip()):
        tokens = [m.group(0) for m in _TOKEN.finditer(sentence)]
        capitalized = [tok for tok in tokens if tok[0].isupper()]
        if len(tokens) > 3 and len(capitalized) > 0.6 * len(tokens):
            continue  # Title Case Questions say nothing about names
        for i, tok in enumerate(tokens):
            word = tok.removesuffix("s") if tok.endswith("'s") else tok
            mixed = tok[0].islower() and any(c.isupper() for c in tok[1:])
            if (i == 0 and not mixed) or not (tok[0].isupper() or mixed) or len(tok) < 3:
                continue
            if word.removesuffix("s").isupper() and len(word.removesuffix("s")) <= 5:
                continue  # acronyms (LLM, CLI, GPU, CVEs) are mostly concepts, not names
            if _PLACE_WORD.search(word) or re.sub(r"[^a-z0-9]", "", word.lower()) in known:
                continue
            found.append(word)
    return found


def acronyms_in(question: str, known: Collection[str]) -> list[str]:
    """All-capital words of 2-5 letters standing where a company stands, that the index does not know as names:
    an owner ("OPPO's cluster") or the subject of the question ("How does IBM use it?"). Elsewhere an acronym is
    mostly a concept (LLM serving, the ERP vendor)."""
    found = []
    for m in re.finditer(r"(?:\b(?i:do|does|did|has|have|had|is|was|are|were)\s+)?\b([A-Z]{2,5})\b", question):
        tok = m.group(1)
        owner = question[m.end(1):m.end(1) + 2] in ("'s", "\u2019s")
        subject = m.group(0) != tok
        if (owner or subject) and tok.lower() not in known:
            found.append(tok)
    return found
