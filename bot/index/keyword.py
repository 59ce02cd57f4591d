"""Keyword terms: stemmed words with English stop words removed, and their process-wide ids.

Each raw word is stemmed once per process. The BM25 indexes over these terms are bm25s matrices built by
`qabot index` (bot/index/bm25.py); the ids serve the passage files (bot/index/passages.py) and the sampled
sentence BM25 of large indexes (bot/search/sentence_keywords.py).
"""

from __future__ import annotations

import inspect
import logging
import threading
from array import array
from dataclasses import dataclass
from itertools import chain
from typing import Iterable

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


_vocab: dict[str, int] = {}  # stemmed term -> global id, shared by the whole process
_names: list[str] = []  # global id -> stemmed term
_vocab_lock = threading.Lock()
_word_ids: dict[str, tuple[int, ...]] = {}  # raw word -> global ids of its stemmed content parts
EMPTY = "\x00empty"  # the one token of a text without content words (as bm25s counts it: length 1)


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


def tokenize(texts: Iterable[str]) -> Tokens:
    """Term ids of every text."""
    flat = array("i")
    ptr = array("q", [0])
    for text in texts:
        flat.extend(token_ids(text))
        ptr.append(len(flat))
    return Tokens(np.frombuffer(flat, dtype=np.int32) if len(flat) else np.zeros(0, dtype=np.int32),
                  np.frombuffer(ptr, dtype=np.int64))


def fingerprint() -> str:
    """What the ids depend on: the word pattern, the stop words, the stemmer and how a word becomes terms."""
    import Stemmer

    from bot.ingest import text
    h = xxhash.xxh3_64()
    for part in (text._WORD.pattern, " ".join(sorted(STOP_WORDS)), str(Stemmer.version()),
                 inspect.getsource(_terms_of_word)):
        h.update(part.encode("utf-8"))
    return h.hexdigest()
