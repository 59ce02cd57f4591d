"""Sentence and heading vectors beside the chunk vectors, embedded once per text and cached on disk."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bot.ingest.chunking import Chunk, chunk_sentences
from bot.embed.embedders import Embedder
from bot.ingest.text import normalize_space

logger = logging.getLogger(__name__)

CACHE_PREFIX = "text-vectors-"
# Above this many passages, sentence vectors cost more build time than they are worth: passages only.
MAX_CHUNKS = 5000


KEY_BYTES = 20



@dataclass(frozen=True)
class AuxVectors:
    """Finer vectors beside the chunk vectors: each sentence (with its chunk row) and each heading."""

    sentence_vectors: np.ndarray  # (n_sentences, dim), sentences in `chunk_sentences` order
    sentence_owner: np.ndarray  # (n_sentences,) row of the chunk the sentence belongs to
    heading_vectors: np.ndarray  # (n_chunks, dim) the chunk's question heading


def _key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


def cache_path(index_dir: Path, model: str) -> Path:
    """Where the text-vector cache of `model` lives in the index folder."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model)
    return index_dir / f"{CACHE_PREFIX}{safe}.npz"


def aux_texts(chunks: Sequence[Chunk]) -> tuple[list[str], np.ndarray, list[str]]:
    """Every chunk's sentences (whitespace collapsed), their chunk rows, and every chunk's heading."""
    sentences: list[str] = []
    owner: list[int] = []
    for row, chunk in enumerate(chunks):
        for sentence in chunk_sentences(chunk):
            sentences.append(normalize_space(sentence.text))
            owner.append(row)
    headings = [normalize_space(c.question) for c in chunks]
    return sentences, np.array(owner, dtype=np.int64), headings


def _load(path: Path, dim: int) -> dict[bytes, np.ndarray]:
    try:
        with np.load(path) as data:
            keys, vectors = data["keys"], data["vectors"]
    except FileNotFoundError:
        return {}
    except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt, never fatal
        logger.warning("ignoring unreadable text-vector cache %s: %s", path, exc)
        return {}
    if vectors.ndim != 2 or vectors.shape[1] != dim or len(keys) != len(vectors):
        return {}
    if keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
        return {}  # an older cache format: rebuilt
    return {k.tobytes(): v for k, v in zip(keys, vectors)}


def _save(path: Path, cache: dict[bytes, np.ndarray], dim: int) -> None:
    # Raw uint8 rows: numpy's "S" strings drop trailing NUL bytes, which would lose ~1 in 256 digests.
    keys = np.frombuffer(b"".join(cache), dtype=np.uint8).reshape(-1, KEY_BYTES)
    vectors = np.stack(list(cache.values())).astype(np.float32) if cache else np.zeros((0, dim), np.float32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            np.savez(f, keys=keys, vectors=vectors)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only index folder still serves; the vectors just aren't kept
        logger.warning("cannot write text-vector cache %s: %s", path, exc)
        tmp.unlink(missing_ok=True)


def text_vectors(index_dir: Path, chunks: Sequence[Chunk], embedder: Embedder,
                 progress: bool = False) -> AuxVectors:
    """Sentence and heading vectors for `chunks`; only texts missing from the cache are embedded."""
    sentences, owner, headings = aux_texts(chunks)
    texts = list(dict.fromkeys([*sentences, *headings]))
    path = cache_path(index_dir, embedder.name)
    dim = int(embedder.dim)
    cache = _load(path, dim)
    missing = [t for t in texts if _key(t) not in cache]
    if missing:
        logger.info("embedding %d new sentences and headings", len(missing))
        vectors = embedder.embed_documents(missing, progress=progress)
        if vectors.ndim == 2 and vectors.shape[1] != dim:
            dim, cache = vectors.shape[1], {}
            missing, vectors = texts, embedder.embed_documents(texts, progress=progress)
        for text, vector in zip(missing, vectors):
            cache[_key(text)] = np.asarray(vector, dtype=np.float32)
    wanted = {_key(t) for t in texts}
    if missing or len(cache) != len(wanted):
        _save(path, {k: v for k, v in cache.items() if k in wanted}, dim)

    def rows(items: list[str]) -> np.ndarray:
        if not items:
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([cache[_key(t)] for t in items]).astype(np.float32)

    return AuxVectors(rows(sentences), owner, rows(headings))


def warm(index_dir: Path, embedder: Embedder, progress: bool = False) -> int:
    """After a build: embed the new sentences and headings of the current generation; returns how many."""
    from bot.index import store
    try:
        manifest = store.read_manifest(index_dir)
        if sum(f.chunks for f in manifest.files.values()) > MAX_CHUNKS:
            return 0
        index = store.load(index_dir, embedder.name)
        try:
            before = len(_load(cache_path(index_dir, embedder.name), int(embedder.dim)))
            text_vectors(index_dir, index.chunks, embedder, progress=progress)
            return max(0, len(_load(cache_path(index_dir, embedder.name), int(embedder.dim))) - before)
        finally:
            close = getattr(index, "close", None)
            if close:
                close()
    except Exception as exc:  # noqa: BLE001 - answers still work from passage vectors; never fail a build
        logger.warning("sentence vectors not precomputed: %s", exc)
        return 0
