"""The per-passage signals: one function each, same shape (a `Probe`: question analysis + index -> one score per
passage, or None where the index lacks what the signal needs).

The hand-set fusion (bot/search/handset.py) and the fitted one (bot/search/fusion.py) both read these.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import numpy as np

from bot.search.analysis import QueryAnalysis
from bot.search.query import matches
from bot.tuning import Z_CAP

if TYPE_CHECKING:
    from bot.search.state import IndexState

logger = logging.getLogger(__name__)

Signal = Callable[["Probe"], "np.ndarray | None"]


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Matrix-vector product without BLAS threads, which cost 10x more than they save at this size."""
    return np.einsum("ij,j->i", matrix, np.asarray(vector, dtype=matrix.dtype))


def _z(x: np.ndarray) -> np.ndarray:
    """Standard scores, clipped at ±Z_CAP (all zeros when the spread is zero).

    The same arithmetic as `np.clip((x - x.mean()) / x.std(), ...)`, bit for bit, without numpy's Python-level
    wrappers around mean, std and clip: a question takes about ten of these, and the wrappers were 7% of its
    time."""
    n = len(x)
    if not n or x.dtype.kind != "f":
        return _z_reference(x)
    # np.mean and np.var: a pairwise sum in the array's float type, divided by the count in float64.
    mean = x.dtype.type(float(np.add.reduce(x)) / n)
    z = np.subtract(x, mean)  # = x - float(mean): a Python float is taken in the array's type
    sd = float(np.sqrt(x.dtype.type(float(np.add.reduce(z * z)) / n)))
    if sd <= 1e-9:
        return np.zeros_like(x)
    z /= sd
    return np.minimum(np.maximum(z, -Z_CAP, out=z), Z_CAP, out=z)


def _z_reference(x: np.ndarray) -> np.ndarray:
    """`_z` by numpy's own mean, std and clip (any dtype)."""
    sd = float(x.std()) if len(x) else 0.0
    if sd <= 1e-9:
        return np.zeros_like(x)
    return np.clip((x - float(x.mean())) / sd, -Z_CAP, Z_CAP)


class Probe:
    """One question against one index: its analysis, its vectors, the filters, and the raw scores that several
    signals share (each computed once)."""

    def __init__(self, analysis: QueryAnalysis, ix: "IndexState", qv: np.ndarray, described_query: float,
                 adopter: str | None = None, project: str | None = None) -> None:
        self.a = analysis
        self.ix = ix
        self.qv = qv
        self.adopter = adopter  # the `adopter` filter: its passages are ranked like a named adopter's
        self.project = project  # the `project` filter: only a large index's candidate choice looks at it
        self.qv_pass = qv
        if analysis.described and described_query:
            # The description says who, not what: passage cosines use the question half without it.
            stripped = ix.embedder.embed_query(analysis.described_text)
            mix = (1 - described_query) * np.asarray(qv, dtype=np.float32) + described_query * stripped
            self.qv_pass = mix / (float(np.linalg.norm(mix)) or 1.0)
        qterms = list(analysis.query_terms)
        self.dense, self.dense_z = ix._dense(self.qv_pass)
        self.body = ix._body.scores(qterms)  # per passage: raw BM25
        self.heading_kw = ix._heading.scores(qterms)
        # per sentence: BM25 (empty for a large index: bot/search/sentence_keywords.py)
        self.sentence_kw = ix._sentence_kw.scores(qterms) if ix._sentence_kw is not None \
            else np.zeros(0, dtype=np.float32)
        self.sentence, self.sentence_dense, self.heading_cos = ix._sentence_signals(self.qv_pass, self.dense)
        # Inside a named adopter's interview every passage is about it, and those that say its name (or its
        # project's) would win on the name: which of them answers is decided by cosines with the question
        # half without the names (a name says who, not what, like a description).
        self.local_dense, self.local_sentence, self.local_heading_cos = self.dense, self.sentence, self.heading_cos
        self.local_sentence_dense = self.sentence_dense
        if analysis.unnamed_text and described_query:
            stripped = ix.embedder.embed_query(analysis.unnamed_text)
            mix = (1 - described_query) * np.asarray(self.qv_pass, dtype=np.float32) + described_query * stripped
            qv_local = mix / (float(np.linalg.norm(mix)) or 1.0)
            self.local_dense = ix._dense(qv_local)[0]
            self.local_sentence, self.local_sentence_dense, self.local_heading_cos = \
                ix._sentence_signals(qv_local, self.local_dense)
        # Over whole interviews a project's name only says which project an interview is about (the project
        # signal's job), so named projects' words are left out of this match.
        self.interview_kw = (_z(ix._interviews.scores(list(analysis.topic_terms)))
                             if len(ix._centroids) else np.zeros(0))

    @cached_property
    def described_match(self) -> np.ndarray | None:
        """Per interview: standard score of the descriptions' best cosine with its profile sentences."""
        ix = self.ix
        if not self.a.described or ix.aux is None or not len(ix._profile_sentences):
            return None
        return _z(ix._description_match(list(self.a.descriptions)))

    @cached_property
    def filter_rows(self) -> np.ndarray | None:
        """The passages the `adopter` filter keeps (None without one)."""
        if not self.adopter:
            return None
        return np.array([matches(c, None, self.adopter) for c in self.ix.index.chunks], dtype=bool)

    @cached_property
    def adopter_rows(self) -> np.ndarray | None:
        """The passages of the adopters the question names (None when it names none)."""
        return np.isin(self.ix._adopter_keys, list(self.a.adopters)) if self.a.adopters else None

    @cached_property
    def named_rows(self) -> np.ndarray | None:
        """The passages of the adopter asked about: the filter's, else the named adopters'."""
        return self.filter_rows if self.filter_rows is not None else self.adopter_rows

    def project_share(self, scoped: bool) -> np.ndarray:
        """Per passage: the share of the question's project mentions that name its project, counting only the
        "<P> adopters" projects (`scoped`) or only the others."""
        total = sum(count for _, count in self.a.project_counts)
        out = np.zeros(len(self.ix.index.chunks), dtype=np.float64)
        for name, count in self.a.project_counts:
            if (name in self.a.scoped) == scoped:
                out += (count / total) * (self.ix._project_keys == name)
        return out


