"""Find the passages that best match a question: the signals fused (hand-set or fitted weights), filters, and
diversity across interviews."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from bot.embed.embedders import Embedder
from bot.index.store import LoadedIndex
from bot.index.textvectors import AuxVectors
from bot.ingest.chunking import Chunk
from bot.search.analysis import QueryAnalysis, analyze
from bot.search.fusion import FusionWeights, feature_matrix, fuse
from bot.search.handset import hand_fused
from bot.search.query import matches
from bot.search.signals import Probe
from bot.search.state import IndexState
from bot.tuning import RetrievalParams

logger = logging.getLogger(__name__)

__all__ = ["Hit", "Retrieval", "RetrievalParams", "Retriever", "Scores"]


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its scores (`score` is what ranking used; `dense` is the cosine)."""

    chunk: Chunk
    score: float
    dense: float
    keyword: float = 0.0  # raw BM25 over the passage
    row: int = -1  # row of the chunk in the index
    sentence: float = 0.0  # best sentence cosine
    doc: int = -1  # which interview of the index the chunk is from


@dataclass
class Scores:
    """Every chunk's scores for one query, every sentence's, and what the query named."""

    dense: np.ndarray  # per chunk: cosine of question and passage
    sentence: np.ndarray  # per chunk: best sentence cosine (the passage cosine when no sentence vectors)
    body: np.ndarray  # per chunk: raw BM25
    fused: np.ndarray  # per chunk: what ranking uses
    # per sentence: cosine (None without sentence vectors); for a question naming an adopter, with the question
    # half without the names, as its interview's passages are ranked: what the quote is picked by
    sentence_dense: np.ndarray | None
    sentence_kw: np.ndarray  # per sentence: BM25 of the sentence (empty for a large index: bot/search/sentence_keywords.py)
    query_terms: list[str] = field(default_factory=list)  # stemmed content words of the question
    name_terms: set[str] = field(default_factory=set)  # stems of the project names the question mentions
    adopters: set[str] = field(default_factory=set)  # name keys of adopters the query mentions
    projects: set[str] = field(default_factory=set)
    interview_kw: np.ndarray | None = None  # per interview: standard score of BM25 over the whole interview
    analysis: QueryAnalysis | None = None  # what the question says (None: an empty index's)


@dataclass
class Retrieval:
    """The ranked hits of one query and the scores behind them."""

    hits: list[Hit]
    scores: Scores


def _top(values: np.ndarray, m: int) -> np.ndarray:
    """Positions of the m largest values, best first, ties in position order (a stable sort of -values, cut):
    at 171k passages, a partition first saves a full sort (15 ms) per question."""
    neg = -values
    if len(neg) <= max(4 * m, 4096):
        return np.argsort(neg, kind="stable")[:m]
    kth = np.partition(neg, m - 1)[m - 1]
    pick = np.flatnonzero(neg <= kth)
    return pick[np.argsort(neg[pick], kind="stable")][:m]


