"""Sentence and heading vectors of a generation, embedded by the build and stored inside the generation folder.

The file (`text-vectors.npz`: 20-byte sha1 keys of the texts and their vectors) is written with the rest of the
generation before CURRENT switches to it, so a reader always gets the vectors of the generation it loaded. An
incremental build takes the vectors of unchanged texts from the previous generation's file and embeds only new
ones. Up to format 4 one cache per model lived beside the generations (`text-vectors-<model>.npz`); a build
removes it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bot.embed.embedders import Embedder
from bot.index import generations
from bot.ingest.chunking import Chunk, chunk_sentences
from bot.ingest.text import normalize_space

logger = logging.getLogger(__name__)

FILE = "text-vectors.npz"
LEGACY_PREFIX = "text-vectors-"  # format 4: one cache per model beside the generations
# Above this many passages, sentence vectors cost more build time than they are worth: passages only.
MAX_CHUNKS = 5000
KEY_BYTES = 20


@dataclass(frozen=True)
class AuxVectors:
    """Finer vectors beside the chunk vectors: each sentence (with its chunk row) and each heading."""

    sentence_vectors: np.ndarray  # (n_sentences, dim), sentences in `chunk_sentences` order
    sentence_owner: np.ndarray  # (n_sentences,) row of the chunk the sentence belongs to
    heading_vectors: np.ndarray  # (n_chunks, dim) the chunk's question heading


def text_key(text: str) -> bytes:
    """The key of a sentence or heading in the file."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def generation_folder(where: Path) -> Path | None:
    """`where` itself when it is a generation folder, else the current generation of the index folder `where`."""
    where = Path(where)
    if (where / generations.MANIFEST).is_file():
        return where
    try:
        number = generations.current_generation(where)
    except generations.IndexDamaged:
        return None
    return generations.generation_dir(where, number) if number is not None else None


def cache_path(where: Path, model: str = "") -> Path:
    """The text-vector file of a generation folder (or of the index folder's current generation)."""
    folder = generation_folder(where)
    return (folder if folder is not None else Path(where)) / FILE


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


def needed_texts(chunks: Sequence[Chunk]) -> list[str]:
    """The distinct sentences and headings of `chunks`, in first-seen order."""
    sentences, _, headings = aux_texts(chunks)
    return list(dict.fromkeys([*sentences, *headings]))


def load_vectors(path: Path, dim: int) -> dict[bytes, np.ndarray]:
    """The file's vectors by key ({} when it is missing, unreadable or of another dimension)."""
    try:
        with np.load(path) as data:
            keys, vectors = data["keys"], data["vectors"]
    except FileNotFoundError:
        return {}
    except Exception as exc:  # noqa: BLE001 - missing vectors are embedded again, never fatal
        logger.warning("ignoring unreadable text vectors %s: %s", path, exc)
        return {}
    if vectors.ndim != 2 or vectors.shape[1] != dim or len(keys) != len(vectors):
        return {}
    if keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
        return {}
    return {k.tobytes(): v for k, v in zip(keys, vectors)}


def save_vectors(path: Path, cache: dict[bytes, np.ndarray], dim: int) -> None:
    """Write keys and vectors to `path` (a generation being written; the writer fsyncs and checksums it)."""
    # Raw uint8 rows: numpy's "S" strings drop trailing NUL bytes, which would lose ~1 in 256 digests.
    keys = np.frombuffer(b"".join(cache), dtype=np.uint8).reshape(-1, KEY_BYTES)
    vectors = np.stack(list(cache.values())).astype(np.float32) if cache else np.zeros((0, dim), np.float32)
    with path.open("wb") as f:
        np.savez(f, keys=keys, vectors=vectors)


def remove_legacy(index_dir: Path) -> None:
    """Delete the format-4 caches beside the generations (`text-vectors-<model>.npz`)."""
    for path in Path(index_dir).glob(f"{LEGACY_PREFIX}*.npz"):
        try:
            path.unlink()
            logger.info("removed %s (sentence vectors now live inside each generation)", path)
        except OSError as exc:
            logger.warning("cannot remove %s: %s", path, exc)


def text_vectors(where: Path, chunks: Sequence[Chunk], embedder: Embedder,
                 progress: bool = False) -> AuxVectors:
    """Sentence and heading vectors for `chunks` of the generation in `where` (a generation folder; an index
    folder means its current generation). Texts missing from the file are embedded here and not stored."""
    sentences, owner, headings = aux_texts(chunks)
    texts = list(dict.fromkeys([*sentences, *headings]))
    dim = int(embedder.dim)
    cache = load_vectors(cache_path(where), dim)
    missing = [t for t in texts if text_key(t) not in cache]
    if missing:
        logger.info("embedding %d sentences and headings the generation does not hold", len(missing))
        vectors = embedder.embed_documents(missing, progress=progress)
        if vectors.ndim == 2 and vectors.shape[1] != dim:
            dim, cache = vectors.shape[1], {}
            missing, vectors = texts, embedder.embed_documents(texts, progress=progress)
        for text, vector in zip(missing, vectors):
            cache[text_key(text)] = np.asarray(vector, dtype=np.float32)

    def rows(items: list[str]) -> np.ndarray:
        if not items:
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([cache[text_key(t)] for t in items]).astype(np.float32)

    return AuxVectors(rows(sentences), owner, rows(headings))

