"""Answers: the Answer/Citation/Passage types, quote selection, answer text, and the Answerer."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from bot.index import memory
from bot.index import store
from bot.index import generations
from bot.ingest.chunking import Chunk
from bot.config import Settings
from bot.embed.embedders import Embedder, settings_embedder
from bot.answer import citations, quotes
from bot.answer.coverage import Answerability, Evidence, assess, is_answered
from bot.answer.followup import Recall, Resolution, Resolver
from bot.answer.points import answer_points
from bot.answer.recall import FollowUps, recall_of
from bot.answer.relevance import RelevanceCut
from bot.index.keyword import terms
from bot.search.fusion import load_weights
from bot.search.query import matches, name_key
from bot.search.retriever import Hit, Retrieval, Retriever
from bot.answer.citations import select_citations, spread_citations
from bot.tuning import CANDIDATES, PER_INTERVIEW, PER_INTERVIEW_SINGLE
from bot.ingest.text import normalize_space
from bot.index.textvectors import MAX_CHUNKS, text_vectors

logger = logging.getLogger(__name__)

NOT_COVERED = "The interviews don't cover this."


class NotReady(RuntimeError):
    """No index is loaded yet."""


@dataclass
class Passage:
    """A retrieved passage (a Citation without `n` and `quote`)."""

    chunk_id: str
    source: str
    project: str
    adopter: str
    section: str
    question: str
    text: str
    line_start: int
    line_end: int
    score: float
    page: int | None = None  # PDF: the page of line_start (None for other formats)
    page_end: int | None = None  # PDF: the page of line_end

    @classmethod
    def from_hit(cls, hit: Hit) -> "Passage":
        """The passage of a search hit."""
        c = hit.chunk
        return cls(c.chunk_id, c.source, c.project, c.adopter, c.section, c.question, c.text,
                   c.line_start, c.line_end, round(hit.score, 4), c.page_of(c.line_start), c.page_of(c.line_end))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (every field is a plain value: a shallow copy, not asdict's deep one)."""
        return dict(vars(self))


