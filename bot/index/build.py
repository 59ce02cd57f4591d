"""Incremental build: embed only new or changed files, drop deleted ones, write a new generation."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bot.embed.embedders import Embedder
from bot.index import generations, store, textvectors
from bot.index.previous import Previous, open_previous
from bot.index.progress import (BuildCancelled, BuildMemo, BuildReport, CancelToken, Limits, _Embedding,
                                _Ticker)
from bot.index.writer import GenerationWriter
from bot.ingest.chunking import CHUNKER_VERSION, Chunk, ChunkBudgetExceeded, chunk_interview
from bot.ingest.files import CorpusError, discover, file_sha256, relative_source
from bot.ingest.parse import index_warnings, parse_file

logger = logging.getLogger(__name__)

__all__ = ["BuildCancelled", "BuildMemo", "BuildReport", "CancelToken", "Limits", "build", "is_stale",
           "prepare_query_encoder"]


def _previous(index_dir: Path, model: str, full: bool, report: BuildReport) -> Previous | None:
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
            prev = open_previous(index_dir, model)
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
            prev = open_previous(index_dir, model, number)
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
    reuse_rows: list[int | None] | None = None  # per chunk: the previous generation's row with its vector


def build(corpus_dir: Path, index_dir: Path, embedder: Embedder, full: bool = False,
          progress: bool = False, on_skip: Callable[[str, str], None] | None = None, *,
          limits: Limits | None = None, cancel: CancelToken | None = None, report: BuildReport | None = None,
          memo: BuildMemo | None = None, defer_over: int | None = None,
          on_warning: Callable[[str, str], None] | None = None) -> BuildReport:
    """Build or update the index in `index_dir` from the interviews in `corpus_dir`.

    `limits` (default: the settings) skip files that are too big or make too many passages. `cancel` stops the
    build between files and embedding batches (BuildCancelled; nothing is written). `report` is filled in as the
    build goes, for progress. `memo` carries vectors and skips from build to build. `defer_over`: a new or
    changed file that needs more than this many passages embedded is left as it was (listed in `deferred`), so
    the other changes go live first; a follow-up build without it does the file. `on_warning(source, warnings)`
    hears of a file parsed into one section or without questions (instead of the log, when given)."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist")
    started = time.perf_counter()
    report = report if report is not None else BuildReport()
    report.started_at = time.time()
    limits = limits if limits is not None else Limits.from_settings()
    ticker = _Ticker(report, progress)
    embedding = _Embedding(embedder, report, memo if memo is not None else BuildMemo(), cancel, ticker,
                           keep_passages=memo is not None)
    embedding.prepare = lambda: prepare_query_encoder(embedder)
    try:
        with generations.build_lock(index_dir):
            if cancel is not None:
                cancel.check()  # cancelled while waiting for another build to finish
            prev = _previous(index_dir, embedder.name, full, report)
            try:
                _build_locked(corpus_dir, index_dir, embedding, prev, report, ticker, on_skip, limits, defer_over,
                              on_warning)
            finally:
                if prev is not None:
                    prev.close()
            if embedding.prepare is not None:  # nothing was embedded: the export is still checked (or made)
                embedding.prepare = None
                prepare_query_encoder(embedder)
    except BuildCancelled as exc:
        report.cancelled = str(exc)
        report.phase = "cancelled"
        report.seconds = time.perf_counter() - started
        logger.info("index build cancelled after %.1fs (%s); the previous generation is still served; %s",
                    report.seconds, exc, report.progress_line())
        raise
    finally:
        ticker.done()
    report.phase = "done"
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


