"""Best-sentence BM25 of the passages of a large index, without a keyword index of every sentence.

A small index keeps a BM25 index over all its sentences (`Retriever._sentence_kw`) and takes each passage's best
sentence score from it. At 10,000 interviews that is 660k sentences: 10 s of splitting and tokenizing at every
start, ~40 MB of matrix and several hundred MB at peak, for one ranking signal of nine (weight 0.5). Instead:
- the sentence-level statistics (how many sentences, their mean length, each term's sentence frequency) are
  estimated from a fixed sample of passages: a term's sentence frequency is its passage frequency in the body
  index times how many sentences per passage with the term have it in the sample (smoothed toward the average);
- per question, the candidate passages (the best by the other signals, among those with a keyword match) have
  their sentences split, tokenized (cached per passage) and scored exactly with those statistics; the sample's
  passages are scored exactly too; other passages with a keyword match get their passage BM25 times the ratio of
  best-sentence to passage BM25 seen in the sample, and passages without one 0 (as exactly);
- the standard scores use the mean and spread of the sample's exact values, as `Retriever._dense` does for IVF.
With a sample of every passage and every matching passage a candidate, the scores equal the exact ones
(tests/test_memory_scale.py).
"""

from __future__ import annotations

import logging
import threading
from array import array
from typing import Callable, Sequence

import numpy as np

from bot.ingest.chunking import Chunk
from bot.index.bm25 import KeywordMatrix
from bot.index.keyword import EMPTY, Tokens, term_id, token_ids, tokenize
from bot.ingest.text import Sentence

logger = logging.getLogger(__name__)

SAMPLE = 4096  # passages whose sentences give the statistics and the spread
CANDIDATES = 200  # passages whose sentences are scored exactly per question (at 10,000 interviews 100 already
# give the same top 10 as 4,000 for the bench questions)
SMOOTHING = 2.0  # pseudo-passages pulling a rare term's sentences-per-passage toward the average
CACHE_ROWS = 16384  # passages whose sentence token ids are kept between questions


