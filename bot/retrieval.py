"""Find the passages that best match a question: dense FAISS search with project/adopter filters."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from bot.chunking import Chunk
from bot.embedding import Embedder
from bot.store import LoadedIndex

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its scores (`score` is what ranking used; `dense` is the cosine)."""

    chunk: Chunk
    score: float
    dense: float


def normalize_name(name: str) -> str:
    """Lower-case alphanumerics only, so "KNative", "knative" and "Knative " compare equal."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def matches(chunk: Chunk, project: str | None, adopter: str | None) -> bool:
    """True when the chunk passes the explicit project/adopter filters."""
    if project and normalize_name(project) != normalize_name(chunk.project):
        return False
    if adopter:
        want, have = normalize_name(adopter), normalize_name(chunk.adopter)
        if not want or (want != have and not have.startswith(want)):
            return False
    return True


class Retriever:
    """Search over one loaded index generation."""

    def __init__(self, index: LoadedIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder

    def search(self, query: str, k: int = 10, project: str | None = None,
               adopter: str | None = None) -> list[Hit]:
        """Top-k hits for `query`, best first, restricted by the filters."""
        if not self.index.chunks:
            return []
        qv = self.embedder.embed_query(query)
        if project or adopter:
            rows = [i for i, c in enumerate(self.index.chunks) if matches(c, project, adopter)]
            if not rows:
                return []
            scores = np.asarray(self.index.vectors[rows]) @ qv
            order = np.argsort(-scores)[:k]
            pairs = [(rows[i], float(scores[i])) for i in order]
        else:
            pairs = self.index.search(qv, k)
        return [Hit(self.index.chunks[r], s, s) for r, s in pairs]