class Retriever(IndexState):
    """Hybrid search over one loaded index generation."""

    def __init__(self, index: LoadedIndex, embedder: Embedder, params: RetrievalParams | None = None,
                 aux: AuxVectors | None = None, fusion: FusionWeights | None = None) -> None:
        self.params = params or RetrievalParams()
        self.fusion = fusion  # fitted weights (bench/fitted-weights.json); None: the hand-set params
        super().__init__(index, embedder, aux)

    def analyze(self, query: str) -> QueryAnalysis:
        """What `query` says, read against this index's names (bot/search/analysis.py)."""
        return analyze(query, self.known_names)

    def with_fusion(self, fusion: FusionWeights | None) -> "Retriever":
        """A retriever over the same index ranking by other fusion weights (for fitting and comparisons)."""
        clone = object.__new__(Retriever)
        clone.__dict__.update(self.__dict__)
        clone.fusion = fusion
        return clone

    def with_params(self, **changes: float) -> "Retriever":
        """A retriever over the same index with some weights changed (for tuning and baselines)."""
        clone = object.__new__(Retriever)
        clone.__dict__.update(self.__dict__)
        clone.params = replace(self.params, **changes)
        return clone

    def _analysis(self, query: str | QueryAnalysis) -> QueryAnalysis:
        return query if isinstance(query, QueryAnalysis) else self.analyze(query)

    def _probe(self, query: str | QueryAnalysis, query_vector: np.ndarray | None, adopter: str | None,
               project: str | None) -> Probe:
        """The question against this index: analysed (unless it already is) and embedded (unless given)."""
        a = self._analysis(query)
        qv = self.embedder.embed_query(a.embedding_text) if query_vector is None else query_vector
        return Probe(a, self, qv, self.params.described_query, adopter, project)

    def score(self, query: str | QueryAnalysis, query_vector: np.ndarray | None = None, adopter: str | None = None,
              project: str | None = None) -> Scores:
        """Scores of every chunk and sentence for `query` (`adopter`: the filter, ranked like a named one;
        `project`: the filter, which only a large index's candidate choice looks at)."""
        p = self._probe(query, query_vector, adopter, project)
        if self.fusion is not None:
            weights = self.fusion.vector()
            return _scores(p, fuse(feature_matrix(p, weights), weights))
        return _scores(p, hand_fused(p, self.params))

    def features(self, query: str | QueryAnalysis, query_vector: np.ndarray | None = None,
                 adopter: str | None = None, project: str | None = None) -> tuple[np.ndarray, Scores]:
        """Every passage's signals for `query` (columns in `fusion.SIGNALS` order) and the scores behind them
        (`fused` left empty: `fuse` makes it from a weight vector)."""
        p = self._probe(query, query_vector, adopter, project)
        F = feature_matrix(p, self.fusion.vector() if self.fusion is not None else None)
        return F, _scores(p, np.zeros(0, dtype=np.float32))

    def retrieve(self, query: str | QueryAnalysis, k: int = 10, project: str | None = None,
                 adopter: str | None = None, repeat_penalty: float | None = None) -> Retrieval:
        """Top-k hits with the scores behind them; filters restrict, diversity spreads across interviews."""
        chunks = self.index.chunks
        if not chunks or k <= 0:
            return Retrieval([], self.score(query) if chunks else _empty_scores(self._analysis(query)))
        s = self.score(query, adopter=adopter, project=project)
        rows = np.arange(len(chunks))
        if project or adopter:
            rows = np.array([i for i in rows if matches(chunks[i], project, adopter)], dtype=np.int64)
        if s.analysis is not None and s.analysis.excluded:
            rows = rows[~np.isin(self._adopter_keys[rows], list(s.analysis.excluded))]
        if (project or adopter or s.analysis is not None and s.analysis.excluded) and not len(rows):
            return Retrieval([], s)
        order = rows[_top(s.fused[rows], max(k, self.params.candidates))]
        # Questions about one adopter keep its passages together; others spread across interviews.
        default = self.fusion.repeat_penalty if self.fusion is not None else self.params.repeat_penalty
        penalty = default if repeat_penalty is None else repeat_penalty
        if len(s.adopters) == 1 or adopter:
            penalty = 0.0
        picked = self._diversify(order, s.fused, k, penalty)
        # One gather per score array (exact floats, as float() of each element would give).
        columns = zip(s.fused[picked].tolist(), s.dense[picked].tolist(), s.body[picked].tolist(),
                      s.sentence[picked].tolist(), self.doc_of[picked].tolist())
        hits = [Hit(chunks[r], fused, dense, body, r, sentence, doc)
                for r, (fused, dense, body, sentence, doc) in zip(picked, columns)]
        return Retrieval(hits, s)

    def search(self, query: str, k: int = 10, project: str | None = None,
               adopter: str | None = None) -> list[Hit]:
        """Top-k hits for `query`, best first, restricted by the filters."""
        return self.retrieve(query, k, project, adopter).hits

    def _diversify(self, order: np.ndarray, fused: np.ndarray, k: int, penalty: float) -> list[int]:
        """Greedy re-rank: each passage loses `penalty` per passage already taken from its interview."""
        if penalty <= 0:
            return [int(r) for r in order[:k]]
        base = fused[order].astype(np.float64)
        docs = self.doc_of[order]
        taken = np.zeros(int(self.doc_of.max()) + 1 if len(self.doc_of) else 1)
        free = np.ones(len(order), dtype=bool)
        picked: list[int] = []
        while len(picked) < min(k, len(order)):
            adjusted = np.where(free, base - penalty * taken[docs], -np.inf)
            i = int(np.argmax(adjusted))  # first maximum: ties keep the original order
            free[i] = False
            taken[docs[i]] += 1
            picked.append(int(order[i]))
        return picked


def _scores(p: Probe, fused: np.ndarray) -> Scores:
    """The Scores of one probed question with its fused score."""
    a = p.a
    return Scores(p.dense, p.sentence, p.body, fused, p.local_sentence_dense, p.sentence_kw, list(a.query_terms),
                  set(a.name_terms), set(a.adopters), set(a.projects), p.interview_kw, a)


def _empty_scores(analysis: QueryAnalysis | None = None) -> Scores:
    empty = np.zeros(0, dtype=np.float32)
    return Scores(empty, empty, empty, empty, None, empty, analysis=analysis)
