"""Test doubles for the production seams: a deterministic embedder, selected in a subprocess with
`QABOT_MODEL=tests.fakes:FakeEmbedder` (run from the repo root, or with it on PYTHONPATH)."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from bot.ingest.text import words

FAKE_MODEL = "tests.fakes:FakeEmbedder"  # the QABOT_MODEL plugin spec of FakeEmbedder


class FakeEmbedder:
    """Deterministic hashed bag-of-words vectors: fast, no model, similar texts still score higher."""

    name: str
    dim: int

    def __init__(self, name: str = "fake", dim: int = 64) -> None:
        self.name = name
        self.dim = dim
        self.calls = 0  # texts embedded, for tests that check incremental builds

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in words(text):
            h = int.from_bytes(hashlib.md5(w.encode()).digest()[:4], "little")
            v[h % self.dim] += 1.0 if h & (1 << 31) else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Hashed vectors for passages."""
        self.calls += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        """Hashed vector for a query."""
        return self._vector(text)
