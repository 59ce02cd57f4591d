"""Incremental build: embed only new or changed files, drop deleted ones, write a new generation."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from bot.index import store

from bot.index import generations
from bot.ingest.chunking import CHUNKER_VERSION, Chunk, chunk_interview
from bot.ingest.files import CorpusError, discover, file_sha256, relative_source
from bot.ingest.parse import parse_file
from bot.embed.embedders import Embedder

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
    embed_seconds: float = 0.0
    wrote: bool = False
    repaired: str | None = None  # why the current generation (or CURRENT) was bad and had to be replaced

    def summary(self) -> str:
        """One line for humans."""
        line = (
            f"files: {len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped; chunks: {self.chunks_embedded} "
            f"embedded, {self.chunks_total} total; generation {self.generation}; {self.seconds:.1f}s"
        )
        return f"{line}; repaired: {self.repaired}" if self.repaired else line

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dict(self.__dict__)


def _previous(index_dir: Path, model: str, full: bool, report: BuildReport) -> store.Previous | None:
    """The current generation opened for reuse by an incremental build, if it can be reused.

    When it (or CURRENT) is damaged, `report.repaired` says why, so a new generation is written even if no file
    changed, and the newest intact older generation is reused instead, when there is one."""
    try:
        current = generations.current_generation(index_dir)
    except generations.IndexDamaged as exc:
        current = None
        _damaged(report, str(exc))
    if full:
        if current is not None:
            try:  # only the pointer and the manifest: a full build reads nothing else of the generation
                store.read_manifest(index_dir)
            except generations.IndexDamaged as exc:
                _damaged(report, str(exc))
        return None
    if current is not None:
        try:
            prev = store.open_previous(index_dir, model)
        except store.IndexNotFound:
            return None
        except generations.IndexDamaged as exc:
            _damaged(report, str(exc))
        except store.StoreError as exc:  # another model or chunker: nothing in it can be reused
            logger.warning("previous index not reusable, building from scratch: %s", exc)
            return None
        else:
            for why in prev.damaged.values():  # remade from the generation's intact chunks and vectors
                _damaged(report, why)
            return prev
    if report.repaired is None:
        return None
    # Vectors of an older intact generation still save re-embedding the files it shares with the corpus.
    for number in reversed(generations.generation_numbers(index_dir)):
        if number == current:
            continue
        try:
            prev = store.open_previous(index_dir, model, number)
        except store.StoreError as exc:
            logger.debug("generation %d not reusable either: %s", number, exc)
            continue
        logger.warning("reusing the vectors of generation %d, the newest intact one", number)
        return prev
    logger.warning("no intact generation to reuse: building from scratch")
    return None


def _damaged(report: BuildReport, why: str) -> None:
    why = why.split("; rebuild with ", 1)[0]  # the advice is what this build is doing
    logger.warning("the index is damaged, building a new generation: %s", why)
    report.repaired = why if report.repaired is None else f"{report.repaired}; {why}"


# A file whose size and mtime are unchanged is not re-hashed, unless it was modified so close to the
# previous build that a later edit could share its timestamp (the "racy" case git also guards against).
_RACY_NS = 2_000_000_000


def _same_stat(entry: store.FileEntry, st: os.stat_result, built_at: float) -> bool:
    return (entry.size == st.st_size and entry.mtime_ns == st.st_mtime_ns
            and st.st_mtime_ns < int(built_at * 1e9) - _RACY_NS)


@dataclass
class _Planned:
    """One corpus file in the new generation: reused rows of the previous one, or fresh chunks."""

    source: str
    entry: store.FileEntry
    chunks: list[Chunk] | None = None  # None: copy the previous generation's rows


def build(corpus_dir: Path, index_dir: Path, embedder: Embedder, full: bool = False,
          progress: bool = False, on_skip: Callable[[str, str], None] | None = None) -> BuildReport:
    """Build or update the index in `index_dir` from the interviews in `corpus_dir`."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist")
    started = time.perf_counter()
    report = BuildReport()
    with generations.build_lock(index_dir):
        prev = _previous(index_dir, embedder.name, full, report)
        try:
            _build_locked(corpus_dir, index_dir, embedder, prev, report, progress, on_skip)
        finally:
            if prev is not None:
                prev.close()
        from bot.index.textvectors import MAX_CHUNKS, warm  # sentence vectors for quotes and ranking (issue 3)

        if report.chunks_total <= MAX_CHUNKS:  # checked here: warm() would read the manifest to find out
            warm(index_dir, embedder, progress)
        prepare_query_encoder(embedder)
    report.seconds = time.perf_counter() - started
    logger.info("index build: %s", report.summary())
    return report


def prepare_query_encoder(embedder: Embedder) -> None:
    """Export the ONNX query encoder beside the index when the embedder uses one; a failure only warns."""
    prepare = getattr(embedder, "prepare", None)
    if prepare is None:
        return
    from bot.embed.onnx import EncoderError

    try:
        prepare()
    except EncoderError as exc:
        logger.warning("%s; questions will be encoded with the torch model", exc)


