"""Keyword search: BM25 over stemmed words with English stop words removed.

The scores are bm25s's (Lucene variant, k1 1.2, b 0.75; tests/test_keyword.py checks them against bm25s), computed
with numpy from token ids: each raw word is stemmed once per process, texts can be tokenized once for several
indexes (`Part`), and small indexes cache their texts' ids, so a reload after one file changed takes a fraction of
a second.
"""

from __future__ import annotations

import logging
import math
import threading
from array import array
from dataclasses import dataclass
from itertools import chain
from typing import Iterable, Sequence

import numpy as np
import xxhash

from bot.ingest.text import raw_words

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
_word_ids: dict[str, tuple[int, ...]] = {}  # raw word -> global ids of its stemmed content parts
# Token ids of texts seen by earlier builds: a reload after one file changed re-tokenizes only that file's
# texts. Bounded by bytes (ids and per-entry overhead); once full it starts over. Large indexes bypass it.
_text_ids: dict[int, bytes] = {}  # by 128-bit hash of the text: its ids as int32 bytes
_cache_bytes = 0
_CACHE_MAX_BYTES = 48 << 20
_ENTRY_OVERHEAD = 150  # dict slot, 128-bit int key and bytes header, roughly
EMPTY = "\x00empty"  # the one token of a text without content words (as bm25s counts it: length 1)
_BLOCK_TOKENS = 1 << 18  # tokens per block while a matrix is built (bounds the temporaries)
_PAIR_CACHE_BYTES = 48 << 20  # (text, term) pairs kept between the two passes of a build


def _term_id(term: str) -> int:
    """The global id of a stemmed term, new terms numbered in order (call with _vocab_lock held)."""
    found = _vocab.get(term)
    if found is None:
        found = _vocab[term] = len(_names)
        _names.append(term)
    return found


def term_id(term: str) -> int | None:
    """The global id of a stemmed term, None if no text has had it."""
    return _vocab.get(term)


def _ids_of_word(raw: str) -> tuple[int, ...]:
    """Global ids of one raw word's stemmed content parts (numbering new terms)."""
    parts = _terms_of_word(raw)
    with _vocab_lock:
        ids = tuple(_term_id(t) for t in parts)
    if len(_word_ids) < _WORD_CACHE_MAX:
        _word_ids[raw] = ids
    return ids


def token_ids(text: str) -> array:
    """Global term ids of `text`'s content words, in order (empty for none): `terms(text)` as ids."""
    words = raw_words(text)
    parts = list(map(_word_ids.get, words))
    if None in parts:
        parts = [p if p is not None else _ids_of_word(w) for p, w in zip(parts, words)]
    return array("i", chain.from_iterable(parts))


@dataclass(frozen=True)
class Tokens:
    """Term ids of many texts in one array: text i's ids are `ids[ptr[i]:ptr[i + 1]]`."""

    ids: np.ndarray  # int32 global term ids
    ptr: np.ndarray  # int64, one more than there are texts

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def lengths(self) -> np.ndarray:
        """How many ids each text has."""
        return np.diff(self.ptr)


def tokenize(texts: Iterable[str], cache: bool = False) -> Tokens:
    """Term ids of every text (`cache`: keep them for the next build, for reloads of small indexes)."""
    global _cache_bytes
    flat = array("i")
    ptr = array("q", [0])
    for text in texts:
        if not cache:
            flat.extend(token_ids(text))
        else:
            key = xxhash.xxh3_128_intdigest(text.encode("utf-8", "surrogatepass"))  # keeps no text alive
            packed = _text_ids.get(key)
            if packed is None:
                packed = token_ids(text).tobytes()
                if _cache_bytes + len(packed) + _ENTRY_OVERHEAD > _CACHE_MAX_BYTES:
                    _text_ids.clear()
                    _cache_bytes = 0
                _text_ids[key] = packed
                _cache_bytes += len(packed) + _ENTRY_OVERHEAD
            flat.frombytes(packed)
        ptr.append(len(flat))
    return Tokens(np.frombuffer(flat, dtype=np.int32) if len(flat) else np.zeros(0, dtype=np.int32),
                  np.frombuffer(ptr, dtype=np.int64))