def _build_locked(corpus_dir: Path, index_dir: Path, embedding: _Embedding, prev: Previous | None,
                  report: BuildReport, ticker: _Ticker, on_skip: Callable[[str, str], None] | None,
                  limits: Limits, defer_over: int | None,
                  on_warning: Callable[[str, str], None] | None = None) -> None:
    prev_files = prev.manifest.files if prev else {}
    memo, cancel = embedding.memo, embedding.cancel
    planned: list[_Planned] = []
    report.phase = "reading files"
    found = discover(corpus_dir, limits.max_file_bytes)
    report.files_total = len(found.files)
    for source, reason in found.skipped.items():
        _skip(report, source, reason, on_skip)
    for path in found.files:
        if cancel is not None:
            cancel.check()
        ticker.tick()
        report.files_done += 1
        source = relative_source(path, corpus_dir)
        old = prev_files.get(source)
        try:
            st = path.stat()
            if old is not None and _same_stat(old, st, prev.manifest.built_at):
                sha = old.sha256
            else:
                sha = file_sha256(path, limits.max_file_bytes)
        except CorpusError as exc:  # grew past the size limit after discover() looked
            _skip(report, source, str(exc).split(": ", 1)[-1], on_skip)
            continue
        except OSError as exc:
            _skip(report, source, f"cannot read ({exc.strerror or exc})", on_skip)
            continue
        if old is not None and old.sha256 == sha:
            report.unchanged.append(source)
            old.size, old.mtime_ns = st.st_size, st.st_mtime_ns  # the previous manifest is this build's to change
            planned.append(_Planned(source, old))
            continue
        budget_key = f"{sha}/{limits.max_passages_per_file}"  # the same content under the same budget
        why = memo.skipped(source, budget_key)
        if why is not None:  # this very content was refused before: don't parse it again
            _skip(report, source, why, on_skip)
            continue
        try:
            interview = parse_file(path, corpus_dir, limits.max_file_bytes, warn=on_warning is None)
        except CorpusError as exc:
            _skip(report, source, str(exc).split(": ", 1)[-1], on_skip)
            continue
        warnings = index_warnings(interview) if on_warning is not None else []
        if warnings and on_warning is not None:  # one line per file
            on_warning(source, "; ".join(warnings))
        try:
            new_chunks = chunk_interview(interview, limits.max_passages_per_file)
        except ChunkBudgetExceeded as exc:
            # Only this refusal is remembered: it depends on the content alone and is the costly one to reach.
            memo.skip(source, budget_key, str(exc))
            _skip(report, source, str(exc), on_skip)
            continue
        rows = [prev.row_of_key(store.embed_key(c.embed_text)) if prev is not None else None for c in new_chunks]
        if defer_over is not None:
            needed = sum(1 for c, r in zip(new_chunks, rows)
                         if r is None and memo.vector(store.embed_key(c.embed_text)) is None)
            if needed > defer_over:
                # Keep serving what was there (the previous version, or nothing): the old entry keeps its old
                # stat, so the follow-up build sees the file as changed.
                report.deferred.append(source)
                if old is not None:
                    planned.append(_Planned(source, old))
                logger.info("%s needs %d passages embedded: indexed by a follow-up build", source, needed)
                continue
        (report.changed if old is not None else report.added).append(source)
        planned.append(_Planned(source, store.FileEntry(sha, interview.project, interview.adopter,
                                                        interview.interviewee, interview.date, interview.title,
                                                        len(new_chunks), size=st.st_size, mtime_ns=st.st_mtime_ns),
                                new_chunks, rows))
    seen = {p.source for p in planned}
    report.removed = sorted(set(prev_files) - seen - set(report.skipped))
    # A skipped file that was indexed before drops out too: report it as removed as well.
    report.removed += sorted(s for s in report.skipped if s in prev_files)

    # Embed only chunks whose exact embed text has no vector in the previous generation.
    fresh = [c for p in planned if p.chunks is not None for c in p.chunks]
    reuse_rows = [r for p in planned if p.chunks is not None for r in p.reuse_rows]
    todo = [i for i, r in enumerate(reuse_rows) if r is None]
    report.phase = "embedding passages"
    report.passages_to_embed = len(todo)
    embed_started = time.perf_counter()
    embedded = embedding.embed([fresh[i].embed_text for i in todo], "passages")
    report.embed_seconds = round(time.perf_counter() - embed_started, 3)
    dim = embedded.shape[1] if len(todo) else (prev.vectors.shape[1] if prev is not None else embedding.dim)
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
        if cancel is not None:
            cancel.check()
        report.generation = prev.manifest.generation
        return
    sentence_vectors = _sentence_vectors(embedding, prev, planned, dim, report)
    if cancel is not None:
        cancel.check()  # the last moment: from here on the new generation is written and switched to
    report.phase = "writing"
    generation = generations.next_generation(index_dir)
    writer = GenerationWriter(index_dir, generation, report.chunks_total, dim,
                              passages=prev.passages if prev is not None else None)
    if sentence_vectors is not None:
        writer.add_text_vectors(sentence_vectors)
    files: dict[str, store.FileEntry] = {}
    run: list[store.FileEntry] = []  # reused files whose previous rows follow each other

    def copy_run() -> None:
        """Copy a run of unchanged files' passages and vectors from the previous generation in one go."""
        if not run:
            return
        row0 = run[0].row
        rows = run[-1].row + run[-1].chunks - row0
        lists = prev.lists[row0:row0 + rows] if prev.lists is not None else None
        new_row = writer.copy_rows(prev.passages, row0, prev.vectors[row0:row0 + rows], prev.keys[row0:row0 + rows],
                                   lists, prev.vector_file(row0))
        for e in run:
            e.row = new_row + (e.row - row0)
        run.clear()

    cursor = 0
    for p in planned:
        entry = p.entry
        if p.chunks is None:
            if run and entry.row != run[-1].row + run[-1].chunks:
                copy_run()
            run.append(entry)
        else:
            copy_run()
            n = len(p.chunks)
            entry.row = writer.add_chunks(p.chunks, fresh_vectors[cursor:cursor + n])
            cursor += n
        files[p.source] = entry
    copy_run()
    manifest = store.Manifest(generation=generation, model=embedding.name, dim=dim,
                              chunker_version=CHUNKER_VERSION, built_at=generations.now(),
                              files=files, skipped=dict(report.skipped))
    writer.finish(manifest, previous=prev.faiss_file if prev is not None else None)
    report.generation = generation
    report.wrote = True


