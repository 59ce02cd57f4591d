"""Baseline: BM25 (bm25s, English stemmer and stop words) over the passage text, one chunk per question.

    python bench/baseline_bm25.py [QUESTIONS.jsonl] [--index DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answer.answerer import Passage  # noqa: E402
from bot.ingest.chunking import Chunk  # noqa: E402
from bot.search.query import matches  # noqa: E402


class BM25Baseline:
    """bm25s with its own tokenizer, as an off-the-shelf setup would use it."""

    name = "BM25 (bm25s), one chunk per question"

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        import bm25s
        import Stemmer

        self.chunks = list(chunks)
        self.stemmer = Stemmer.Stemmer("english")
        self.bm25 = bm25s.BM25()
        self.bm25.index(bm25s.tokenize([c.text for c in self.chunks], stopwords="en", stemmer=self.stemmer,
                                       show_progress=False), show_progress=False)

    def search(self, query: str, k: int = 10, project: str | None = None,
               adopter: str | None = None) -> list[Passage]:
        """Top-k passages by BM25."""
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self.stemmer, return_ids=False,
                                show_progress=False)[0]
        known = [t for t in tokens if t in self.bm25.vocab_dict]
        scores = self.bm25.get_scores(known) if known else np.zeros(len(self.chunks))
        rows = [r for r in np.argsort(-scores, kind="stable") if matches(self.chunks[r], project, adopter)][:k]
        return [_passage(self.chunks[r], float(scores[r])) for r in rows]


def _passage(c: Chunk, score: float) -> Passage:
    return Passage(c.chunk_id, c.source, c.project, c.adopter, c.section, c.question, c.text,
                   c.line_start, c.line_end, round(score, 4))


if __name__ == "__main__":
    from bench.quality import main

    main(["--systems", "bm25", *sys.argv[1:]])
