"""The index on disk: generations of FAISS vectors + chunk metadata + manifest, switched atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import faiss
import numpy as np
import xxhash

from bot.checksums import file_xxh3

from bot.index.ann import ann_nprobe, build_ann
from bot.ingest.chunking import CHUNKER_VERSION, Chunk
from bot.index import generations
from bot.index.generations import (CURRENT, IndexDamaged, IndexNotFound, StoreError, current_generation,
                                   generation_dir)
from bot.index.keyword import Tokens
from bot.index.passages import PASSAGES, PassageFiles

logger = logging.getLogger(__name__)

MANIFEST = generations.MANIFEST
VECTORS = "vectors.npy"
FAISS_FILE = "index.faiss"
KEYS = "keys.npy"  # a digest of each row's embed text, so a build reuses vectors by text
LISTS = "lists.npy"  # the IVF list of each row (approximate index only), so a build assigns only new rows
# 5: one passage record (the columns of bot/index/passages.py; no chunks.jsonl), sentence and heading vectors
# inside the generation (bot/index/textvectors.py). 6: the keyword indexes' bm25s matrices inside the generation
# (bot/index/bm25.py). Older formats are refused: rebuild with `qabot index --full`.
FORMAT_VERSION = 6
TEXT_VECTORS = "text-vectors.npz"  # bot.index.textvectors.FILE
# Files a build makes again from the passages and vectors (damaged text vectors cost embedding the sentences
# again); damage to any other file makes the build reuse an older intact generation, or embed everything.
DERIVED = (FAISS_FILE, LISTS, TEXT_VECTORS)

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
        """True when `digest` matches the content."""
        return self.digest == self.compute_digest()

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        """Parse a serialized manifest."""
        d = json.loads(text)
        known = FileEntry.__dataclass_fields__  # an older format's extra fields are dropped (it is refused anyway)
        d["files"] = {k: FileEntry(**{f: x for f, x in v.items() if f in known}) for k, v in d["files"].items()}
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
    return f"{_CHECKSUM}:{file_xxh3(path)}"


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
            elif checksum_file(path) != expected:
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
    if manifest.format_version == FORMAT_VERSION and not manifest.digest_ok():  # older: refused by its format
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
