"""The current generation opened for reuse by an incremental build: rows and vectors copied, not parsed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.index import textvectors
from bot.index.generations import IndexDamaged, generation_dir
from bot.index.passages import PassageFiles
from bot.index.store import (DERIVED, FAISS_FILE, KEYS, LISTS, VECTORS, Manifest, check_compatible, damaged_files,
                             read_manifest)
from bot.ingest.chunking import Chunk

logger = logging.getLogger(__name__)


@dataclass
class Previous:
    """The current generation opened for an incremental build: its rows are copied, not parsed."""

    manifest: Manifest
    path: Path
    vectors: np.ndarray
    keys: np.ndarray
    lists: np.ndarray | None
    passages: PassageFiles
    damaged: dict[str, str] = field(default_factory=dict)  # derived files found damaged (not used), with why
    _key_rows: dict[bytes, int] | None = None
    _chunks: list[Chunk] | None = None  # every passage, read once when asked

    @property
    def faiss_file(self) -> Path | None:
        """The FAISS index whose training a new approximate index may reuse (None when it is damaged)."""
        return None if FAISS_FILE in self.damaged else self.path / FAISS_FILE

    def vector_file(self, row: int) -> tuple[Path, int] | None:
        """The vector file and byte offset of `row`, to copy rows file to file (None when not a plain file)."""
        offset = getattr(self.vectors, "offset", None)
        if offset is None or self.vectors.dtype != np.float32 or not self.vectors.flags.c_contiguous:
            return None
        return self.path / VECTORS, int(offset) + row * self.vectors.shape[1] * 4

    def text_vectors(self, dim: int) -> dict[bytes, np.ndarray]:
        """The generation's sentence and heading vectors by text key ({} when it has none or they are damaged)."""
        if textvectors.FILE not in self.manifest.checksums or textvectors.FILE in self.damaged:
            return {}
        return textvectors.load_vectors(self.path / textvectors.FILE, dim)

    def chunks(self, row: int, rows: int) -> list[Chunk]:
        """The passages of `rows` rows from `row` on, from the passage columns (`embed_text` empty)."""
        if self._chunks is None:
            self._chunks = self.passages.chunks()
        return self._chunks[row:row + rows]

    def row_of_key(self, key: bytes) -> int | None:
        """A row whose vector embeds exactly this text, or None."""
        if self._key_rows is None:
            self._key_rows = {}
            for row, k in enumerate(self.keys.tolist()):
                self._key_rows.setdefault(k, row)
        return self._key_rows.get(key)

    def close(self) -> None:
        """Release the memory maps."""
        self.passages.close()


def open_previous(index_dir: Path, model: str, generation: int | None = None) -> Previous:
    """Open a generation (default: the current one) for reuse by a build, verifying every file it lists.

    Damaged files a build makes again anyway (DERIVED) are left unused and named in `damaged`, so the build writes
    a new generation; damage to any other file (vectors, keys, passages, manifest) raises IndexDamaged."""
    manifest = read_manifest(index_dir, generation)
    gen_dir = generation_dir(index_dir, manifest.generation if generation is None else generation)
    check_compatible(manifest, model, index_dir)
    # Every file, not only those copied: a damaged index.faiss left in place would keep the service down while
    # the build reported "unchanged".
    damaged = damaged_files(gen_dir, manifest.checksums)
    essential = [why for name, why in damaged.items() if name not in DERIVED]
    if essential:
        raise IndexDamaged(essential[0])
    try:
        vectors = np.load(gen_dir / VECTORS, mmap_mode="r")
        keys = np.load(gen_dir / KEYS)
        lists = np.load(gen_dir / LISTS) if manifest.ann != "flat" and LISTS not in damaged else None
        passages = PassageFiles.open(gen_dir, len(vectors))
    except Exception as exc:  # noqa: BLE001 - any failure here means a damaged index
        raise IndexDamaged(f"the index in {gen_dir} cannot be read ({exc}); rebuild with `qabot index --full`"
                           ) from exc
    if len(keys) != len(vectors) or any(e.row < 0 for e in manifest.files.values()):
        passages.close()
        raise IndexDamaged(f"the index in {gen_dir} is inconsistent; rebuild with `qabot index --full`")
    return Previous(manifest, gen_dir, vectors, keys, lists, passages, damaged=damaged)