@dataclass(frozen=True)
class Part:
    """Some of every row's words: row r has the ids of texts `items[ptr[r]:ptr[r + 1]]` of `tokens`
    (`items` None: row r is text r)."""

    tokens: Tokens
    items: np.ndarray | None = None
    ptr: np.ndarray | None = None

    @staticmethod
    def one_each(tokens: Tokens, item_of_row: Sequence[int] | np.ndarray) -> "Part":
        """Row r has the words of text `item_of_row[r]`."""
        items = np.asarray(item_of_row, dtype=np.int64)
        return Part(tokens, items, np.arange(len(items) + 1, dtype=np.int64))

    @staticmethod
    def groups(tokens: Tokens, rows: Sequence[Sequence[int]]) -> "Part":
        """Row r has the words of the texts `rows[r]`."""
        sizes = np.fromiter((len(g) for g in rows), dtype=np.int64, count=len(rows))
        ptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(sizes, out=ptr[1:])
        items = np.fromiter((i for g in rows for i in g), dtype=np.int64, count=int(ptr[-1]))
        return Part(tokens, items, ptr)

    def row_lengths(self) -> np.ndarray:
        """How many ids each row gets from this part."""
        lengths = self.tokens.lengths()
        if self.items is None:
            return lengths
        summed = np.zeros(len(self.items) + 1, dtype=np.int64)
        np.cumsum(lengths[self.items], out=summed[1:])
        return summed[self.ptr[1:]] - summed[self.ptr[:-1]]

    def block(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(row, id) of every token rows start..stop get from this part."""
        tok = self.tokens
        if self.items is None:
            ids = tok.ids[tok.ptr[start]:tok.ptr[stop]]
            return np.repeat(np.arange(start, stop, dtype=np.int64), np.diff(tok.ptr[start:stop + 1])), ids
        items = self.items[self.ptr[start]:self.ptr[stop]]
        item_rows = np.repeat(np.arange(start, stop, dtype=np.int64), np.diff(self.ptr[start:stop + 1]))
        starts = tok.ptr[items]
        lengths = tok.ptr[items + 1] - starts
        ends = np.cumsum(lengths)
        at = np.repeat(starts - (ends - lengths), lengths) + np.arange(int(ends[-1]) if len(ends) else 0)
        return np.repeat(item_rows, lengths), tok.ids[at]


class KeywordIndex:
    """BM25 (Lucene's variant, as bm25s scores it) over a fixed list of texts; `scores(query)` gives one
    score per text. Built with numpy from token ids: a sparse texts x terms matrix of BM25 weights, stored by
    term (CSC) and built block by block, so the temporaries stay small whatever the number of texts."""

    def __init__(self, texts: Sequence[str] = (), k1: float = 1.2, b: float = 0.75, *,
                 parts: Sequence[Part] | None = None, cache: bool = True) -> None:
        """Index `texts`, or rows made of `parts` (rows whose words were tokenized once for several indexes)."""
        if parts is None:
            parts = [Part(tokenize(texts, cache=cache))]
        sizes = {len(p.tokens) if p.items is None else len(p.ptr) - 1 for p in parts}
        if len(sizes) != 1:
            raise ValueError(f"keyword index parts disagree on the number of rows: {sorted(sizes)}")
        self.size = n = sizes.pop()
        lengths = sum((p.row_lengths() for p in parts), np.zeros(n, dtype=np.int64))
        empty = lengths == 0
        lengths[empty] = 1  # a text without content words is one EMPTY token, as bm25s counts it
        with _vocab_lock:
            empty_id = _term_id(EMPTY)
            width = len(_names)
        cum = np.cumsum(lengths)
        cuts = np.searchsorted(cum, np.arange(_BLOCK_TOKENS, int(cum[-1]) if n else 0, _BLOCK_TOKENS), side="right")
        bounds = np.unique(np.concatenate([[0], cuts, [n]])).tolist()

        def unique_pairs(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            """Each global id * (stop - start) + row - start of rows start..stop once, ascending (by term, then
            row), with its count."""
            got = [p.block(start, stop) for p in parts]
            missing = np.flatnonzero(empty[start:stop]) + start
            rows = np.concatenate([r for r, _ in got] + [missing])
            ids = np.concatenate([i.astype(np.int64) for _, i in got] + [np.full(len(missing), empty_id)])
            keys = ids * (stop - start) + (rows - start)
            if (stop - start) * width < 1 << 32:
                keys = keys.astype(np.uint32)  # sorts faster
            keys, tf = np.unique(keys, return_counts=True)
            return keys, tf.astype(np.uint16) if len(tf) and int(tf.max()) < 1 << 16 else tf

        # The first pass counts each term's texts; its pairs are kept for the second (filling the matrix) while
        # they fit in _PAIR_CACHE_BYTES, else made again there.
        df_all = np.zeros(width, dtype=np.int64)
        kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        kept_bytes = 0
        for start, stop in zip(bounds, bounds[1:]):
            keys, tf = unique_pairs(start, stop)
            df_all += np.bincount(keys // (stop - start), minlength=width)
            if kept_bytes + keys.nbytes + tf.nbytes <= _PAIR_CACHE_BYTES:
                kept[start] = keys, tf
                kept_bytes += keys.nbytes + tf.nbytes
        self._terms = np.flatnonzero(df_all)  # sorted global ids of the terms some text has
        self.term_df = df = df_all[self._terms]  # per term (column): how many texts have it
        del df_all
        column = np.full(width, -1, dtype=np.int64)
        column[self._terms] = np.arange(len(self._terms))
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        avg = lengths.mean() if n else 1.0
        norm = k1 * ((1.0 - b) + b * lengths / avg)  # per row
        self._indptr = np.zeros(len(self._terms) + 1, dtype=np.int64)
        np.cumsum(df, out=self._indptr[1:])
        self._rows = np.empty(int(self._indptr[-1]), dtype=np.int32)  # per term: the rows that have it, ascending
        self._weights = np.empty(int(self._indptr[-1]), dtype=np.float32)  # and its BM25 weight in each
        cursor = self._indptr[:-1].copy()
        for start, stop in zip(bounds, bounds[1:]):
            keys, tf = kept.pop(start, None) or unique_pairs(start, stop)
            keys = keys.astype(np.int64, copy=False)
            col = column[keys // (stop - start)]  # ascending: each term's rows come together, in row order
            row = keys % (stop - start) + start
            weights = (idf[col] * tf / (norm[row] + tf)).astype(np.float32)
            counts = np.bincount(col, minlength=len(self._terms))
            # The i-th pair goes to its term's cursor plus how many pairs of the term came before it here.
            at = np.arange(len(col)) + (cursor - (np.cumsum(counts) - counts))[col]
            self._rows[at] = row
            self._weights[at] = weights
            cursor += counts
        self.df: dict[str, int] = {_names[g]: d for g, d in zip(self._terms.tolist(), df.tolist())}
        self.df.pop(EMPTY, None)
        self.vocab = set(self.df)

    @property
    def term_ids(self) -> np.ndarray:
        """Global ids of the terms some text has, ascending (the matrix's columns)."""
        return self._terms

    def term_counts(self, rows: np.ndarray) -> np.ndarray:
        """Per term (column, as `term_ids`): how many of `rows` (distinct row numbers) have it."""
        member = np.zeros(self.size, dtype=bool)
        member[rows] = True
        at = np.flatnonzero(member[self._rows])  # entries of the matrix in those rows
        return np.bincount(np.searchsorted(self._indptr, at, side="right") - 1, minlength=len(self._terms))

    @property
    def nbytes(self) -> int:
        """Bytes held by the matrix."""
        return self._rows.nbytes + self._weights.nbytes + self._indptr.nbytes + self._terms.nbytes

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term (highest for a term no text has)."""
        return math.log(1.0 + (self.size - self.df.get(term, 0) + 0.5) / (self.df.get(term, 0) + 0.5))

    def scores(self, query: str | list[str]) -> np.ndarray:
        """BM25 score of every text for the query (zeros when no query term is known)."""
        qterms = terms(query) if isinstance(query, str) else query
        known = [_vocab[t] for t in dict.fromkeys(qterms) if t in self.vocab]
        if not known or not self.size:
            return np.zeros(self.size, dtype=np.float32)
        cols = np.searchsorted(self._terms, np.array(known, dtype=np.int64)).tolist()
        spans = [slice(self._indptr[c], self._indptr[c + 1]) for c in cols]
        rows = np.concatenate([self._rows[s] for s in spans])
        weights = np.concatenate([self._weights[s] for s in spans])
        return np.bincount(rows, weights=weights, minlength=self.size).astype(np.float32)
