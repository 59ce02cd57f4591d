"""Keyword search: BM25 (bm25s) over stemmed words with English stop words removed."""

from __future__ import annotations

import logging
import math
import threading
from typing import Sequence

import numpy as np

from bot.text import words

logger = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG

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


def terms(text: str) -> list[str]:
    """Stemmed content words of `text`, in order (stop words dropped, possessives cut)."""
    toks = []
    for word in words(text):
        # Compounds count by their parts: "order-automation" must meet "order" and "automation".
        for w in word.removesuffix("'s").split("-"):
            w = w.strip("'")
            if w and w not in STOP_WORDS and (len(w) > 1 or w.isdigit()):
                toks.append(w)
    return _stem_words(toks)


class KeywordIndex:
    """BM25 over a fixed list of texts; `scores(query)` gives one score per text."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        import bm25s

        self.size = len(texts)
        tokenized = [terms(t) or ["\x00empty"] for t in texts]
        self.df: dict[str, int] = {}
        for toks in tokenized:
            for t in set(toks):
                self.df[t] = self.df.get(t, 0) + 1
        self.vocab = set(self.df)
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        if tokenized:
            self._bm25.index(tokenized, show_progress=False)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term (highest for a term no text has)."""
        return math.log(1.0 + (self.size - self.df.get(term, 0) + 0.5) / (self.df.get(term, 0) + 0.5))

    def scores(self, query: str | list[str]) -> np.ndarray:
        """BM25 score of every text for the query (zeros when no query term is known)."""
        qterms = terms(query) if isinstance(query, str) else query
        known = [t for t in dict.fromkeys(qterms) if t in self.vocab]
        if not known or not self.size:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)
