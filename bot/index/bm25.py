"""The generation's keyword indexes: bm25s matrices built by `qabot index`, memory-mapped by `serve`.

Five BM25 indexes (Lucene variant, k1 1.2, b 0.75) over the stemmed content words of bot.index.keyword.terms:
- body: each passage's text and its interview question;
- heading: each passage's project, adopter and heading path;
- profiles: per interview, its project and adopter and the passages that say who the interviewee is;
- interviews: per interview, all its passages' texts;
- sentences: each sentence of each passage (small indexes only; a large one samples, bot/search/sentence_keywords.py).
A row without content words counts as one EMPTY token. bm25s builds each matrix (in float64, stored as float32 as
before) and saves it in `keyword/<name>/` of the generation; a start loads it with `mmap=True`, tokenizing nothing.
A question is scored here, not with `BM25.get_scores`: bm25s adds the weights up in float32, which moves 757 of
48,684 body scores of the dev questions by one unit in the last place; float64 sums as before keep every answer
byte-identical.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

import bm25s
import numpy as np

from bot.index import keyword
from bot.index.keyword import EMPTY, terms

# bm25s sets its own logger to DEBUG when imported, so every `qabot index` printed "Building index from tokens"
# lines: its records go by the level the application configured instead.
logging.getLogger("bm25s").setLevel(logging.NOTSET)
from bot.ingest.chunking import Chunk, chunk_sentences

logger = logging.getLogger(__name__)

FOLDER = "keyword"
PASSAGE_LEVEL = ("body", "heading")
NAMES = ("body", "heading", "profiles", "interviews", "sentences")
K1, B = 1.2, 0.75
SENTENCE_ROWS_MAX = 20_000  # passages up to which the sentence index is built (bot/search/state.SENTENCE_KW_THRESHOLD)


def profile_rows(chunks: Sequence[Chunk], rows: list[int]) -> list[int]:
    """The rows that say who an interviewee is: the preamble and the first section after it."""
    first = next((chunks[r].section for r in rows if chunks[r].section != "Interview details"), None)
    return [r for r in rows if chunks[r].section in ("Interview details", first)]


def interview_rows(chunks: Sequence[Chunk]) -> list[list[int]]:
    """The rows of each interview (source file), interviews in the order of their sorted sources."""
    pos = {src: i for i, src in enumerate(sorted({c.source for c in chunks}))}
    out: list[list[int]] = [[] for _ in pos]
    for r, c in enumerate(chunks):
        out[pos[c.source]].append(r)
    return out


def row_terms(chunks: Sequence[Chunk], text_terms: Sequence[list[str]] | None = None,
              sentences: bool = True) -> dict[str, list[list[str]]]:
    """Every index's rows as stemmed terms. `text_terms`: `terms(c.text)` of each passage, when known."""
    if text_terms is None:
        text_terms = [terms(c.text) for c in chunks]
    piece: dict[str, list[str]] = {}

    def of(s: str) -> list[str]:
        found = piece.get(s)
        if found is None:
            found = piece[s] = terms(s)
        return found

    out = {
        "body": [t + of(c.question) for t, c in zip(text_terms, chunks)],
        "heading": [[w for p in (c.project, c.adopter, *c.heading_path) for w in of(p)] for c in chunks],
    }
    docs = interview_rows(chunks)
    out["profiles"] = [terms(f"{chunks[rows[0]].project} {chunks[rows[0]].adopter}")
                       + [w for r in profile_rows(chunks, rows) for w in text_terms[r]] for rows in docs]
    out["interviews"] = [[w for r in rows for w in text_terms[r]] for rows in docs]
    if sentences:
        out["sentences"] = [terms(s.text) for c in chunks for s in chunk_sentences(c)]
    return out


def build(rows: list[list[str]]) -> bm25s.BM25:
    """A bm25s index of the rows (weights computed in float64, kept as float32)."""
    model = bm25s.BM25(k1=K1, b=B, method="lucene", dtype="float64")
    if rows:
        model.index([r or [EMPTY] for r in rows], show_progress=False)
        model.scores["data"] = model.scores["data"].astype(np.float32)
    else:
        model.scores = {"data": np.zeros(0, np.float32), "indices": np.zeros(0, np.int32),
                        "indptr": np.zeros(1, np.int64), "num_docs": 0}
        model.vocab_dict = {}
    model.dtype = "float32"
    return model


