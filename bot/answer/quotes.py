"""Pick the sentence(s) of a passage that answer a question, verbatim, with their exact source lines."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from bot.ingest.chunking import Chunk
from bot.index.keyword import terms
from bot.ingest.text import Sentence, raw_words, split_sentences, words
from bot.tuning import COVERAGE_WEIGHT, MAX_SENTENCES, NEIGHBOUR_GAP, SHORT_WORDS

logger = logging.getLogger(__name__)

# A new list item ("* ", "- ", "+ ", "• ", "1. ", "2) ") at the start of a line between two sentences: a short
# quote does not take a weak neighbour across it ("Throughput and latency * Scale to zero is particularly useful").
_ITEM_BREAK = re.compile(r"\n[ \t]*(?:[*+\-\u2022]|\d{1,3}[.)])[ \t]")


_INTRODUCES = re.compile(r":[\s*_]*$")


@dataclass(frozen=True)
class Quote:
    """A verbatim stretch of a passage and its 1-based line span in the source file."""

    text: str
    line_start: int
    line_end: int


def sentence_offsets(text: str, sentences: Sequence[Sentence]) -> list[tuple[int, int]]:
    """Character span of each sentence inside `text` (found in order, so repeats resolve correctly)."""
    spans = []
    cursor = 0
    for s in sentences:
        at = text.find(s.text, cursor)
        if at < 0:  # cannot happen for sentences split from `text`; stay safe
            at = text.find(s.text)
        if at < 0:
            raise ValueError(f"sentence not found in passage: {s.text[:40]!r}")
        spans.append((at, at + len(s.text)))
        cursor = at + len(s.text)
    return spans


def sentence_scores(sentences: Sequence[Sentence], question_terms: Sequence[str],
                    cosines: np.ndarray | None = None,
                    sentence_terms: Sequence[frozenset[str]] | None = None) -> np.ndarray:
    """How well each sentence answers: its cosine with the question plus its share of question words
    (`sentence_terms`: each sentence's `terms`, when already known)."""
    q = set(question_terms)
    if sentence_terms is None or len(sentence_terms) != len(sentences):
        sentence_terms = [frozenset(terms(s.text)) for s in sentences] if q else [frozenset()] * len(sentences)
    cover = np.array([len(q & t) / len(q) if q else 0.0 for t in sentence_terms], dtype=np.float32)
    if cosines is not None and len(cosines) == len(sentences):
        return np.asarray(cosines, dtype=np.float32) + COVERAGE_WEIGHT * cover
    # Without sentence vectors: word coverage, longer sentences slightly preferred on ties.
    return cover + 0.01 * np.array([min(len(words(s.text)), 20) / 20 for s in sentences], dtype=np.float32)


def choose(scores: np.ndarray, sentences: Sequence[Sentence], max_sentences: int = MAX_SENTENCES,
           apart: Sequence[bool] | None = None) -> tuple[int, int]:
    """The [first, last] sentence positions of the quote: the best sentence, grown by close neighbours.

    `apart[i]` is True when sentence i+1 starts a new list item: a short quote does not take that neighbour
    along unless it scores close to the best (another item that answers too)."""
    best = int(np.argmax(scores))
    first = last = best
    size = len(raw_words(sentences[best].text))  # words in sentences first..last (raw: only counted)
    while last - first + 1 < max_sentences:
        options = [i for i in (first - 1, last + 1) if 0 <= i < len(sentences)]
        if not options:
            break
        # The better-scoring neighbour; on a tie the following sentence, which usually explains.
        nxt = max(options, key=lambda i: (scores[i], i > last))
        crosses_item = apart is not None and apart[min(nxt, last)]
        if (size >= SHORT_WORDS or crosses_item) and scores[nxt] < scores[best] - NEIGHBOUR_GAP:
            break
        first, last = min(first, nxt), max(last, nxt)
        size += len(raw_words(sentences[nxt].text))
    # A sentence ending in a colon introduces what follows ("... roughly three distinct areas:"): a quote does
    # not stop there, it fills its sentences with what it introduces, at the cost of its own first ones.
    if _INTRODUCES.search(sentences[last].text) and last + 1 < len(sentences):
        last = min(len(sentences) - 1, max(last + 1, first + max_sentences - 1))
        first = max(first, last - max_sentences + 1)
    return first, last


def pick_quote(chunk: Chunk, question_terms: Sequence[str], cosines: np.ndarray | None = None,
               sentences: Sequence[Sentence] | None = None, max_sentences: int = MAX_SENTENCES,
               sentence_terms: Sequence[frozenset[str]] | None = None) -> Quote:
    """The quote of `chunk` for a question: verbatim text from the passage with its exact lines
    (`sentences` and `sentence_terms`: the passage's, when already split and stemmed)."""
    sentences = list(sentences) if sentences is not None else split_sentences(chunk.text.split("\n"),
                                                                             chunk.line_start)
    if not sentences:
        text = chunk.text.strip()
        return Quote(text, chunk.line_start, chunk.line_end)
    spans = sentence_offsets(chunk.text, sentences)
    apart = [bool(_ITEM_BREAK.search(chunk.text, a_end, b_start + 1))
             for (_, a_end), (b_start, _) in zip(spans, spans[1:])]
    first, last = choose(sentence_scores(sentences, question_terms, cosines, sentence_terms), sentences,
                         max_sentences, apart)
    text = chunk.text[spans[first][0]: spans[last][1]]
    return Quote(text, sentences[first].line_start, sentences[last].line_end)