def _build_locked(corpus_dir: Path, index_dir: Path, embedder: Embedder, prev: store.Previous | None,
                  report: BuildReport, progress: bool, on_skip: Callable[[str, str], None] | None) -> None:
    prev_files = prev.manifest.files if prev else {}
    reusable = prev is not None and prev.spans_known
    planned: list[_Planned] = []
    found = discover(corpus_dir)
    for source, reason in found.skipped.items():
        _skip(report, source, reason, on_skip)
    for path in found.files:
        source = relative_source(path, corpus_dir)
        old = prev_files.get(source)
        try:
            st = path.stat()
            if old is not None and reusable and _same_stat(old, st, prev.manifest.built_at):
                sha = old.sha256
            else:
                sha = file_sha256(path)
        except OSError as exc:
            _skip(report, source, f"cannot read ({exc.strerror or exc})", on_skip)
            continue
        if old is not None and old.sha256 == sha and reusable:
            report.unchanged.append(source)
            old.size, old.mtime_ns = st.st_size, st.st_mtime_ns  # the previous manifest is this build's to change
            planned.append(_Planned(source, old))
            continue
        try:
            interview = parse_file(path, corpus_dir)
        except CorpusError as exc:
            _skip(report, source, str(exc).split(": ", 1)[-1], on_skip)
            continue
        if old is not None and old.sha256 == sha:
            report.unchanged.append(source)  # an older index format: re-chunked, vectors reused by text
        else:
            (report.changed if old is not None else report.added).append(source)
        new_chunks = chunk_interview(interview)
        planned.append(_Planned(source, store.FileEntry(sha, interview.project, interview.adopter,
                                                        interview.interviewee, interview.date, interview.title,
                                                        len(new_chunks), size=st.st_size, mtime_ns=st.st_mtime_ns),
                                new_chunks))
    seen = {p.source for p in planned}
    report.removed = sorted(set(prev_files) - seen - set(report.skipped))
    # A skipped file that was indexed before drops out too: report it as removed as well.
    report.removed += sorted(s for s in report.skipped if s in prev_files)

    # Embed only chunks whose exact embed text has no vector in the previous generation.
    fresh = [c for p in planned if p.chunks is not None for c in p.chunks]
    reuse_rows = [prev.row_of_key(store.embed_key(c.embed_text)) if prev is not None else None for c in fresh]
    todo = [i for i, r in enumerate(reuse_rows) if r is None]
    embed_started = time.perf_counter()
    embedded = embedder.embed_documents([fresh[i].embed_text for i in todo], progress=progress)
    report.embed_seconds = round(time.perf_counter() - embed_started, 3)
    dim = embedded.shape[1] if len(todo) else (prev.vectors.shape[1] if prev is not None else embedder.dim)
    fresh_vectors = np.zeros((len(fresh), dim), dtype=np.float32)
    for i, r in enumerate(reuse_rows):
        if r is not None:
            fresh_vectors[i] = prev.vectors[r]
    for j, i in enumerate(todo):
        fresh_vectors[i] = embedded[j]
    report.chunks_embedded = len(todo)
    report.chunks_total = sum(p.entry.chunks for p in planned)

    nothing_changed = (prev is not None and report.repaired is None and not report.added and not report.changed
                       and not report.removed and prev.manifest.skipped == report.skipped
                       and all(p.chunks is None for p in planned))
    if nothing_changed:
        report.generation = prev.manifest.generation
        return
    generation = generations.next_generation(index_dir)
    writer = store.GenerationWriter(index_dir, generation, report.chunks_total, dim,
                                    passages=prev.passages if prev is not None else None)
    files: dict[str, store.FileEntry] = {}
    run: list[store.FileEntry] = []  # reused files whose previous rows and lines follow each other

    def copy_run() -> None:
        """Copy a run of unchanged files' lines and vectors from the previous generation in one go."""
        if not run:
            return
        row0, off0 = run[0].row, run[0].offset
        rows, nbytes = run[-1].row + run[-1].chunks - row0, run[-1].offset + run[-1].nbytes - off0
        lists = prev.lists[row0:row0 + rows] if prev.lists is not None else None
        passages = (prev.passages, row0) if prev.passages is not None else None
        new_row, new_off, _ = writer.add_lines(prev.lines[off0:off0 + nbytes], prev.vectors[row0:row0 + rows],
                                               prev.keys[row0:row0 + rows], lists, passages, prev.vector_file(row0),
                                               (prev.path / store.CHUNKS, off0))
        for e in run:
            e.row, e.offset = new_row + (e.row - row0), new_off + (e.offset - off0)
        run.clear()

    cursor = 0
    for p in planned:
        entry = p.entry
        if p.chunks is None:
            if run and (entry.row != run[-1].row + run[-1].chunks or entry.offset != run[-1].offset + run[-1].nbytes):
                copy_run()
            run.append(entry)
        else:
            copy_run()
            n = len(p.chunks)
            entry.row, entry.offset, entry.nbytes = writer.add_chunks(p.chunks, fresh_vectors[cursor:cursor + n])
            cursor += n
        files[p.source] = entry
    copy_run()
    manifest = store.Manifest(generation=generation, model=embedder.name, dim=dim,
                              chunker_version=CHUNKER_VERSION, built_at=generations.now(),
                              files=files, skipped=dict(report.skipped))
    writer.finish(manifest, previous=prev.faiss_file if prev is not None else None)
    report.generation = generation
    report.wrote = True


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
    found = discover(corpus_dir)
    seen = dict.fromkeys(found.skipped, "")
    for path in found.files:
        try:
            seen[relative_source(path, corpus_dir)] = file_sha256(path)
        except OSError:
            continue
    indexed = {s: e.sha256 for s, e in manifest.files.items()}
    skipped = set(manifest.skipped)
    return {s: h for s, h in seen.items() if s not in skipped} != indexed or not skipped <= set(seen)