def write(folder: Path, chunks: Sequence[Chunk], text_terms: Sequence[list[str]] | None = None) -> list[str]:
    """Build and save every keyword index of a generation in `folder`; the saved files, relative to it."""
    built = row_terms(chunks, text_terms, sentences=len(chunks) <= SENTENCE_ROWS_MAX)
    files: list[str] = []
    for name, rows in built.items():
        where = folder / FOLDER / name
        build(rows).save(str(where), show_progress=False)
        files.extend(str(p.relative_to(folder)) for p in sorted(where.iterdir()) if p.is_file())
    return files


# Each memory-mapped array holds a file descriptor for as long as its generation is loaded; a small matrix is
# read into memory instead (a few MB cost less than the descriptors, and a reload frees them at once).
MMAP_MIN_BYTES = 8 << 20


class KeywordMatrix:
    """One loaded bm25s index: `scores(query)` gives one BM25 score per row (the interface of
    the own KeywordIndex of format 5, which it replaces)."""

    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model
        s = model.scores
        self.size = int(s["num_docs"])
        self._data, self._rows, self._indptr = s["data"], s["indices"], np.asarray(s["indptr"], dtype=np.int64)
        width = len(self._indptr) - 1  # bm25s's empty query token "" may have a number past the matrix's columns
        self._column = {t: c for t, c in model.vocab_dict.items() if isinstance(t, str) and c < width}
        df = np.diff(self._indptr)
        self.df: dict[str, int] = {t: int(df[c]) for t, c in self._column.items() if t not in ("", EMPTY) and df[c]}
        self.vocab = set(self.df)
        self._term_ids: np.ndarray | None = None

    @classmethod
    def load(cls, folder: Path, name: str) -> "KeywordMatrix":
        """The saved index `name` of a generation folder, memory-mapped when it is large (MMAP_MIN_BYTES)."""
        where = folder / FOLDER / name
        size = sum(p.stat().st_size for p in where.iterdir() if p.is_file())
        return cls(bm25s.BM25.load(str(where), mmap=size >= MMAP_MIN_BYTES, show_progress=False))

    @classmethod
    def of_rows(cls, rows: list[list[str]]) -> "KeywordMatrix":
        """An index built in memory (a generation without saved matrices: tests' hand-made indexes)."""
        return cls(build(rows))

    def _columns(self) -> tuple[list[str], np.ndarray]:
        names = sorted(self._column, key=self._column.__getitem__)
        return names, np.array([self._column[t] for t in names], dtype=np.int64)

    @property
    def term_ids(self) -> np.ndarray:
        """Global ids (bot.index.keyword) of the matrix's columns, in column order."""
        if self._term_ids is None:
            names, _ = self._columns()
            with keyword._vocab_lock:
                self._term_ids = np.array([keyword._term_id(t) for t in names], dtype=np.int64)
        return self._term_ids

    @property
    def term_df(self) -> np.ndarray:
        """Per column (as `term_ids`): how many rows have the term."""
        return np.diff(self._indptr)[self._columns()[1]]

    def term_counts(self, rows: np.ndarray) -> np.ndarray:
        """Per column (as `term_ids`): how many of `rows` (distinct row numbers) have the term."""
        member = np.zeros(self.size, dtype=bool)
        member[rows] = True
        at = np.flatnonzero(member[np.asarray(self._rows)])
        counts = np.bincount(np.searchsorted(self._indptr, at, side="right") - 1, minlength=len(self._indptr) - 1)
        return counts[self._columns()[1]]

    @property
    def nbytes(self) -> int:
        """Bytes of the matrix (memory-mapped: resident only where read)."""
        return self._data.nbytes + self._rows.nbytes + self._indptr.nbytes

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term (highest for a term no row has)."""
        df = self.df.get(term, 0)
        return math.log(1.0 + (self.size - df + 0.5) / (df + 0.5))

    def scores(self, query: str | list[str]) -> np.ndarray:
        """BM25 score of every row for the query (zeros when no query term is known)."""
        qterms = terms(query) if isinstance(query, str) else query
        cols = [self._column[t] for t in dict.fromkeys(qterms) if t in self.vocab]
        if not cols or not self.size:
            return np.zeros(self.size, dtype=np.float32)
        spans = [slice(self._indptr[c], self._indptr[c + 1]) for c in cols]
        rows = np.concatenate([self._rows[s] for s in spans])
        weights = np.concatenate([self._data[s] for s in spans])
        return np.bincount(rows, weights=weights, minlength=self.size).astype(np.float32)