def _sentence_vectors(embedding: _Embedding, prev: Previous | None, planned: list[_Planned], dim: int,
                      report: BuildReport) -> dict[bytes, np.ndarray] | None:
    """The new generation's sentence and heading vectors by text key: the previous generation's for the texts it
    has, the rest embedded now, before the switch (a server loading the generation never embeds them, where nothing
    could cancel the work). None above textvectors.MAX_CHUNKS passages."""
    if report.chunks_total > textvectors.MAX_CHUNKS:
        return None
    chunks: list[Chunk] = []
    for p in planned:  # a reused file's entry still holds its row in the previous generation
        chunks.extend(p.chunks if p.chunks is not None else prev.chunks(p.entry.row, p.entry.chunks))
    texts = textvectors.needed_texts(chunks)
    keys = [textvectors.text_key(t) for t in texts]
    known = prev.text_vectors(dim) if prev is not None else {}
    missing = [t for t, k in zip(texts, keys) if k not in known]
    report.phase = "embedding sentences"
    report.sentences_to_embed = len(missing)
    if missing:
        known.update(zip((textvectors.text_key(t) for t in missing), embedding.embed(missing, "sentences")))
    return {k: known[k] for k in keys}


def _skip(report: BuildReport, source: str, reason: str, on_skip: Callable[[str, str], None] | None) -> None:
    report.skipped[source] = reason
    logger.warning("skipped %s: %s", source, reason)
    if on_skip:
        on_skip(source, reason)


def is_stale(corpus_dir: Path, index_dir: Path, model: str, max_file_bytes: int | None = None) -> bool:
    """True when the index is missing, incompatible, or its files differ from the corpus (files over
    `max_file_bytes`, default QABOT_MAX_FILE_BYTES, count as skipped and are not read)."""
    try:
        manifest = store.read_manifest(index_dir)
        store.check_compatible(manifest, model, index_dir)
    except store.StoreError:
        return True
    limit = max_file_bytes if max_file_bytes is not None else Limits.from_settings().max_file_bytes
    found = discover(corpus_dir, limit)
    seen = dict.fromkeys(found.skipped, "")
    for path in found.files:
        try:
            seen[relative_source(path, corpus_dir)] = file_sha256(path, limit)
        except (OSError, CorpusError):
            continue
    indexed = {s: e.sha256 for s, e in manifest.files.items()}
    skipped = set(manifest.skipped)
    return {s: h for s, h in seen.items() if s not in skipped} != indexed or not skipped <= set(seen)