def _pairs(tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
    """(text, global id) once per text that has the id."""
    rows = np.repeat(np.arange(len(tokens), dtype=np.int64), tokens.lengths())
    width = int(tokens.ids.max()) + 1 if len(tokens.ids) else 1
    keys = np.unique(rows * width + tokens.ids)
    return keys // width, keys % width


class SampledSentenceKeyword:
    """Each passage's best-sentence BM25 for large indexes (module docstring)."""

    def __init__(self, chunks: Sequence[Chunk], body: KeywordMatrix, sentences_of: Callable[[int], list[Sentence]],
                 sample: int | None = None, candidates: int | None = None, k1: float = 1.2, b: float = 0.75) -> None:
        """`body`: the keyword index of each passage's question and text (row r: passage r), as the Retriever's."""
        n = len(chunks)
        sample = SAMPLE if sample is None else sample
        self.k1, self.b = k1, b
        self.candidates = max(1, CANDIDATES if candidates is None else candidates)
        self._sentences_of = sentences_of
        if sample >= n:
            rows = np.arange(n, dtype=np.int64)
        else:
            rows = np.sort(np.random.default_rng(0).choice(n, sample, replace=False))
        self.sample_rows = rows
        texts: list[str] = []
        owner: list[int] = []
        for i, r in enumerate(rows.tolist()):
            got = [s.text for s in sentences_of(r)]
            texts.extend(got)
            owner.extend([i] * len(got))
        self._sample = tokenize(texts)
        self._sample_owner = np.array(owner, dtype=np.int64)
        lengths = self._sample.lengths()
        self._sample_lengths = np.where(lengths > 0, lengths, 1)  # a sentence without content words: one token
        full = len(rows) == n
        self.sentence_count = len(texts) * (n / len(rows)) if len(rows) else 0.0
        self.avg_length = float(self._sample_lengths.mean()) if len(texts) else 1.0
        # Sentence frequency of each term: sample sentences with it per sample passage with it in its body, times
        # its passage frequency in the whole index. (The body index's rows are the sample passages' bodies.)
        width = max(int(body.term_ids.max()) + 1 if len(body.term_ids) else 0,
                    int(self._sample.ids.max()) + 1 if len(self._sample.ids) else 0)
        in_sentences = np.bincount(_pairs(self._sample)[1], minlength=width).astype(np.float64)
        in_bodies = np.zeros(width, dtype=np.float64)
        in_bodies[body.term_ids] = body.term_counts(rows)
        if (empty := term_id(EMPTY)) is not None and empty < width:
            in_bodies[empty] = 0.0  # a passage without content words is counted as one EMPTY word
        df = np.zeros(width, dtype=np.float64)
        df[body.term_ids] = body.term_df
        if full:
            estimate = in_sentences
        else:
            average = in_sentences.sum() / max(in_bodies.sum(), 1.0)
            estimate = df * (in_sentences + SMOOTHING * average) / (in_bodies + SMOOTHING)
        self._df = np.minimum(estimate, self.sentence_count)
        self._idf = np.log(1.0 + (self.sentence_count - self._df + 0.5) / (self._df + 0.5))
        self._cache: dict[int, array] = {}
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held (the sample's token ids, the statistics and the per-passage cache)."""
        held = self._sample.ids.nbytes + self._sample.ptr.nbytes + self._sample_owner.nbytes + self._idf.nbytes * 2
        return held + sum(a.itemsize * len(a) + 64 for a in list(self._cache.values()))

    def _query(self, qterms: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Sorted global ids of the query's terms some sentence has, and their estimated idf."""
        ids = sorted({i for i in (term_id(t) for t in qterms) if i is not None and i < len(self._df)
                      and self._df[i] > 0})
        q = np.array(ids, dtype=np.int64)
        return q, self._idf[q]

    def _row_tokens(self, row: int) -> np.ndarray:
        """Sentence token ids of one passage: [sentence count, each one's length..., ids...] (cached)."""
        found = self._cache.get(row)
        if found is None:
            per = [token_ids(s.text) for s in self._sentences_of(row)]
            found = array("i", [len(per)] + [len(x) for x in per])
            for x in per:
                found.extend(x)
            with self._lock:
                if len(self._cache) >= CACHE_ROWS:
                    self._cache.clear()
                self._cache[row] = found
        return np.frombuffer(found, dtype=np.int32)

    def _best(self, tokens: Tokens, owner: np.ndarray, count: int, q: np.ndarray, idf: np.ndarray) -> np.ndarray:
        """Best sentence BM25 per owner (0..count-1) of the sentences in `tokens`."""
        best = np.zeros(count, dtype=np.float64)
        if not len(q) or not len(tokens.ids):
            return best
        at = np.flatnonzero(np.isin(tokens.ids, q))
        if not len(at):
            return best
        sentence = np.searchsorted(tokens.ptr, at, side="right") - 1
        keys, tf = np.unique(sentence * len(q) + np.searchsorted(q, tokens.ids[at]), return_counts=True)
        sentence, term = keys // len(q), keys % len(q)
        lengths = tokens.lengths()[sentence]
        lengths = np.where(lengths > 0, lengths, 1)
        norm = self.k1 * ((1.0 - self.b) + self.b * lengths / self.avg_length)
        per_sentence = np.bincount(sentence, weights=idf[term] * tf / (norm + tf), minlength=len(tokens))
        np.maximum.at(best, owner, per_sentence)
        return best

    def scores(self, qterms: Sequence[str], body: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Per passage: best-sentence BM25 (exact for the candidates, the best `key` among passages with
        `body` > 0, and for the sample; estimated for the rest), and the sample's mean and spread of it."""
        n = len(body)
        q, idf = self._query(qterms)
        values = np.zeros(n, dtype=np.float32)
        if not len(q):
            return values, 0.0, 0.0
        sample = self._best(self._sample, self._sample_owner, len(self.sample_rows), q, idf)
        matched = np.flatnonzero(body > 0)
        chosen = matched
        if len(matched) > self.candidates:
            chosen = np.sort(matched[np.argpartition(-key[matched], self.candidates - 1)[: self.candidates]])
        packed = [self._row_tokens(r) for r in chosen.tolist()]
        ids, ptr, owner = [], [0], []
        for i, p in enumerate(packed):
            k = int(p[0])
            lengths = p[1:1 + k]
            ids.append(p[1 + k:])
            ptr.extend((ptr[-1] + np.cumsum(lengths)).tolist())
            owner.extend([i] * k)
        tokens = Tokens(np.concatenate(ids) if ids else np.zeros(0, dtype=np.int32), np.array(ptr, dtype=np.int64))
        exact = self._best(tokens, np.array(owner, dtype=np.int64), len(chosen), q, idf)
        # The others with a keyword match: passage BM25 scaled as the sample's unscored matches scale.
        others = np.setdiff1d(matched, chosen, assume_unique=True)
        if len(others):
            unscored = np.isin(self.sample_rows, chosen, invert=True) & (body[self.sample_rows] > 0)
            if not unscored.any():
                unscored = body[self.sample_rows] > 0
            total = float(body[self.sample_rows][unscored].sum())
            ratio = float(sample[unscored].sum()) / total if total > 0 else 0.0
            values[others] = body[others] * ratio
        values[self.sample_rows] = sample
        values[chosen] = exact
        return values, float(sample.mean()) if len(sample) else 0.0, float(sample.std()) if len(sample) else 0.0
