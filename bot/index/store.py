"""The index on disk: generations of FAISS vectors + chunk metadata + manifest, switched atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import shutil
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import faiss
import numpy as np
import xxhash

from bot.index.ann import ann_nprobe, build_ann
from bot.ingest.chunking import CHUNKER_VERSION, Chunk
from bot.index import generations
from bot.index.generations import (CURRENT, IndexDamaged, IndexNotFound, StoreError, current_generation,
                                   generation_dir)
from bot.index.filecopy import ShortFile, append_range, copy_range
from bot.index.keyword import Tokens
from bot.index.passages import FILES as PASSAGE_FILES
from bot.index.passages import PASSAGES, PassageFiles, PassageFormatError, PassageWriter

logger = logging.getLogger(__name__)

MANIFEST = generations.MANIFEST
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.npy"
FAISS_FILE = "index.faiss"
KEYS = "keys.npy"  # a digest of each row's embed text, so a build can reuse vectors without parsing chunks
LISTS = "lists.npy"  # the IVF list of each row (approximate index only), so a build assigns only new rows
# 3: passages also in columns (bot/index/passages.py); 4: their PDF pages too. Older formats are refused.
FORMAT_VERSION = 4
# Files a build makes again from chunks.jsonl and vectors.npy: damage to them costs no re-embedding.
DERIVED = (FAISS_FILE, LISTS, KEYS, *PASSAGE_FILES)

# Below this many passages search is exact (flat); from it on, an IVF index with 8-bit codes finds candidates
# and they are re-scored exactly against the (memory-mapped) vectors. bench/build_bench.py measures recall.
ANN_THRESHOLD = 20_000
ANN_RERANK = 4  # candidates fetched per wanted result before exact re-scoring
_CHECKSUM = "xxh3_128"


@dataclass
class FileEntry:
    """What the manifest records of one source file (and where its chunks sit in the generation)."""

    sha256: str
    project: str
    adopter: str
    interviewee: str | None
    date: str | None
    title: str
    chunks: int
    row: int = -1  # first row of the file's chunks (they are contiguous)
    offset: int = -1  # byte offset of its first line in chunks.jsonl
    nbytes: int = -1  # bytes of its lines in chunks.jsonl
    size: int = -1  # source file size and mtime when built: an unchanged stat skips re-hashing
    mtime_ns: int = -1


@dataclass
class Manifest:
    """Describes one generation: model, chunker, sources and checksums of its own files."""

    generation: int
    model: str
    dim: int
    chunker_version: str
    built_at: float
    files: dict[str, FileEntry]
    checksums: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    digest: str = ""  # sha256 of the manifest itself (with this field empty), so edits are detected
    ann: str = "flat"  # "flat" or "ivf-sq8"

    def to_json(self) -> str:
        """Serialized manifest."""
        # One line per file entry keeps it readable. One dumps call without `indent` keeps json's fast C encoder
        # (10k files: 30 ms instead of 300 ms for a call per entry); `},"` only occurs between entries, since a
        # quote inside a string is escaped.
        files = json.dumps({k: v.__dict__ for k, v in self.files.items()}, sort_keys=True, separators=(",", ":"))
        head = json.dumps({k: v for k, v in self.__dict__.items() if k != "files"}, sort_keys=True)
        return head[:-1] + ',\n"files":{\n' + files[1:-1].replace('},"', '},\n"') + "\n}}"

    def _plain(self) -> dict[str, Any]:
        return {**self.__dict__, "digest": "", "files": {k: v.__dict__ for k, v in self.files.items()}}

    def compute_digest(self) -> str:
        """The sha256 of this manifest's canonical JSON with `digest` left empty."""
        canonical = json.dumps(self._plain(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def digest_ok(self) -> bool:
        """True when `digest` is empty (older manifests) or matches the content."""
        if not self.digest or self.digest == self.compute_digest():
            return True
        # Manifests written earlier on the day format 2 appeared hashed their indented form.
        legacy = json.dumps(self._plain(), indent=1, sort_keys=True)
        return self.digest == hashlib.sha256(legacy.encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        """Parse a serialized manifest."""
        d = json.loads(text)
        d["files"] = {k: FileEntry(**v) for k, v in d["files"].items()}
        return cls(**d)


@dataclass
class LoadedIndex:
    """A generation in memory: chunks in vector order, their vectors, and a FAISS index over them."""

    manifest: Manifest
    chunks: list[Chunk]
    vectors: np.ndarray
    faiss_index: Any
    path: Path

    @property
    def generation(self) -> int:
        """The generation number."""
        return self.manifest.generation

    def text_tokens(self) -> Tokens | None:
        """Every passage text's term ids as `keyword.tokenize` makes them, read from the generation (None when it
        has none, or they were made by other tokenizer rules)."""
        if PASSAGES not in self.manifest.checksums:
            return None
        try:
            files = PassageFiles.open(self.path, len(self.chunks))
            try:
                return files.text_tokens()
            finally:
                files.close()
        except (OSError, ValueError) as exc:  # checked at load; only a file changed since then gets here
            raise IndexDamaged(f"the passages of {self.path} cannot be read ({exc}); rebuild with "
                               "`qabot index --full`") from exc

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k (row, inner product) pairs for a normalized query vector."""
        if not self.chunks:
            return []
        k = min(k, len(self.chunks))
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if self.manifest.ann == "flat":
            scores, rows = self.faiss_index.search(q, k)
            return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
        _, rows = self.faiss_index.search(q, min(len(self.chunks), max(k * ANN_RERANK, 40)))
        rows = np.unique(rows[0][rows[0] >= 0])
        exact = np.asarray(self.vectors[rows], dtype=np.float32) @ q[0]
        order = np.argsort(-exact, kind="stable")[:k]
        return [(int(rows[i]), float(exact[i])) for i in order]


def embed_key(text: str) -> bytes:
    """The 16-byte digest of an embed text (same text, same vector)."""
    return xxhash.xxh3_128_digest(text.encode("utf-8"))


def checksum_file(path: Path) -> str:
    """A fast content checksum, "xxh3_128:<hex>"."""
    h = xxhash.xxh3_128()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return f"{_CHECKSUM}:{h.hexdigest()}"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _checksum_matches(path: Path, expected: str) -> bool:
    if expected.startswith(f"{_CHECKSUM}:"):
        return checksum_file(path) == expected
    return _sha256_file(path) == expected  # generations written before format 2


def damaged_files(gen_dir: Path, checksums: dict[str, str], names: Sequence[str] | None = None) -> dict[str, str]:
    """The generation's files (all, or the ones named) that are missing or fail their checksums, each with a
    message naming it, in manifest order."""
    out: dict[str, str] = {}
    for name, expected in checksums.items():
        if names is not None and name not in names:
            continue
        path = gen_dir / name
        try:
            if not path.exists():
                out[name] = f"{path} is missing; rebuild with `qabot index --full`"
            elif not _checksum_matches(path, expected):
                out[name] = f"{path} is damaged (checksum mismatch); rebuild with `qabot index --full`"
        except OSError as exc:  # a folder in its place, no permission: as bad as a missing file
            out[name] = f"{path} cannot be read ({exc.strerror or exc}); rebuild with `qabot index --full`"
    return out


def verify_files(gen_dir: Path, checksums: dict[str, str], names: Sequence[str] | None = None) -> None:
    """Check that the generation's files exist and match their checksums (all, or the ones named)."""
    damaged = damaged_files(gen_dir, checksums, names)
    if damaged:
        raise IndexDamaged(next(iter(damaged.values())))


def build_faiss(vectors: np.ndarray) -> Any:
    """An inner-product FAISS index over normalized vectors: exact below ANN_THRESHOLD rows, IVF above."""
    if len(vectors) >= ANN_THRESHOLD:
        return build_ann(vectors)[0]
    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _chunk_line(chunk: Chunk) -> bytes:
    # A passage not from a PDF has no pages: its line is as before.
    d = {name: getattr(chunk, name) for name in chunk.__dataclass_fields__ if name != "pages" or chunk.pages}
    return (json.dumps(d, ensure_ascii=False) + "\n").encode("utf-8")


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
        self._chunks = (self.tmp / CHUNKS).open("wb")
        self.vectors = np.lib.format.open_memmap(self.tmp / VECTORS, mode="w+", dtype=np.float32, shape=(rows, dim))
        self._vector_file = (self.tmp / VECTORS).open("r+b")  # unchanged rows are copied in by the kernel
        self.keys = np.zeros(rows, dtype="S16")
        self.lists = np.full(rows, -1, dtype=np.int64)
        self.passages = PassageWriter(self.tmp, seed=passages)
        self.row = 0
        self.offset = 0

    def add_lines(self, lines: bytes | memoryview, vectors: np.ndarray, keys: np.ndarray,
                  lists: np.ndarray | None = None, passages: tuple[PassageFiles, int] | None = None,
                  vector_file: tuple[Path, int] | None = None, lines_file: tuple[Path, int] | None = None
                  ) -> tuple[int, int, int]:
        """Append already-serialized chunk lines with their vectors; return (row, offset, nbytes).

        `passages`: the same rows of an earlier generation's passage files, from the row given (None: taken from the
        lines); `vector_file` and `lines_file`: the file and byte offset `vectors` and `lines` are stored at, to
        copy them file to file."""
        if passages is not None:
            self.passages.copy(passages[0], passages[1], len(vectors))
        else:  # an earlier generation without passage files: parsed once, here, a slice of lines at a time
            data = bytes(lines).splitlines()
            for start in range(0, len(data), _PARSE_LINES):
                self.passages.add_chunks([Chunk.from_dict(json.loads(line)) for line in data[start:start + _PARSE_LINES]
                                          if line.strip()])
        return self._add(lines, vectors, keys, lists, vector_file, lines_file)

    def _add(self, lines: bytes | memoryview, vectors: np.ndarray, keys: np.ndarray,
             lists: np.ndarray | None = None, vector_file: tuple[Path, int] | None = None,
             lines_file: tuple[Path, int] | None = None) -> tuple[int, int, int]:
        n = len(vectors)
        row, offset = self.row, self.offset
        try:
            if lines_file is not None:
                append_range(lines_file[0], lines_file[1], self._chunks, len(lines))
            else:
                self._chunks.write(lines)
        except ShortFile as exc:
            raise IndexDamaged(f"{exc}; rebuild with `qabot index --full`") from exc
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
        self.offset += len(lines)
        return row, offset, len(lines)

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> tuple[int, int, int]:
        """Append new chunks with their vectors; return (row, offset, nbytes)."""
        lines = b"".join(_chunk_line(c) for c in chunks)
        keys = np.array([embed_key(c.embed_text) for c in chunks], dtype="S16")
        self.passages.add_chunks(chunks)
        return self._add(lines, vectors, keys)

    def finish(self, manifest: Manifest, previous: Path | None = None) -> Path:
        """Write the FAISS index, checksums and manifest; fsync; rename into place; switch CURRENT; prune."""
        if self.row != self.rows:
            raise StoreError(f"internal error: {self.row} rows written, {self.rows} announced")
        self._chunks.close()
        self._vector_file.close()
        self.vectors.flush()
        files = [CHUNKS, VECTORS, KEYS, FAISS_FILE, *self.passages.finish()]
        np.save(self.tmp / KEYS, self.keys)
        if self.rows >= ANN_THRESHOLD:
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
        return self.final


_PARSE_LINES = 8192  # chunk lines of an older generation parsed at a time (bounds the Chunk objects held)


def write_generation(index_dir: Path, chunks: list[Chunk], vectors: np.ndarray, manifest: Manifest) -> Path:
    """Write a new generation folder and switch CURRENT to it atomically; prune old ones."""
    dim = vectors.shape[1] if vectors.ndim == 2 else manifest.dim
    writer = GenerationWriter(index_dir, manifest.generation, len(chunks), dim)
    runs: dict[str, list[tuple[int, int, int]]] = {}
    start = 0
    for i in range(1, len(chunks) + 1):
        if i == len(chunks) or chunks[i].source != chunks[start].source:
            runs.setdefault(chunks[start].source, []).append(writer.add_chunks(chunks[start:i], vectors[start:i]))
            start = i
    for source, entry in manifest.files.items():
        spans = runs.get(source, [])
        # A file's rows are found by position only when they are one contiguous run.
        entry.row, entry.offset, entry.nbytes = spans[0] if len(spans) == 1 else (-1, -1, -1)
    return writer.finish(manifest)


def read_manifest(index_dir: Path, generation: int | None = None) -> Manifest:
    """The manifest of a generation (default: the current one)."""
    pointed = generation is None
    generation = current_generation(index_dir) if generation is None else generation
    if generation is None:
        raise IndexNotFound(f"no index in {index_dir}; build it with `qabot index`")
    folder = generation_dir(index_dir, generation)
    if not folder.is_dir():
        try:
            pointed = pointed or current_generation(index_dir) == generation
        except IndexDamaged:
            pass
        if pointed:
            raise IndexDamaged(f"{index_dir / CURRENT} names {folder.name}, which does not exist; rebuild with "
                               "`qabot index`, which replaces it")
        raise IndexDamaged(f"{folder} does not exist; rebuild with `qabot index`")
    path = folder / MANIFEST
    try:
        manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexDamaged(f"{path} is missing; rebuild with `qabot index --full`") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise IndexDamaged(f"{path} is damaged ({exc}); rebuild with `qabot index --full`") from exc
    except OSError as exc:
        raise IndexDamaged(f"{path} cannot be read ({exc.strerror or exc}); rebuild with `qabot index --full`"
                           ) from exc
    if not manifest.digest_ok():
        raise IndexDamaged(f"{path} is damaged (checksum mismatch); rebuild with `qabot index --full`")
    return manifest


def check_compatible(manifest: Manifest, model: str, where: Path) -> None:
    """Refuse an index built with another model or chunker, or in an older format."""
    if manifest.format_version != FORMAT_VERSION:
        raise StoreError(
            f"the index in {where} has format {manifest.format_version}, this qabot reads format {FORMAT_VERSION}; "
            "rebuild it with `qabot index --full`"
        )
    if manifest.model != model:
        raise StoreError(
            f"the index in {where} was built with model {manifest.model!r} but {model!r} is configured; "
            "rebuild it with `qabot index --full`"
        )
    if manifest.chunker_version != CHUNKER_VERSION:
        raise StoreError(
            f"the index in {where} was built by chunker version {manifest.chunker_version}, this qabot "
            f"uses {CHUNKER_VERSION}; rebuild it with `qabot index --full`"
        )


def _read_chunks(gen_dir: Path, manifest: Manifest, rows: int) -> list[Chunk]:
    """The generation's passages, from its passage columns."""
    files = PassageFiles.open(gen_dir, rows)
    try:
        return files.chunks()
    finally:
        files.close()


def _in_background(fn: Any, *args: Any) -> "Future[Any]":
    """Run `fn(*args)` in a thread of its own; `.result()` waits for it (raising what it raised)."""
    future: Future[Any] = Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the result
            future.set_exception(exc)

    threading.Thread(target=run, name="qabot-verify", daemon=True).start()
    return future


def load(index_dir: Path, model: str, generation: int | None = None, verify: bool = True) -> LoadedIndex:
    """Load a generation (default: current), checking the model and the files' checksums."""
    manifest = read_manifest(index_dir, generation)
    gen_dir = generation_dir(index_dir, manifest.generation)
    check_compatible(manifest, model, index_dir)
    checking = None
    if verify:
        # The FAISS file is checked before faiss parses it; the rest (read by numpy and bot.index.passages, which
        # fail cleanly on damage) while the passages are made: hashing runs without the GIL, on another core.
        verify_files(gen_dir, manifest.checksums, names=[FAISS_FILE])
        rest = [name for name in manifest.checksums if name != FAISS_FILE]
        checking = _in_background(verify_files, gen_dir, manifest.checksums, rest)
    try:
        index = faiss.read_index(str(gen_dir / FAISS_FILE))
        if manifest.ann != "flat":
            ivf = faiss.extract_index_ivf(index)
            ivf.nprobe = ann_nprobe(ivf.nlist)
        vectors = np.load(gen_dir / VECTORS, mmap_mode="r")
        chunks = _read_chunks(gen_dir, manifest, len(vectors))
    except Exception as exc:  # noqa: BLE001 - any failure here means a damaged index
        if checking is not None:
            checking.result()  # a damaged file explains the failure: it is named
        raise IndexDamaged(f"the index in {gen_dir} cannot be read ({exc}); rebuild with `qabot index --full`"
                           ) from exc
    if checking is not None:
        checking.result()
    if len(chunks) != len(vectors) or index.ntotal != len(chunks):
        raise IndexDamaged(f"the index in {gen_dir} is inconsistent; rebuild with `qabot index --full`")
    return LoadedIndex(manifest, chunks, vectors, index, gen_dir)


@dataclass
class Previous:
    """The current generation opened for an incremental build: rows and lines are copied, not parsed."""

    manifest: Manifest
    path: Path
    vectors: np.ndarray
    lines: memoryview  # chunks.jsonl
    keys: np.ndarray
    lists: np.ndarray | None
    spans_known: bool  # False for generations written before format 2 (rows located by parsing)
    _mmap: Any = None
    passages: PassageFiles | None = None  # None for generations written before format 3
    _key_rows: dict[bytes, int] | None = None
    damaged: dict[str, str] = field(default_factory=dict)  # derived files found damaged (not used), with why

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

    def row_of_key(self, key: bytes) -> int | None:
        """A row whose vector embeds exactly this text, or None."""
        if self._key_rows is None:
            self._key_rows = {}
            for row, k in enumerate(self.keys.tolist()):
                self._key_rows.setdefault(k, row)
        return self._key_rows.get(key)

    def close(self) -> None:
        """Release the memory maps."""
        try:
            self.lines.release()
            if self._mmap is not None:
                self._mmap.close()
        except BufferError:  # a slice is still referenced somewhere; the map is freed with it
            pass
        if self.passages is not None:
            self.passages.close()


def open_previous(index_dir: Path, model: str, generation: int | None = None) -> Previous:
    """Open a generation (default: the current one) for reuse by a build, verifying every file it lists.

    Damaged files a build makes again anyway (DERIVED) are left unused and named in `damaged`, so the build writes
    a new generation; a damaged chunks.jsonl, vectors.npy or manifest raises IndexDamaged."""
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
        with (gen_dir / CHUNKS).open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        lines = memoryview(mm) if mm is not None else memoryview(b"")
    except Exception as exc:  # noqa: BLE001 - any failure here means a damaged index
        raise IndexDamaged(f"the index in {gen_dir} cannot be read ({exc}); rebuild with `qabot index --full`"
                           ) from exc
    spans_known = all(e.row >= 0 for e in manifest.files.values())
    lists = None
    if manifest.ann != "flat" and (gen_dir / LISTS).exists() and LISTS not in damaged:
        lists = np.load(gen_dir / LISTS)
    if spans_known and (gen_dir / KEYS).exists() and KEYS not in damaged:
        keys = np.load(gen_dir / KEYS)
    else:  # the keys are digests of the chunks' embed texts: made again from chunks.jsonl
        keys, spans_known = _locate_rows(manifest, lines)
    if len(keys) != len(vectors):
        raise IndexDamaged(f"the index in {gen_dir} is inconsistent; rebuild with `qabot index --full`")
    passages = None
    # Damaged passage columns are not copied: the new generation's are made from the chunk lines instead.
    if PASSAGES in manifest.checksums and spans_known and not any(name in damaged for name in PASSAGE_FILES):
        try:
            passages = PassageFiles.open(gen_dir, len(vectors))
        except (OSError, ValueError, PassageFormatError) as exc:
            raise IndexDamaged(f"the passages of {gen_dir} cannot be read ({exc}); rebuild with "
                               "`qabot index --full`") from exc
    return Previous(manifest, gen_dir, vectors, lines, keys, lists, spans_known, mm, passages=passages,
                    damaged=damaged)


def _locate_rows(manifest: Manifest, lines: memoryview) -> tuple[np.ndarray, bool]:
    """For an older generation: parse chunks.jsonl once to find each file's rows, lines and embed keys."""
    keys, offset, row = [], 0, 0
    spans: dict[str, list[int]] = {}
    last, contiguous = None, True
    for raw in bytes(lines).splitlines(keepends=True):
        if raw.strip():
            d = json.loads(raw)
            keys.append(embed_key(d["embed_text"]))
            if d["source"] != last and d["source"] in spans:
                contiguous = False
            last = d["source"]
            span = spans.setdefault(d["source"], [row, 0, offset, 0])
            span[1] += 1
            span[3] = offset + len(raw) - span[2]
            row += 1
        offset += len(raw)
    for source, entry in manifest.files.items():
        span = spans.get(source)
        if span is None or span[1] != entry.chunks:
            contiguous = False
        else:
            entry.row, _, entry.offset, entry.nbytes = span
    return np.array(keys, dtype="S16"), contiguous