def dense(p: Probe) -> np.ndarray:
    """Cosine of question and passage (context header + text)."""
    return p.dense_z


def sentence(p: Probe) -> np.ndarray:
    """Best cosine of question and one sentence of the passage (the passage cosine without sentence vectors)."""
    return _z(p.sentence) if p.sentence_dense is not None else p.dense_z


def heading_dense(p: Probe) -> np.ndarray | None:
    """Cosine of question and the interview question the passage answers."""
    return _z(p.heading_cos) if p.heading_cos is not None else None


def body(p: Probe) -> np.ndarray:
    """BM25 over the interview question + passage text."""
    return _z(p.body)


def sentence_kw(p: Probe) -> np.ndarray | None:
    """BM25 of the passage's best-matching sentence (a large index: estimated later, see the fusions)."""
    return _z(p.ix._best_sentence_kw(p.sentence_kw)) if len(p.sentence_kw) else None


def heading(p: Probe) -> np.ndarray:
    """BM25 over project, adopter, section and question."""
    return _z(p.heading_kw)


def interview(p: Probe) -> np.ndarray | None:
    """Cosine of question and the interview's centroid (whole-interview topic)."""
    ix = p.ix
    return _z(_dot(ix._centroids, p.qv))[ix.doc_of] if len(ix._centroids) else None


def profile(p: Probe) -> np.ndarray | None:
    """BM25 of question and who the interviewee is (title, preamble, first section)."""
    ix = p.ix
    return _z(ix._profiles.scores(list(p.a.query_terms)))[ix.doc_of] if len(ix._centroids) else None


def profile_rest(p: Probe) -> np.ndarray | None:
    """`profile`, for the passages outside the profile only: those already match a description word for word,
    the answer to "what did the Dutch bank say" is in the rest of the interview."""
    ix = p.ix
    return _z(ix._profiles.scores(list(p.a.query_terms)))[ix.doc_of] * ix._outside_profile


def interview_kw(p: Probe) -> np.ndarray | None:
    """BM25 of the question over the whole interview."""
    return p.interview_kw[p.ix.doc_of] if len(p.interview_kw) else None


def described(p: Probe) -> np.ndarray | None:
    """BM25 of the adopter description alone ("the Dutch bank") over interview profiles."""
    if not p.a.described:
        return None
    return _z(p.ix._profiles.scores(sorted(p.a.described_terms)))[p.ix.doc_of]


def described_dense(p: Probe) -> np.ndarray | None:
    """Best cosine of the description with a sentence of an interview's profile."""
    match = p.described_match
    return match[p.ix.doc_of] if match is not None else None


def named(p: Probe) -> np.ndarray | None:
    """1 for passages of the adopter the question names (or the adopter filter)."""
    return p.named_rows


def project(p: Probe) -> np.ndarray | None:
    """Share of the question's project mentions that name the passage's project."""
    return p.project_share(scoped=False) if p.a.projects else None


def scope(p: Probe) -> np.ndarray | None:
    """The same for the projects the question is about as "<P> adopters"."""
    return p.project_share(scoped=True) if p.a.projects else None


def _local(raw: Callable[[Probe], np.ndarray]) -> Signal:
    """Within a named adopter's interview: a signal standardised over its passages only, so which of its
    passages answers is decided among them (0 elsewhere)."""

    def signal(p: Probe) -> np.ndarray | None:
        rows = p.named_rows
        if rows is None or rows.sum() <= 2:
            return None
        out = np.zeros(len(p.ix.index.chunks), dtype=np.float32)
        out[rows] = _z(raw(p)[rows])
        return out

    return signal


local_dense = _local(lambda p: p.local_dense)
local_sentence = _local(lambda p: p.local_sentence)
local_body = _local(lambda p: p.body)
local_heading = _local(lambda p: p.heading_kw)

# Every signal by name; `fusion.SIGNALS` orders the fitted ones, `profile_rest` is the hand-set weights' own.
SIGNAL_FUNCTIONS: dict[str, Signal] = {
    "dense": dense, "sentence": sentence, "heading_dense": heading_dense, "body": body,
    "sentence_kw": sentence_kw, "heading": heading, "interview": interview, "profile": profile,
    "profile_rest": profile_rest, "interview_kw": interview_kw, "described": described,
    "described_dense": described_dense, "named": named, "project": project, "scope": scope,
    "local_dense": local_dense, "local_sentence": local_sentence, "local_body": local_body,
    "local_heading": local_heading,
}
