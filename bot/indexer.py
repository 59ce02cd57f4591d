"""Incremental build: embed only new or changed files, drop deleted ones, write a new generation."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from bot import store
from bot.chunking import CHUNKER_VERSION, Chunk, chunk_interview
from bot.corpus import CorpusError, file_sha256, iter_files, parse_file, relative_source
from bot.embedding import Embedder

logger = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What a build did."""

    generation: int | None = None
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source -> reason
    chunks_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    wrote: bool = False

    def summary(self) -> str:
        """One line for humans."""
        return (
            f"files: {len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped; chunks: {self.chunks_embedded} "
            f"embedded, {self.chunks_total} total; generation {self.generation}; {self.seconds:.1f}s"
        )

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dict(self.__dict__)


def _embed_key(chunk: Chunk) -> str:
    return hashlib.sha1(chunk.embed_text.encode("utf-8")).hexdigest()


def _previous(index_dir: Path, model: str, full: bool) -> store.LoadedIndex | None:
    """The current generation if it can be reused for an incremental build."""
    if full:
        return None
    try:
        return store.load(index_dir, model)
    except store.IndexNotFound:
        return None
    except store.StoreError as exc:
        logger.warning("previous index not reusable, building from scratch: %s", exc)
        return None


def build(corpus_dir: Path, index_dir: Path, embedder: Embedder, full: bool = False,
          progress: bool = False, on_skip: Callable[[str, str], None] | None = None) -> BuildReport:
    """Build or update the index in `index_dir` from the interviews in `corpus_dir`."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist")
    started = time.perf_counter()
    report = BuildReport()
    with store.build_lock(index_dir):
        prev = _previous(index_dir, embedder.name, full)
        prev_files = prev.manifest.files if prev else {}
        prev_by_source: dict[str, list[int]] = {}
        prev_by_key: dict[str, int] = {}
        if prev:
            for row, chunk in enumerate(prev.chunks):
                prev_by_source.setdefault(chunk.source, []).append(row)
                prev_by_key.setdefault(_embed_key(chunk), row)

        files: dict[str, store.FileEntry] = {}
        chunks: list[Chunk] = []
        rows: list[int | None] = []  # row in prev.vectors to reuse, or None to embed
        for path in iter_files(corpus_dir):
            source = relative_source(path, corpus_dir)
            try:
                sha = file_sha256(path)
            except OSError as exc:
                _skip(report, source, f"cannot read ({exc.strerror or exc})", on_skip)
                continue
            old = prev_files.get(source)
            if old is not None and old.sha256 == sha and source in prev_by_source:
                report.unchanged.append(source)
                files[source] = old
                for row in prev_by_source[source]:
                    chunks.append(prev.chunks[row])
                    rows.append(row)
                continue
            try:
                interview = parse_file(path, corpus_dir)
            except CorpusError as exc:
                _skip(report, source, str(exc).split(": ", 1)[-1], on_skip)
                continue
            (report.changed if old is not None else report.added).append(source)
            new_chunks = chunk_interview(interview)
            files[source] = store.FileEntry(sha, interview.project, interview.adopter, interview.interviewee,
                                            interview.date, interview.title, len(new_chunks))
            for chunk in new_chunks:
                chunks.append(chunk)
                rows.append(prev_by_key.get(_embed_key(chunk)))
        report.removed = sorted(set(prev_files) - set(files) - set(report.skipped))
        # A skipped file that was indexed before drops out too: report it as removed as well.
        report.removed += sorted(s for s in report.skipped if s in prev_files)

        todo = [i for i, r in enumerate(rows) if r is None]
        dim = embedder.dim
        new_vectors = embedder.embed_documents([chunks[i].embed_text for i in todo], progress=progress)
        if len(todo):
            dim = new_vectors.shape[1]
        elif prev is not None:
            dim = prev.vectors.shape[1]
        vectors = np.zeros((len(chunks), dim), dtype=np.float32)
        for i, r in enumerate(rows):
            if r is not None:
                vectors[i] = prev.vectors[r]
        for j, i in enumerate(todo):
            vectors[i] = new_vectors[j]
        report.chunks_embedded = len(todo)
        report.chunks_total = len(chunks)

        nothing_changed = (prev is not None and not report.added and not report.changed
                           and not report.removed and prev.manifest.skipped == report.skipped)
        if nothing_changed:
            report.generation = prev.generation
        else:
            generation = max(store.current_generation(index_dir) or 0, _max_generation(index_dir)) + 1
            manifest = store.Manifest(generation=generation, model=embedder.name, dim=dim,
                                      chunker_version=CHUNKER_VERSION, built_at=store.now(),
                                      files=files, skipped=dict(report.skipped))
            store.write_generation(index_dir, chunks, vectors, manifest)
            report.generation = generation
            report.wrote = True
    report.seconds = time.perf_counter() - started
    logger.info("index build: %s", report.summary())
    return report


def _max_generation(index_dir: Path) -> int:
    gens = [int(p.name.removeprefix("gen-")) for p in index_dir.glob("gen-*") if p.name[4:].isdigit()]
    return max(gens, default=0)


def _skip(report: BuildReport, source: str, reason: str, on_skip: Callable[[str, str], None] | None) -> None:
    report.skipped[source] = reason
    logger.warning("skipped %s: %s", source, reason)
    if on_skip:
        on_skip(source, reason)


def is_stale(corpus_dir: Path, index_dir: Path, model: str) -> bool:
    """True when the index is missing, incompatible, or its files differ from the corpus."""
    try:
        manifest = store.read_manifest(index_dir)
        store.check_compatible(manifest, model, index_dir)
    except store.StoreError:
        return True
    seen = {}
    for path in iter_files(corpus_dir):
        try:
            seen[relative_source(path, corpus_dir)] = file_sha256(path)
        except OSError:
            continue
    indexed = {s: e.sha256 for s, e in manifest.files.items()}
    skipped = set(manifest.skipped)
    return {s: h for s, h in seen.items() if s not in skipped} != indexed or not skipped <= set(seen)
