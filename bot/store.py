"""The index on disk: generations of FAISS vectors + chunk metadata + manifest, switched atomically."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import faiss
import numpy as np

from bot.chunking import CHUNKER_VERSION, Chunk

logger = logging.getLogger(__name__)

CURRENT = "CURRENT"
LOCK = ".lock"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.npy"
FAISS_FILE = "index.faiss"
KEEP_GENERATIONS = 2
FORMAT_VERSION = 1


class StoreError(RuntimeError):
    """The index is missing, incompatible or damaged; the message says what to do."""


class IndexNotFound(StoreError):
    """No index has been built yet."""


@dataclass
class FileEntry:
    """What the manifest records of one source file."""

    sha256: str
    project: str
    adopter: str
    interviewee: str | None
    date: str | None
    title: str
    chunks: int


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

    def to_json(self) -> str:
        """Serialized manifest."""
        d = {**self.__dict__, "files": {k: v.__dict__ for k, v in self.files.items()}}
        return json.dumps(d, indent=1, sort_keys=True)

    def compute_digest(self) -> str:
        """The sha256 of this manifest with `digest` left empty."""
        saved, self.digest = self.digest, ""
        try:
            return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()
        finally:
            self.digest = saved

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

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k (row, inner product) pairs for a normalized query vector."""
        if not self.chunks:
            return []
        k = min(k, len(self.chunks))
        scores, rows = self.faiss_index.search(query.reshape(1, -1).astype(np.float32), k)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _gen_dir(index_dir: Path, generation: int) -> Path:
    return index_dir / f"gen-{generation:06d}"


def current_generation(index_dir: Path) -> int | None:
    """The generation CURRENT points at, or None when there is no index."""
    try:
        name = (index_dir / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return int(name.removeprefix("gen-"))
    except ValueError as exc:
        raise StoreError(f"{index_dir / CURRENT} is damaged ({name!r}); rebuild with `qabot index --full`") from exc


def build_faiss(vectors: np.ndarray) -> Any:
    """An exact inner-product FAISS index over normalized vectors."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def write_generation(index_dir: Path, chunks: list[Chunk], vectors: np.ndarray, manifest: Manifest) -> Path:
    """Write a new generation folder and switch CURRENT to it atomically; prune old ones."""
    index_dir.mkdir(parents=True, exist_ok=True)
    final = _gen_dir(index_dir, manifest.generation)
    tmp = index_dir / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    with (tmp / CHUNKS).open("w", encoding="utf-8") as f:
        for chunk in chunks:
            f.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
    np.save(tmp / VECTORS, np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(build_faiss(vectors), str(tmp / FAISS_FILE))
    manifest.checksums = {name: _sha256_file(tmp / name) for name in (CHUNKS, VECTORS, FAISS_FILE)}
    manifest.digest = manifest.compute_digest()
    (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    for name in (CHUNKS, VECTORS, FAISS_FILE, MANIFEST):
        _fsync(tmp / name)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = index_dir / f".{CURRENT}.{os.getpid()}"
    pointer.write_text(final.name + "\n")
    _fsync(pointer)
    os.replace(pointer, index_dir / CURRENT)
    _fsync_dir(index_dir)
    prune(index_dir)
    return final


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(index_dir: Path, keep: int = KEEP_GENERATIONS) -> None:
    """Remove all but the newest `keep` generations (never the current one) and stale temp folders."""
    current = current_generation(index_dir)
    gens = sorted(p for p in index_dir.glob("gen-*") if p.is_dir())
    for old in gens[:-keep] if keep else gens:
        if current is not None and old.name == _gen_dir(index_dir, current).name:
            continue
        shutil.rmtree(old, ignore_errors=True)
    for tmp in index_dir.glob(".tmp-gen-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_manifest(index_dir: Path, generation: int | None = None) -> Manifest:
    """The manifest of a generation (default: the current one)."""
    generation = current_generation(index_dir) if generation is None else generation
    if generation is None:
        raise IndexNotFound(f"no index in {index_dir}; build it with `qabot index`")
    path = _gen_dir(index_dir, generation) / MANIFEST
    try:
        manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StoreError(f"{path} is missing; rebuild with `qabot index --full`") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StoreError(f"{path} is damaged ({exc}); rebuild with `qabot index --full`") from exc
    if manifest.digest and manifest.digest != manifest.compute_digest():
        raise StoreError(f"{path} is damaged (checksum mismatch); rebuild with `qabot index --full`")
    return manifest


def check_compatible(manifest: Manifest, model: str, where: Path) -> None:
    """Refuse an index built with another model or chunker."""
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


def load(index_dir: Path, model: str, generation: int | None = None, verify: bool = True) -> LoadedIndex:
    """Load a generation (default: current), checking the model and the files' checksums."""
    manifest = read_manifest(index_dir, generation)
    gen_dir = _gen_dir(index_dir, manifest.generation)
    check_compatible(manifest, model, index_dir)
    if verify:
        for name, expected in manifest.checksums.items():
            path = gen_dir / name
            if not path.exists():
                raise StoreError(f"{path} is missing; rebuild with `qabot index --full`")
            if _sha256_file(path) != expected:
                raise StoreError(f"{path} is damaged (checksum mismatch); rebuild with `qabot index --full`")
    try:
        with (gen_dir / CHUNKS).open(encoding="utf-8") as f:
            chunks = [Chunk.from_dict(json.loads(line)) for line in f if line.strip()]
        vectors = np.load(gen_dir / VECTORS, mmap_mode="r")
        index = faiss.read_index(str(gen_dir / FAISS_FILE))
    except Exception as exc:  # noqa: BLE001 - any failure here means a damaged index
        raise StoreError(f"the index in {gen_dir} cannot be read ({exc}); rebuild with `qabot index --full`") from exc
    if len(chunks) != len(vectors) or index.ntotal != len(chunks):
        raise StoreError(f"the index in {gen_dir} is inconsistent; rebuild with `qabot index --full`")
    return LoadedIndex(manifest, chunks, vectors, index, gen_dir)


@contextlib.contextmanager
def build_lock(index_dir: Path, wait: bool = True) -> Iterator[None]:
    """Hold the index folder's build lock so two builds never write at once."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / LOCK).open("a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            if not wait:
                raise StoreError(f"another build is running on {index_dir}; try again when it ends") from exc
            logger.warning("another build is running on %s; waiting for it to finish", index_dir)
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def now() -> float:
    """Wall-clock time for manifests."""
    return time.time()
