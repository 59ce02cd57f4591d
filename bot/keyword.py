"""Keyword search: BM25 over stemmed words with English stop words removed.

The scores are bm25s's (Lucene variant, k1 1.2, b 0.75; tests/test_keyword.py checks them against bm25s), computed
with numpy/scipy from cached token ids, so rebuilding the indexes after one file changed takes a fraction of a second.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Sequence

import numpy as np
import xxhash

from bot.text import raw_words

logger = logging.getLogger(__name__)

# Function words plus question words: they say how a question is asked, not what it is about.
STOP_WORDS = frozenset("""
a about above after again all also am an and any are as at be been before being below between both but by
can could did do does doing done during each few for from further had has have having he her here hers him
his how i if in into is it its itself just me more most my no nor not now of off on once only or other our
ours out over own same she should so some such than that the their theirs them then there these they this
those through to too under until up very was we were what when where which while who whom why will with
would you your yours yes s t don't doesn't isn't aren't wasn't weren't didn't can't won't it's they're
we're i'm what's let's there's that's actually really exactly specifically anything something
adopter adopters interview interviews interviewee interviewees
say says said tell told mention mentioned mentions
""".split())
# The last two lines: every document is an adopter interview, and "Adopter 4" names one, so "adopters" in a
# question (the interviewees in general) must not pull the interviews named "Adopter N"; and what someone
# "said" is the whole corpus.

_stemmer = None
_stemmer_lock = threading.Lock()


def _stem_words(tokens: list[str]) -> list[str]:
    global _stemmer
    if _stemmer is None:
        with _stemmer_lock:
            if _stemmer is None:
                import Stemmer

                _stemmer = Stemmer.Stemmer("english")
    return _stemmer.stemWords(tokens)


_word_terms: dict[str, tuple[str, ...]] = {}  # raw word -> its stemmed content parts; the vocabulary is small
_WORD_CACHE_MAX = 1_000_000


def _terms_of_word(raw: str) -> tuple[str, ...]:
    """Stemmed content parts of one raw word token (cached: every text re-uses the same few words)."""
    cached = _word_terms.get(raw)
    if cached is None:
        parts = []
        # Compounds count by their parts: "order-automation" must meet "order" and "automation".
        for w in raw.lower().replace("’", "'").removesuffix("'s").split("-"):
            w = w.strip("'")
            if w and w not in STOP_WORDS and (len(w) > 1 or w.isdigit()):
                parts.append(w)
        cached = tuple(_stem_words(parts)) if parts else ()
        if len(_word_terms) < _WORD_CACHE_MAX:
            _word_terms[raw] = cached
    return cached


def terms(text: str) -> list[str]:
    """Stemmed content words of `text`, in order (stop words dropped, possessives cut)."""
    out: list[str] = []
    for raw in raw_words(text):
        out.extend(_terms_of_word(raw))
    return out


_vocab: dict[str, int] = {}  # stemmed term -> global id, shared by every KeywordIndex of the process
_names: list[str] = []  # global id -> stemmed term
_vocab_lock = threading.Lock()
# Token ids of texts seen by earlier builds: a reload after one file changed re-tokenizes only that file's
# texts. Bounded: once it holds more than _CACHE_MAX_IDS ids (a corpus of about 1,200 interviews) it starts over.
_text_ids: dict[int, np.ndarray] = {}  # by 128-bit hash of the text
_cache_size = 0
_CACHE_MAX_IDS = 6_000_000
EMPTY = "\x00empty"  # the one token of a text without content words (as bm25s counts it: length 1)


def _term_id(term: str) -> int:
    """The global id of a stemmed term, new terms numbered in order (call with _vocab_lock held)."""
    found = _vocab.get(term)
    if found is None:
        found = _vocab[term] = len(_names)
        _names.append(term)
    return found


def _ids_of(text: str) -> np.ndarray:
    """Global term ids of `text` (cached)."""
    global _cache_size
    key = xxhash.xxh3_128_intdigest(text.encode("utf-8", "surrogatepass"))  # keeps no text alive
    ids = _text_ids.get(key)
    if ids is None:
        toks = terms(text) or [EMPTY]
        with _vocab_lock:
            ids = np.fromiter((_term_id(t) for t in toks), dtype=np.int32, count=len(toks))
            if _cache_size + len(ids) > _CACHE_MAX_IDS:
                _text_ids.clear()
                _cache_size = 0
            _text_ids[key] = ids
            _cache_size += len(ids)
    return ids


class KeywordIndex:
    """BM25 (Lucene's variant, as bm25s scores it) over a fixed list of texts; `scores(query)` gives one
    score per text. Built with numpy from token ids: a sparse texts x terms matrix of BM25 weights."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        from scipy.sparse import csc_matrix

        self.size = n = len(texts)
        per_text = [_ids_of(t) for t in texts]
        lengths = np.fromiter((len(ids) for ids in per_text), dtype=np.int64, count=n)
        flat = np.concatenate(per_text) if n else np.zeros(0, dtype=np.int32)
        self._terms, local = np.unique(flat, return_inverse=True)  # sorted global ids; column of each token
        width = max(len(self._terms), 1)
        rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
        pairs, tf = np.unique(rows * width + local, return_counts=True)
        row, col = pairs // width, pairs % width
        df = np.bincount(col, minlength=len(self._terms))
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        avg = lengths.mean() if n else 1.0
        norm = k1 * ((1.0 - b) + b * lengths[row] / avg)
        weights = (idf[col] * tf / (norm + tf)).astype(np.float32)
        self._matrix = csc_matrix((weights, (row, col)), shape=(n, len(self._terms)), dtype=np.float32)
        self.df: dict[str, int] = {_names[g]: d for g, d in zip(self._terms.tolist(), df.tolist())}
        self.df.pop(EMPTY, None)
        self.vocab = set(self.df)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term (highest for a term no text has)."""
        return math.log(1.0 + (self.size - self.df.get(term, 0) + 0.5) / (self.df.get(term, 0) + 0.5))

    def scores(self, query: str | list[str]) -> np.ndarray:
        """BM25 score of every text for the query (zeros when no query term is known)."""
        qterms = terms(query) if isinstance(query, str) else query
        known = [_vocab[t] for t in dict.fromkeys(qterms) if t in self.vocab]
        if not known or not self.size:
            return np.zeros(self.size, dtype=np.float32)
        cols = np.searchsorted(self._terms, np.array(known, dtype=np.int32))
        m = self._matrix
        spans = [slice(m.indptr[c], m.indptr[c + 1]) for c in cols.tolist()]
        rows = np.concatenate([m.indices[s] for s in spans])
        weights = np.concatenate([m.data[s] for s in spans])
        return np.bincount(rows, weights=weights, minlength=self.size).astype(np.float32)