@dataclass
class Citation:
    """A numbered source of an answer: the passage, and the verbatim quote shown with its lines."""

    n: int
    chunk_id: str
    source: str
    project: str
    adopter: str
    section: str
    question: str
    text: str
    quote: str
    line_start: int
    line_end: int
    score: float
    page: int | None = None  # PDF: the page the quote starts on (None for other formats)
    page_end: int | None = None  # PDF: the page it ends on

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (every field is a plain value: a shallow copy, not asdict's deep one)."""
        return dict(vars(self))


@dataclass
class Answer:
    """What the bot says to a question."""

    question: str
    answer: str
    answered: bool
    citations: list[Citation]
    took_ms: float
    related: list[Passage] = field(default_factory=list)
    resolved_question: str = ""  # the standalone question answered (a follow-up resolved); "" = `question`

    def to_dict(self) -> dict[str, Any]:
        """The HTTP /ask body."""
        return {
            "question": self.question,
            "resolved_question": self.resolved_question or self.question,
            "answer": self.answer,
            "answered": self.answered,
            "citations": [c.to_dict() for c in self.citations],
            "took_ms": self.took_ms,
            "related": [p.to_dict() for p in self.related],
        }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def lead_line(citations: list[Citation]) -> str:
    """"Found in 2 Knative interviews and 1 KServe interview." from the cited sources."""
    per_project: OrderedDict[str, set[str]] = OrderedDict()
    for c in citations:
        per_project.setdefault(c.project, set()).add(c.source)
    parts = [f"{_plural(len(srcs), p + ' interview')}" for p, srcs in per_project.items()]
    if len(parts) > 1:
        parts = [", ".join(parts[:-1]) + " and " + parts[-1]]
    return f"Found in {parts[0]}."


def _group(hits: list[Hit]) -> list[list[Hit]]:
    """Hits grouped by project, then adopter, groups in order of their best hit."""
    by_project: OrderedDict[str, OrderedDict[str, list[Hit]]] = OrderedDict()
    for h in hits:
        by_project.setdefault(h.chunk.project, OrderedDict()).setdefault(h.chunk.adopter, []).append(h)
    return [group for adopters in by_project.values() for group in adopters.values()]


def compose(question: str, hits: list[Hit], took_ms: float = 0.0,
            quote_for: Callable[[Hit], quotes.Quote] | None = None) -> Answer:
    """An extractive answer: a lead line, then one bullet per adopter, each quote with its [n]."""
    if quote_for is None:
        qterms = terms(question)
        quote_for = lambda h: quotes.pick_quote(h.chunk, qterms)  # noqa: E731
    citations: list[Citation] = []
    lines: list[str] = []
    for group in _group(hits):
        shown = []
        for hit in group:
            c = hit.chunk
            quote = quote_for(hit)
            n = len(citations) + 1
            citations.append(Citation(n, c.chunk_id, c.source, c.project, c.adopter, c.section, c.question,
                                      c.text, quote.text, quote.line_start, quote.line_end, round(hit.score, 4),
                                      c.page_of(quote.line_start), c.page_of(quote.line_end)))
            shown.append(f"“{normalize_space(quote.text)}” [{n}]")
        head = group[0].chunk
        lines.append(f"- {head.project} · {head.adopter}: " + " … ".join(shown))
    if not citations:
        return Answer(question, NOT_COVERED, False, [], took_ms)
    return Answer(question, "\n".join([lead_line(citations), *lines]), True, citations, took_ms)


def not_covered(question: str, hits: list[Hit], took_ms: float = 0.0) -> Answer:
    """The honest answer when the interviews do not answer the question."""
    return Answer(question, NOT_COVERED, False, [], took_ms, [Passage.from_hit(h) for h in hits])


@dataclass
class Plan:
    """What `Answerer.plan` decided for one question, before any quote is picked."""

    retriever: Retriever
    retrieval: Retrieval
    hits: list[Hit]  # the passages to cite
    evidence: Evidence
    answered: bool
    across: bool = False  # a question across adopters: one citation per interview, none cut


def _quoter(plan: Plan) -> Callable[[Hit], quotes.Quote]:
    """The quote a planned answer shows for each of its hits."""
    retriever, scores = plan.retriever, plan.retrieval.scores
    # Project names are in nearly every sentence of their interviews: they don't point at the answer.
    quote_terms = list(scores.analysis.topic_terms)

    picked: dict[int, quotes.Quote] = {}  # the first citation's is read twice: for the answer, for its points

    def quote_for(hit: Hit) -> quotes.Quote:
        if hit.row not in picked:
            positions = retriever.sentence_rows[hit.row]
            cosines = (scores.sentence_dense[positions.start:positions.stop]
                       if scores.sentence_dense is not None else None)
            picked[hit.row] = quotes.pick_quote(hit.chunk, quote_terms, cosines, retriever.sentences_of(hit.row),
                                                sentence_terms=retriever.sentence_terms(hit.row))
        return picked[hit.row]
    return quote_for


def _points(plan: Plan, answered: bool, quote_for: Callable[[Hit], quotes.Quote]) -> tuple[str, ...]:
    """What the answer's first citation lists (for "the second one")."""
    if not answered or not plan.hits:
        return ()
    first = plan.hits[0]
    return answer_points(quote_for(first).text, first.chunk.text)


def _answerability(retriever: Retriever) -> Answerability | None:
    """The refusal model fit with the retriever's fusion weights (None: the hand rule of coverage.py).
    Parsed per question: a few microseconds, and it can never go stale when the weights are swapped."""
    fusion = retriever.fusion
    if fusion is None or not fusion.answerability:
        return None
    return Answerability.from_dict(fusion.answerability)


class Answerer:
    """Answers questions from the current index generation; `reload()` swaps in a newer one."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or settings_embedder(settings)
        self._retriever: Retriever | None = None
        self._lock = threading.Lock()
        # Files deleted from the corpus whose passages the loaded generation still holds (set by bot.serve.watch
        # until the rebuild that drops them is swapped in): never cited or returned meanwhile.
        self.hidden_sources: frozenset[str] = frozenset()
        # Why CURRENT's generation is not the one served (it, or CURRENT itself, is damaged), and its number.
        self.fallback: str | None = None
        self.damaged_generation: int | None = None
        self.followups = FollowUps()  # what recent answers cited, so a follow-up's history is rarely replayed

    @property
    def ready(self) -> bool:
        """True once an index is loaded."""
        return self._retriever is not None

    @property
    def index(self) -> store.LoadedIndex:
        """The loaded generation (NotReady if none)."""
        return self._current().index

    def _current(self) -> Retriever:
        retriever = self._retriever
        if retriever is None:
            raise NotReady("the index is not loaded yet")
        return retriever

    def reload(self) -> bool:
        """Load the current generation if it is newer than the one in memory; True if swapped.

        When CURRENT is bad or names a damaged generation, the newest intact generation is served instead (a
        warning; `fallback` says why, `damaged_generation` which one); StoreError only when nothing can be served."""
        with self._lock:
            index_dir = self.settings.index_dir
            try:
                generation = generations.current_generation(index_dir)
            except generations.IndexDamaged as exc:
                return self._fall_back(str(exc), None)
            if generation is None:
                raise store.IndexNotFound(f"no index in {index_dir}; build it with `qabot index`")
            if self._retriever is not None and self._retriever.index.generation == generation:
                return False
            if self._retriever is not None and generation == self.damaged_generation:
                return False  # verified bad already; checksumming it on every poll would only burn CPU
            try:
                self._swap_in(generation)
            except generations.IndexDamaged as exc:
                return self._fall_back(str(exc), generation)
            self.fallback = self.damaged_generation = None
            return True

    def _swap_in(self, generation: int) -> None:
        with memory.gc_paused():
            index = store.load(self.settings.index_dir, self.embedder.name, generation)
            aux = None
            if len(index.chunks) <= MAX_CHUNKS:
                try:
                    aux = text_vectors(index.path, index.chunks, self.embedder)
                except Exception as exc:  # noqa: BLE001 - passage vectors alone still answer
                    logger.warning("sentence vectors unavailable, ranking by passages only: %s", exc)
            self._retriever = Retriever(index, self.embedder, aux=aux, fusion=load_weights(self.settings.fusion_weights))
        memory.trim()  # the previous generation's objects and the build's temporaries are freed now
        logger.info("index generation %s loaded: %d chunks", generation, len(index.chunks))

    def _fall_back(self, problem: str, damaged: int | None) -> bool:
        """Serve the newest intact generation other than `damaged` (CURRENT's, or None when CURRENT itself is
        bad); True if one was swapped in. Raises `problem` when no generation can be served."""
        index_dir = self.settings.index_dir
        loaded = self._retriever.index.generation if self._retriever is not None else None
        # A generation other than CURRENT's is only ever a complete one: folders are renamed into place whole.
        for number in reversed(generations.generation_numbers(index_dir)):
            if number == damaged:
                continue
            if number == loaded:  # already in memory (verified when loaded): keep serving it
                swapped = False
                break
            try:
                self._swap_in(number)
            except store.StoreError as exc:
                logger.debug("generation %d cannot be served either: %s", number, exc)
                continue
            swapped = True
            break
        else:
            if loaded is None:
                raise generations.NoIntactIndex(problem)
            number, swapped = loaded, False  # its folder is gone or damaged now; what is in memory still answers
        if self.fallback != problem:
            logger.warning("%s; serving generation %d instead, the newest intact one", problem, number)
        self.fallback, self.damaged_generation = problem, damaged
        return swapped

    def search(self, query: str, k: int = 10, project: str | None = None,
               adopter: str | None = None) -> list[Passage]:
        """Ranked passages for a query."""
        hidden = self.hidden_sources
        hits = self._current().search(query, k + 10 if hidden else k, project, adopter)
        return [Passage.from_hit(h) for h in hits if h.chunk.source not in hidden][:k]

    def plan(self, question: str, top_k: int = 5, project: str | None = None,
             adopter: str | None = None, exclude: frozenset[str] = frozenset()) -> Plan:
        """Rank, choose the citations and weigh the evidence for a question (everything `ask` decides);
        passages in `exclude` (chunk ids) are not cited."""
        hidden = self.hidden_sources  # read before the retriever: a file is unhidden only after its swap
        retriever = self._current()
        top_k = max(1, int(top_k))
        analysis = retriever.analyze(question)  # read once: the ranking, the evidence and the quotes use it
        retrieval = retriever.retrieve(analysis, max(CANDIDATES, top_k), project, adopter, repeat_penalty=0.0)
        if hidden or exclude:
            retrieval = replace(retrieval, hits=[h for h in retrieval.hits if h.chunk.source not in hidden
                                                 and h.chunk.chunk_id not in exclude])
        if len(analysis.adopters) == 1 and not adopter:
            # A question naming one adopter is answered from its interviews when they have candidates: another
            # adopter's passage with the asked words answers for someone else ("How many tuples does Agicap
            # store?" is not answered by Read AI's tuple count).
            own = [h for h in retrieval.hits if name_key(h.chunk.adopter) in analysis.adopters]
            if own:
                retrieval = replace(retrieval, hits=own)
        # One adopter (named or filtered): its passages may all be cited; a question about adopters in the
        # plural gets one per interview; one about a described adopter up to PER_INTERVIEW_SINGLE.
        single = bool(adopter) or len(analysis.adopters) == 1
        per_interview = PER_INTERVIEW if analysis.spans else PER_INTERVIEW_SINGLE
        # With fewer interviews to draw on than citations wanted (a small corpus, a project filter), let
        # each give more, so the answer still shows top_k passages instead of one.
        interviews = len({h.chunk.source for h in retrieval.hits})
        if interviews:
            per_interview = max(per_interview, -(-top_k // interviews))
        across = analysis.spans and not single
        if across:
            hits = spread_citations(retrieval, top_k, per_interview)
        else:
            hits = select_citations(retrieval, top_k, None if single else per_interview)
        evidence = assess(retriever, retrieval, hits, analysis, single=single)
        model = _answerability(retriever)
        answered = bool(hits) and (model.answered(evidence) if model is not None else is_answered(evidence))
        if retriever.fusion is not None and retriever.fusion.relevance and not across:
            # Cite only what is likely to hold evidence itself (relevance.py), after the evidence was weighed.
            # A question across adopters keeps each interview's best passage: coverage is its point.
            hits = RelevanceCut.from_dict(retriever.fusion.relevance).cut(hits)
        else:  # cite what carries the question's words (citations.py); the evidence was weighed on all
            hits = citations.cite(retriever, hits, analysis.topic_terms, across)
        return Plan(retriever, retrieval, hits, evidence, answered, across)

    def ask(self, question: str, top_k: int = 5, project: str | None = None,
            adopter: str | None = None, history: Sequence[str] = ()) -> Answer:
        """Answer a question with verbatim, cited quotes, or say the interviews don't cover it.

        `history` holds the conversation's earlier questions, oldest first: a follow-up is answered as the
        standalone question it resolves to (`Answer.resolved_question`)."""
        started = time.perf_counter()
        top_k = max(1, int(top_k))
        resolution = self.resolve(question, history, top_k, project, adopter) if history else Resolution(question)
        asked = resolution.question
        planned, answered = self._planned(asked, top_k, project, adopter, resolution.exclude)
        quote_for = _quoter(planned)
        # The next turn may refer to whom this answer cites: remembered now, it need not be replayed then.
        self.followups.remember(self._recall_key(asked, resolution.exclude, top_k, project, adopter),
                                recall_of(planned.hits, answered, _points(planned, answered, quote_for)))
        retrieval, hits = planned.retrieval, planned.hits
        took = lambda: round((time.perf_counter() - started) * 1000, 1)  # noqa: E731
        if not answered:
            logger.debug("not answered: %s", planned.evidence)
            return replace(not_covered(question, retrieval.hits[:top_k], took()), resolved_question=asked)
        answer = compose(question, hits, quote_for=quote_for)
        answer.resolved_question = asked
        answer.took_ms = took()
        return answer

    def resolve(self, question: str, history: Sequence[str], top_k: int = 5, project: str | None = None,
                adopter: str | None = None) -> Resolution:
        """The standalone question `question` asks after `history` (earlier questions, oldest first); an
        earlier turn is replayed (planned again, with these parameters) only when whom its answer cited matters
        and is not remembered."""
        index = self.index
        catalog = self.followups.catalog(index, lambda: ((e.project, e.adopter)
                                                         for e in index.manifest.files.values()))

        def recall(asked: str, exclude: frozenset[str]) -> Recall:
            def replay() -> Recall:
                planned, answered = self._planned(asked, top_k, project, adopter, exclude)
                return recall_of(planned.hits, answered, _points(planned, answered, _quoter(planned)))
            return self.followups.recall(self._recall_key(asked, exclude, top_k, project, adopter), replay)

        return Resolver(catalog, recall).resolve(list(history), question.strip())

    def _planned(self, asked: str, top_k: int, project: str | None, adopter: str | None,
                 exclude: frozenset[str]) -> tuple[Plan, bool]:
        """The plan of a (resolved) question and whether it is answered."""
        planned = self.plan(asked, top_k, project, adopter, exclude)
        if exclude and planned.hits and not planned.answered:
            # "what else did they say?": whether the interviews cover the subject is judged with the passages
            # already shown; the answer then cites the others.
            return planned, self.plan(asked, top_k, project, adopter).answered
        return planned, planned.answered

    def _recall_key(self, asked: str, exclude: frozenset[str], top_k: int, project: str | None,
                    adopter: str | None) -> tuple[object, ...]:
        index = self.index
        return (str(index.path), index.generation, self.hidden_sources, asked, exclude, top_k, project, adopter)

    def chunk(self, chunk_id: str) -> Chunk | None:
        """The chunk with this id in the current generation, or None."""
        for c in self.index.chunks:
            if c.chunk_id == chunk_id:
                return c
        return None

    def interviews(self) -> list[dict[str, Any]]:
        """The indexed interviews with their metadata and chunk counts."""
        files = self.index.manifest.files
        return [{"source": s, "project": e.project, "adopter": e.adopter, "interviewee": e.interviewee,
                 "date": e.date, "title": e.title, "chunks": e.chunks} for s, e in sorted(files.items())]


__all__ = ["Answer", "Answerer", "Citation", "NOT_COVERED", "NotReady", "Passage", "compose", "matches"]
