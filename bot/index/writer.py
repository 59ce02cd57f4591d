"""Writing a generation: rows streamed into a temp folder, checksummed, fsynced, renamed, CURRENT switched."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np

from bot.index import bm25, generations, keyword, store, textvectors
from bot.index.ann import build_ann
from bot.index.filecopy import ShortFile, copy_range
from bot.index.generations import CURRENT, IndexDamaged, StoreError, generation_dir
from bot.index.passages import PassageFiles, PassageWriter
from bot.index.store import (FAISS_FILE, FORMAT_VERSION, KEYS, LISTS, MANIFEST, VECTORS, Manifest, build_faiss,
                             checksum_file, embed_key)
from bot.ingest.chunking import Chunk

logger = logging.getLogger(__name__)


class GenerationWriter:
    """Streams a new generation into a temp folder, in row order, then switches CURRENT to it."""

    def __init__(self, index_dir: Path, generation: int, rows: int, dim: int,
                 passages: PassageFiles | None = None) -> None:
        """`passages`: the previous generation's passage files, which rows will be copied from."""
        index_dir.mkdir(parents=True, exist_ok=True)
        self.index_dir = index_dir
        self.generation = generation
        self.final = generation_dir(index_dir, generation)
        self.tmp = index_dir / f".tmp-{self.final.name}-{os.getpid()}"
        try:
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            self.tmp.mkdir()
        except PermissionError as exc:  # a read-only index folder: one line naming it, not a traceback
            raise StoreError(f"cannot write the new generation in {index_dir} ({exc.strerror}); make the folder "
                             "writable by this user, or set QABOT_INDEX_DIR to a writable folder") from exc
        self.rows, self.dim = rows, dim
        self.vectors = np.lib.format.open_memmap(self.tmp / VECTORS, mode="w+", dtype=np.float32, shape=(rows, dim))
        self._vector_file = (self.tmp / VECTORS).open("r+b")  # unchanged rows are copied in by the kernel
        self.keys = np.zeros(rows, dtype="S16")
        self.lists = np.full(rows, -1, dtype=np.int64)
        self.passages = PassageWriter(self.tmp, seed=passages)
        self.row = 0
        self._text_vectors = False

    def copy_rows(self, passages: PassageFiles, row: int, vectors: np.ndarray, keys: np.ndarray,
                  lists: np.ndarray | None = None, vector_file: tuple[Path, int] | None = None) -> int:
        """Append rows of the previous generation from `row` on (its passages, vectors, keys and IVF lists);
        return the first new row. `vector_file`: the file and byte offset `vectors` are stored at, to copy them
        file to file."""
        self.passages.copy(passages, row, len(vectors))
        return self._add(vectors, keys, lists, vector_file)

    def _add(self, vectors: np.ndarray, keys: np.ndarray, lists: np.ndarray | None = None,
             vector_file: tuple[Path, int] | None = None) -> int:
        n = len(vectors)
        row = self.row
        if n:
            row_bytes = self.dim * 4
            if vector_file is None or vectors.dtype != np.float32 or vectors.shape[1:] != (self.dim,):
                self.vectors[row:row + n] = vectors
            else:  # 4x faster than through both memory maps at 10,000 interviews (no page faults)
                try:
                    copy_range(vector_file[0], vector_file[1], self._vector_file, self.vectors.offset + row * row_bytes,
                               n * row_bytes)
                except ShortFile as exc:
                    raise IndexDamaged(f"{exc}; rebuild with `qabot index --full`") from exc
            self.keys[row:row + n] = keys
            if lists is not None:
                self.lists[row:row + n] = lists
        self.row += n
        return row

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Append new chunks with their vectors; return their first row."""
        keys = np.array([embed_key(c.embed_text) for c in chunks], dtype="S16")
        self.passages.add_chunks(chunks)
        return self._add(vectors, keys)

    def add_text_vectors(self, vectors: dict[bytes, np.ndarray]) -> None:
        """Store the generation's sentence and heading vectors (by text key) inside it."""
        textvectors.save_vectors(self.tmp / textvectors.FILE, vectors, self.dim)
        self._text_vectors = True

    def _keyword_matrices(self) -> list[str]:
        """Build the generation's keyword indexes (bot/index/bm25.py) from its passage files; their files."""
        passages = PassageFiles.open(self.tmp, self.rows)
        try:
            chunks = passages.chunks()
            tokens = passages.text_tokens()
        finally:
            passages.close()
        text_terms = None
        if tokens is not None:
            names = keyword._names
            ids = tokens.ids.tolist()
            ptr = tokens.ptr.tolist()
            text_terms = [[names[g] for g in ids[a:b]] for a, b in zip(ptr, ptr[1:])]
        return bm25.write(self.tmp, chunks, text_terms)

    def finish(self, manifest: Manifest, previous: Path | None = None) -> Path:
        """Write the FAISS index, checksums and manifest; fsync; rename into place; switch CURRENT; prune."""
        if self.row != self.rows:
            raise StoreError(f"internal error: {self.row} rows written, {self.rows} announced")
        self._vector_file.close()
        self.vectors.flush()
        files = [VECTORS, KEYS, FAISS_FILE, *self.passages.finish()]
        files += self._keyword_matrices()
        if self._text_vectors:
            files.append(textvectors.FILE)
        np.save(self.tmp / KEYS, self.keys)
        if self.rows >= store.ANN_THRESHOLD:  # read at call time (tests lower it)
            index, lists = build_ann(self.vectors, self.lists, previous)
            np.save(self.tmp / LISTS, lists)
            files.append(LISTS)
            manifest.ann = "ivf-sq8"
        else:
            index = build_faiss(np.asarray(self.vectors))
            manifest.ann = "flat"
        faiss.write_index(index, str(self.tmp / FAISS_FILE))
        del self.vectors
        manifest.checksums = {name: checksum_file(self.tmp / name) for name in files}
        manifest.format_version = FORMAT_VERSION
        manifest.digest = manifest.compute_digest()
        (self.tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        for name in [*files, MANIFEST]:
            generations.fsync(self.tmp / name)
        generations.fsync_dir(self.tmp)
        if self.final.exists():
            shutil.rmtree(self.final)
        os.replace(self.tmp, self.final)
        pointer = self.index_dir / f".{CURRENT}.{os.getpid()}"
        pointer.write_text(self.final.name + "\n")
        generations.fsync(pointer)
        current = self.index_dir / CURRENT
        if current.is_dir() and not current.is_symlink():
            # Never one of ours, and os.replace cannot put a file over a folder: the pointer would never switch.
            logger.warning("%s is a folder, not the pointer file; replacing it", current)
            shutil.rmtree(current)
        os.replace(pointer, current)
        generations.fsync_dir(self.index_dir)
        generations.prune(self.index_dir)
        textvectors.remove_legacy(self.index_dir)
        return self.final
