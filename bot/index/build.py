"""Incremental build: embed only new or changed files, drop deleted ones, write a new generation."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from bot.index import store

from bot.config import Settings
from bot.index import generations
from bot.ingest.chunking import CHUNKER_VERSION, Chunk, ChunkBudgetExceeded, chunk_interview
from bot.ingest.files import CorpusError, discover, file_sha256, relative_source
from bot.ingest.parse import index_warnings, parse_file
from bot.embed.embedders import Embedder

logger = logging.getLogger(__name__)

EMBED_SLICE = 32  # texts per embedding call: how often a build can stop when cancelled, and counts progress
PROGRESS_EVERY_S = 5.0  # a long build logs where it is at most this often


@dataclass(frozen=True)
class Limits:
    """How much one file may cost a build: bytes read (checked from `stat` first) and passages made."""

    max_file_bytes: int | None = None
    max_passages_per_file: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "Limits":
        """QABOT_MAX_FILE_BYTES and QABOT_MAX_PASSAGES_PER_FILE of `settings` (default: read from the environment
        now; not `get_settings()`, whose cache a library call must not fill before the caller's settings are set)."""
        settings = settings or Settings.from_env()
        return cls(settings.max_file_bytes, settings.max_passages_per_file)


class BuildCancelled(Exception):
    """The build stopped before writing anything; the previous generation is still current."""


class CancelToken:
    """Asks a running build to stop at its next check: between files and between embedding batches."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        """Ask the build to stop (the first reason given is kept)."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise BuildCancelled if cancel() was called."""
        if self._event.is_set():
            raise BuildCancelled(self.reason or "cancelled")


class BuildMemo:
    """What a build leaves for the next one in the same process.

    Vectors it embedded, so a build cancelled (or deferred) halfway does not lose its work, and files it found
    unusable by content, so an unchanged oversized interview is not parsed again by every rebuild."""

    def __init__(self, max_vectors: int = 50_000) -> None:
        self.max_vectors = max_vectors  # 50,000 x 384 floats: 77 MB at most
        self._vectors: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._skips: dict[str, tuple[str, str]] = {}  # source -> (content key, why it was skipped)
        self._lock = threading.Lock()

    def vector(self, key: bytes) -> np.ndarray | None:
        """The vector of an embed key, if a build made it."""
        with self._lock:
            return self._vectors.get(key)

    def keep(self, key: bytes, vector: np.ndarray) -> None:
        """Remember a vector (the oldest ones are dropped beyond `max_vectors`)."""
        with self._lock:
            self._vectors[key] = vector
            while len(self._vectors) > self.max_vectors:
                self._vectors.popitem(last=False)

    def forget_vectors(self) -> None:
        """Drop the vectors (a completed build has them on disk now)."""
        with self._lock:
            self._vectors.clear()

    def skipped(self, source: str, key: str) -> str | None:
        """Why `source` was skipped before with this content key (its sha256 and the limit), or None."""
        hit = self._skips.get(source)
        return hit[1] if hit is not None and hit[0] == key else None

    def skip(self, source: str, key: str, why: str) -> None:
        """Remember that `source` with this content key cannot be indexed."""
        self._skips[source] = (key, why)

    def __len__(self) -> int:
        return len(self._vectors)


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
    deferred: list[str] = field(default_factory=list)  # new or changed files left for a follow-up build
    cancelled: str | None = None  # why the build stopped before writing anything
    # Progress, updated while the build runs (read by /admin/status from another thread).
    phase: str = "starting"
    started_at: float | None = None
    files_total: int = 0
    files_done: int = 0
    passages_to_embed: int = 0
    passages_embedded: int = 0
    sentences_to_embed: int = 0
    sentences_embedded: int = 0

    def summary(self) -> str:
        """One line for humans."""
        line = (
            f"files: {len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped; chunks: {self.chunks_embedded} "
            f"embedded, {self.chunks_total} total; generation {self.generation}; {self.seconds:.1f}s"
        )
        if self.deferred:
            line += f"; deferred to a follow-up build: {', '.join(self.deferred)}"
        if self.cancelled:
            line += f"; cancelled: {self.cancelled}"
        return f"{line}; repaired: {self.repaired}" if self.repaired else line

    def progress(self) -> dict[str, Any]:
        """Where a running build is: its phase, files read, passages and sentences embedded."""
        running = self.phase not in ("done", "cancelled")
        elapsed = time.time() - self.started_at if running and self.started_at is not None else self.seconds
        return {"phase": self.phase, "seconds": round(elapsed, 1),
                "files_done": self.files_done, "files_total": self.files_total,
                "passages_embedded": self.passages_embedded, "passages_to_embed": self.passages_to_embed,
                "sentences_embedded": self.sentences_embedded, "sentences_to_embed": self.sentences_to_embed}

    def progress_line(self) -> str:
        """The progress as one log line."""
        line = f"{self.phase}; files {self.files_done:,}/{self.files_total:,}"
        if self.passages_to_embed:
            line += f"; passages embedded {self.passages_embedded:,}/{self.passages_to_embed:,}"
        if self.sentences_to_embed:
            line += f"; sentences embedded {self.sentences_embedded:,}/{self.sentences_to_embed:,}"
        return line

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dict(self.__dict__)


class _Ticker:
    """Logs a build's progress every PROGRESS_EVERY_S seconds, not per file (and to a terminal when asked)."""

    def __init__(self, report: BuildReport, echo: bool) -> None:
        self.report = report
        self.echo = echo and sys.stderr.isatty()
        self._next = time.monotonic() + PROGRESS_EVERY_S
        self._printed = False

    def tick(self) -> None:
        """Log the progress if the last line is old enough."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + PROGRESS_EVERY_S
        line = self.report.progress_line()
        logger.info("index build: %s (%.0f s)", line, time.time() - (self.report.started_at or time.time()))
        if self.echo:
            print(f"\rindexing: {line}", end="", file=sys.stderr, flush=True)
            self._printed = True

    def done(self) -> None:
        """End the terminal line, if one was written."""
        if self._printed:
            print(file=sys.stderr, flush=True)
            self._printed = False


class _Embedding:
    """The build's embedder: embeds in slices of EMBED_SLICE, stops between them when cancelled, counts progress,
    and takes vectors a previous (cancelled) build made from the memo instead of embedding them again."""

    def __init__(self, embedder: Embedder, report: BuildReport, memo: BuildMemo, cancel: CancelToken | None,
                 ticker: _Ticker, keep_passages: bool) -> None:
        self.embedder = embedder
        self.name = embedder.name
        self.report = report
        self.memo = memo
        self.cancel = cancel
        self.ticker = ticker
        self.keep_passages = keep_passages  # a one-off build (`qabot index`) has no later build to keep them for
        self.counting = True  # off once the generation is written: `warm` only collects what was counted

    @property
    def dim(self) -> int:
        """The embedder's dimension (known once its model is loaded)."""
        return int(self.embedder.dim)

    def embed(self, texts: Sequence[str], what: str) -> np.ndarray:
        """Vectors of `texts`; `what` ("passages" or "sentences") names the progress counter."""
        vectors: list[np.ndarray | None] = [None] * len(texts)
        keys = [store.embed_key(t) for t in texts]
        todo = []
        for i, key in enumerate(keys):
            vectors[i] = self.memo.vector(key)
            if vectors[i] is None:
                todo.append(i)
        self._count(what, len(texts) - len(todo))
        keep = what != "passages" or self.keep_passages
        for start in range(0, len(todo), EMBED_SLICE):
            if self.cancel is not None:
                self.cancel.check()
            part = todo[start:start + EMBED_SLICE]
            out = self.embedder.embed_documents([texts[i] for i in part])
            for i, vector in zip(part, out):
                vectors[i] = vector
                if keep:
                    self.memo.keep(keys[i], vector)
            self._count(what, len(part))
        if not vectors:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(vectors).astype(np.float32, copy=False)

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """The Embedder protocol, for the sentence vectors `textvectors.warm` asks for after the build."""
        return self.embed(list(texts), "sentences")

    def embed_query(self, text: str) -> np.ndarray:
        """The Embedder protocol (not used by builds)."""
        return self.embedder.embed_query(text)

    def _count(self, what: str, n: int) -> None:
        if not self.counting:
            return
        if what == "passages":
            self.report.passages_embedded += n
        else:
            self.report.sentences_embedded += n
        self.ticker.tick()


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
            embedding.cancel, embedding.counting = None, False  # the generation is live: what follows completes it
            from bot.index.textvectors import MAX_CHUNKS, warm  # sentence vectors for quotes and ranking (issue 3)

            if report.chunks_total <= MAX_CHUNKS:  # checked here: warm() would read the manifest to find out
                report.phase = "sentence vectors"
                # Made before the generation was written (`_embed_sentences`): this only stores them.
                warm(index_dir, embedding, progress)
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


def _build_locked(corpus_dir: Path, index_dir: Path, embedding: _Embedding, prev: store.Previous | None,
                  report: BuildReport, ticker: _Ticker, on_skip: Callable[[str, str], None] | None,
                  limits: Limits, defer_over: int | None,
                  on_warning: Callable[[str, str], None] | None = None) -> None:
    prev_files = prev.manifest.files if prev else {}
    reusable = prev is not None and prev.spans_known
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
            if old is not None and reusable and _same_stat(old, st, prev.manifest.built_at):
                sha = old.sha256
            else:
                sha = file_sha256(path, limits.max_file_bytes)
        except CorpusError as exc:  # grew past the size limit after discover() looked
            _skip(report, source, str(exc).split(": ", 1)[-1], on_skip)
            continue
        except OSError as exc:
            _skip(report, source, f"cannot read ({exc.strerror or exc})", on_skip)
            continue
        if old is not None and old.sha256 == sha and reusable:
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
        if defer_over is not None and (old is None or reusable):
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
        if old is not None and old.sha256 == sha:
            report.unchanged.append(source)  # an older index format: re-chunked, vectors reused by text
        else:
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
    _embed_sentences(index_dir, embedding, fresh, report)
    if cancel is not None:
        cancel.check()  # the last moment: from here on the new generation is written and switched to
    report.phase = "writing"

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
    manifest = store.Manifest(generation=generation, model=embedding.name, dim=dim,
                              chunker_version=CHUNKER_VERSION, built_at=generations.now(),
                              files=files, skipped=dict(report.skipped))
    writer.finish(manifest, previous=prev.faiss_file if prev is not None else None)
    report.generation = generation
    report.wrote = True


def _embed_sentences(index_dir: Path, embedding: _Embedding, fresh: list[Chunk], report: BuildReport) -> None:
    """Embed the new chunks' sentences and headings before the generation is written (into the memo, from where
    `warm` stores them): after the switch, a server would embed them itself while loading, where nothing can
    cancel the work."""
    from bot.index import textvectors

    if not fresh or report.chunks_total > textvectors.MAX_CHUNKS:
        return
    sentences, _, headings = textvectors.aux_texts(fresh)
    texts = list(dict.fromkeys([*sentences, *headings]))
    # The cache's own reader and key (textvectors has no public "which are missing"): only new texts are embedded.
    cached = textvectors._load(textvectors.cache_path(index_dir, embedding.name), embedding.dim)
    missing = [t for t in texts if textvectors._key(t) not in cached]
    del cached
    report.phase = "embedding sentences"
    report.sentences_to_embed = len(missing)
    embedding.embed(missing, "sentences")


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
