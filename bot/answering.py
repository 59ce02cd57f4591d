"""Answers: the Answer/Citation/Passage types, quote selection, answer text, and the Answerer."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from bot import store
from bot.chunking import Chunk
from bot.config import Settings
from bot.embedding import Embedder, make_embedder
from bot.retrieval import Hit, Retriever, matches
from bot.text import Sentence, split_sentences, words

logger = logging.getLogger(__name__)

NOT_COVERED = "The interviews don't cover this."
MIN_DENSE_SCORE = 0.30  # below this cosine, the best passage is treated as noise
STOP = frozenset(
    "a an and are as at be by can do does did for from has have how i in is it its of on or our that the "
    "their them they this to was we were what when where which who why will with you your adopters adopter "
    "use using used project".split()
)


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

    @classmethod
    def from_hit(cls, hit: Hit) -> "Passage":
        """The passage of a search hit."""
        c = hit.chunk
        return cls(c.chunk_id, c.source, c.project, c.adopter, c.section, c.question, c.text,
                   c.line_start, c.line_end, round(hit.score, 4))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class Answer:
    """What the bot says to a question."""

    question: str
    answer: str
    answered: bool
    citations: list[Citation]
    took_ms: float
    related: list[Passage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The HTTP /ask body."""
        return {
            "question": self.question,
            "answer": self.answer,
            "answered": self.answered,
            "citations": [c.to_dict() for c in self.citations],
            "took_ms": self.took_ms,
            "related": [p.to_dict() for p in self.related],
        }


def pick_quote(chunk: Chunk, question: str, max_sentences: int = 2) -> Sentence:
    """The sentence(s) of a chunk that best match the question's words, verbatim with their lines."""
    sentences = split_sentences(chunk.text.split("\n"), chunk.line_start)
    if not sentences:
        return Sentence(chunk.text.strip(), chunk.line_start, chunk.line_end)
    q = {w for w in words(question) if w not in STOP}
    best, best_score = 0, -1.0
    for i, s in enumerate(sentences):
        sw = set(words(s.text))
        score = len(q & sw) + 0.01 * min(len(sw), 20) / 20
        if score > best_score:
            best, best_score = i, score
    return sentences[best]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def lead_line(citations: list[Citation]) -> str:
    """"Found in 2 Knative interviews and 1 KServe interview." from the cited sources."""
    per_project: OrderedDict[str, set[str]] = OrderedDict()
    for c in citations:
        per_project.setdefault(c.project, set()).add(c.source)
    parts = [f"{len(srcs)} {p} interview{'s' if len(srcs) != 1 else ''}" for p, srcs in per_project.items()]
    if len(parts) > 1:
        parts = [", ".join(parts[:-1]) + " and " + parts[-1]]
    return f"Found in {parts[0]}."


def compose(question: str, hits: list[Hit], took_ms: float = 0.0) -> Answer:
    """An extractive answer: one bullet per adopter, each quote with its [n]."""
    citations: list[Citation] = []
    for hit in hits:
        c = hit.chunk
        quote = pick_quote(c, question)
        citations.append(Citation(len(citations) + 1, c.chunk_id, c.source, c.project, c.adopter, c.section,
                                  c.question, c.text, quote.text, quote.line_start, quote.line_end,
                                  round(hit.score, 4)))
    groups: OrderedDict[tuple[str, str], list[Citation]] = OrderedDict()
    for c in citations:
        groups.setdefault((c.project, c.adopter), []).append(c)
    lines = [lead_line(citations)]
    for (project, adopter), cites in groups.items():
        quotes = " … ".join(f"“{' '.join(c.quote.split())}” [{c.n}]" for c in cites)
        lines.append(f"- {project} · {adopter}: {quotes}")
    return Answer(question, "\n".join(lines), True, citations, took_ms)


def not_covered(question: str, hits: list[Hit], took_ms: float = 0.0) -> Answer:
    """The honest answer when the interviews do not answer the question."""
    return Answer(question, NOT_COVERED, False, [], took_ms, [Passage.from_hit(h) for h in hits])


class Answerer:
    """Answers questions from the current index generation; `reload()` swaps in a newer one."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or make_embedder(settings.model_name, settings.model_path,
                                                  settings.embed_batch_size)
        self._retriever: Retriever | None = None
        self._lock = threading.Lock()

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
        """Load the current generation if it is newer than the one in memory; True if swapped."""
        with self._lock:
            generation = store.current_generation(self.settings.index_dir)
            if generation is None:
                raise store.IndexNotFound(f"no index in {self.settings.index_dir}; build it with `qabot index`")
            if self._retriever is not None and self._retriever.index.generation == generation:
                return False
            index = store.load(self.settings.index_dir, self.embedder.name, generation)
            self._retriever = Retriever(index, self.embedder)
            logger.info("index generation %s loaded: %d chunks", generation, len(index.chunks))
            return True

    def search(self, query: str, k: int = 10, project: str | None = None,
               adopter: str | None = None) -> list[Passage]:
        """Ranked passages for a query."""
        return [Passage.from_hit(h) for h in self._current().search(query, k, project, adopter)]

    def ask(self, question: str, top_k: int = 5, project: str | None = None,
            adopter: str | None = None) -> Answer:
        """Answer a question with verbatim, cited quotes, or say the interviews don't cover it."""
        started = time.perf_counter()
        hits = self._current().search(question, top_k, project, adopter)
        took = lambda: round((time.perf_counter() - started) * 1000, 1)  # noqa: E731
        if not hits or hits[0].dense < MIN_DENSE_SCORE:
            return not_covered(question, hits, took())
        answer = compose(question, hits)
        answer.took_ms = took()
        return answer

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
