"""Baseline: plain dense search, all-MiniLM-L6-v2 + FAISS inner product over the same chunks, nothing else.

    python bench/baseline_dense.py [QUESTIONS.jsonl] [--index DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answer.answerer import Passage  # noqa: E402
from bot.embed.embedders import Embedder  # noqa: E402
from bot.search.query import matches  # noqa: E402
from bot.index.store import LoadedIndex  # noqa: E402


class DenseBaseline:
    """The index's own FAISS search: one query vector, nearest passages, no fusion or names."""

    name = "plain dense (MiniLM + FAISS), same chunks"

    def __init__(self, index: LoadedIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder

    def search(self, query: str, k: int = 10, project: str | None = None,
               adopter: str | None = None) -> list[Passage]:
        """Top-k passages by cosine."""
        pairs = self.index.search(self.embedder.embed_query(query), len(self.index.chunks))
        out = []
        for row, score in pairs:
            c = self.index.chunks[row]
            if matches(c, project, adopter):
                out.append(Passage(c.chunk_id, c.source, c.project, c.adopter, c.section, c.question, c.text,
                                   c.line_start, c.line_end, round(score, 4)))
            if len(out) == k:
                break
        return out


if __name__ == "__main__":
    from bench.quality import main

    main(["--systems", "dense", *sys.argv[1:]])
