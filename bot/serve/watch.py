"""Watch the corpus folder and keep the served index in step: debounce bursts, rebuild, swap in."""

from __future__ import annotations

import contextlib
import logging
import stat
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from watchfiles import Change, DefaultFilter, watch

from bot.config import Settings
from bot.ingest.files import SUFFIXES
from bot.index.build import CancelToken, is_stale
from bot.serve.maintainer import IndexMaintainer

logger = logging.getLogger(__name__)

_CHANGE_NAMES = {Change.added: "added", Change.modified: "modified", Change.deleted: "deleted"}
_MISSING = "the corpus folder is missing"
_TICK_MS = 500  # how often the watch loop wakes up with no events (to notice stop and to start up)
# A file that needs more passages embedded than this goes live in a follow-up build, after the other changes: a
# big interview must not hold back a small one saved meanwhile. The largest shared interview has 22 passages.
DEFER_PASSAGES = 100


class InterviewFilter(DefaultFilter):
    """Pass changes to interview files (and to folders, which may hold them); ignore editor droppings."""

    def __call__(self, change: Change, path: str) -> bool:
        """True when this change can affect the index."""
        if not super().__call__(change, path):
            return False
        name = Path(path).name
        if name.startswith(".") or name.lower() == "readme.md":
            return False
        suffix = Path(path).suffix.lower()
        # A path with no suffix may be a folder being added, renamed or deleted with interviews inside.
        return suffix in SUFFIXES or suffix == ""


class CorpusWatcher:
    """A background thread that turns bursts of corpus changes into one incremental rebuild and swap."""

    def __init__(self, settings: Settings, maintainer: IndexMaintainer, quiet_ms: int | None = None,
                 max_wait_ms: int | None = None, polling: bool | None = None,
                 defer_passages: int = DEFER_PASSAGES) -> None:
        self.settings = settings
        self.maintainer = maintainer
        self.corpus_dir = Path(settings.corpus_dir)
        self.quiet_ms = settings.watch_quiet_ms if quiet_ms is None else quiet_ms
        self.max_wait_ms = settings.watch_max_wait_ms if max_wait_ms is None else max_wait_ms
        self.polling = settings.watch_polling if polling is None else polling
        self.defer_passages = defer_passages
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._wake = threading.Event()
        self._queue_lock = threading.Lock()
        self._queued: list[dict[str, str]] = []
        self._thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self.batches = 0
        self.rebuilds = 0
        self.last_event_at: float | None = None
        self.last_changes: list[dict[str, str]] = []
        self.last_live_at: float | None = None
        self.last_rebuild_seconds: float | None = None
        self.pending = False
        self.error: str | None = None
        self.cancelled = 0  # rebuilds stopped because the corpus changed again (or the watcher stopped)
        self.deferred: list[str] = []  # big files the follow-up build is indexing
        self._follow_up = False  # a build deferred files: build again, without deferring
        self._tokens: set[CancelToken] = set()  # the running builds', cancelled by the next change
        self._carried: list[dict[str, str]] = []  # changes of a cancelled rebuild, shown with the one that lands

    def start(self) -> "CorpusWatcher":
        """Start watching in a daemon thread (returns self).

        A corpus folder that is not there yet (a volume mounted after the service starts) is waited for: status
        and the log say it is missing, and watching starts, with a catch-up build, once it appears."""
        if not self.corpus_dir.is_dir():
            logger.warning("the corpus folder %s does not exist yet; watching will start when it appears",
                           self.corpus_dir)
        if self._thread is None:
            # Two threads: one takes file events as they come (and hides deleted files at once), the other
            # rebuilds, so events that arrive during a rebuild are coalesced into the next one.
            self._worker = threading.Thread(target=self._work, name="qabot-watch-rebuild", daemon=True)
            self._thread = threading.Thread(target=self._run, name="qabot-watch", daemon=True)
            self._worker.start()
            self._thread.start()
            threading.Thread(target=self._warm_up, name="qabot-watch-warm-up", daemon=True).start()
        return self

    def _warm_up(self) -> None:
        """Load the passage model in the background, so the first file saved is answerable as fast as the rest
        (questions use the ONNX encoder; only rebuilds need torch, ~5 s to load)."""
        warm = getattr(self.maintainer.answerer.embedder, "warm_up_documents", None)
        if warm is None:
            return
        try:
            warm()
        except Exception as exc:  # noqa: BLE001 - the first rebuild will load it (and report a failure) itself
            logger.warning("could not load the embedding model ahead of the first rebuild: %s", exc)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Block until the file watcher is active and the start-up catch-up build is done."""
        return self._ready.wait(timeout)

    def stop(self) -> None:
        """Stop watching and wait for the thread (a running rebuild is cancelled)."""
        self._stop.set()
        self._wake.set()
        self._cancel_running("the watcher is stopping")
        for thread in (self._thread, self._worker):
            if thread is not None:
                thread.join(timeout=30)
        self._thread = self._worker = None

    def _run(self) -> None:
        logger.info("watching %s for interview changes (quiet %d ms, max wait %d ms, polling %s)",
                    self.corpus_dir, self.quiet_ms, self.max_wait_ms, self.polling)
        try:
            # Deploy tools and `git clone` replace the corpus folder whole; the OS watch of the old folder then
            # goes quiet or ends. So each pass watches one incarnation of the folder, and the loop waits for
            # the folder to be back, catches up with it and watches again.
            while not self._stop.is_set():
                identity = self._wait_for_folder()
                if identity is None:
                    break
                self._watch_once(identity)
        except Exception as exc:  # noqa: BLE001 - the service keeps serving without watch
            self.error = f"watching stopped: {exc}"
            logger.exception("watching %s stopped; the index will no longer follow the corpus", self.corpus_dir)
        finally:
            self._ready.set()

    def _folder_identity(self) -> tuple[int, int] | None:
        """(device, inode) of the corpus folder, or None while it is missing."""
        try:
            st = self.corpus_dir.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None

    def _wait_for_folder(self) -> tuple[int, int] | None:
        """Block until the corpus folder exists (None when stopped first); say so while it is missing."""
        while not self._stop.is_set():
            identity = self._folder_identity()
            if identity is not None:
                if self.error is not None and self.error.startswith(_MISSING):
                    logger.info("the corpus folder %s is back; catching up", self.corpus_dir)
                    self.error = None
                    self._ready.clear()
                return identity
            if self.error is None or not self.error.startswith(_MISSING):
                self.error = f"{_MISSING}: {self.corpus_dir} (waiting for it to come back)"
                logger.error("%s", self.error)
                self._ready.set()  # nothing to catch up with meanwhile: a start waiting on us goes on serving
            self._stop.wait(_TICK_MS / 1000)
        return None

    def _watch_once(self, identity: tuple[int, int]) -> None:
        """Watch the folder until stopped or until it is deleted or replaced by another folder."""
        for changes in watch(self.corpus_dir, watch_filter=InterviewFilter(), debounce=self.max_wait_ms,
                             step=self.quiet_ms, stop_event=self._stop, rust_timeout=_TICK_MS,
                             yield_on_timeout=True, force_polling=self.polling or None,
                             poll_delay_ms=max(50, self.quiet_ms), raise_interrupt=False):
            if not self._ready.is_set():
                # The OS watcher is live now, so nothing saved from here on can be missed:
                # catch up with whatever changed while the service was down (or the folder was away).
                self._catch_up()
                self._ready.set()
            if changes:
                self._on_changes(changes)
            if self._folder_identity() != identity:
                logger.warning("the corpus folder %s was deleted or replaced; watching it anew", self.corpus_dir)
                return

    def _catch_up(self) -> None:
        try:
            stale = is_stale(self.corpus_dir, Path(self.settings.index_dir), self.maintainer.answerer.embedder.name,
                             self.settings.max_file_bytes)
        except Exception:  # noqa: BLE001 - be safe: rebuild, the build reports its own errors
            stale = True
        if stale:
            logger.info("the index does not match %s; rebuilding before watching", self.corpus_dir)
            with self._running() as token:
                self._rebuild([], token)
        self._unhide_dropped()

    def _on_changes(self, changes: set[tuple[Change, str]]) -> None:
        self.batches += 1
        self.last_event_at = time.time()
        listed = []
        for change, path in sorted(changes, key=lambda c: c[1]):
            try:
                rel = Path(path).relative_to(self.corpus_dir.resolve()).as_posix()
            except ValueError:
                try:
                    rel = Path(path).relative_to(self.corpus_dir).as_posix()
                except ValueError:
                    rel = path
            listed.append({"change": _CHANGE_NAMES.get(change, str(change)), "path": rel})
        logger.info("corpus changed: %d file event(s): %s", len(listed),
                    ", ".join(f"{c['change']} {c['path']}" for c in listed[:20]))
        self._hide_deleted(listed)
        with self._queue_lock:
            self._queued.extend(listed)
            self.pending = True
        # The running build reads a corpus that is no longer there: stop it (it writes nothing, its vectors are
        # kept) and build the new state, so a small change waits for the debounce and its own cost only.
        shown = ", ".join(f"{c['change']} {c['path']}" for c in listed[:5]) + (" …" if len(listed) > 5 else "")
        self._cancel_running(f"the corpus changed: {shown}")
        self._wake.set()

    def _cancel_running(self, reason: str) -> None:
        with self._queue_lock:
            tokens = list(self._tokens)
        for token in tokens:
            token.cancel(reason)

    @contextlib.contextmanager
    def _running(self) -> Iterator[CancelToken]:
        """A cancel token for one build, cancelled by changes seen while the build runs."""
        token = CancelToken()
        with self._queue_lock:
            self._tokens.add(token)
        try:
            yield token
        finally:
            with self._queue_lock:
                self._tokens.discard(token)

    def _work(self) -> None:
        while not self._stop.is_set():
            if not self._wake.wait(0.5):
                continue
            self._wake.clear()
            token = CancelToken()
            with self._queue_lock:
                # Taken together: any change queued after this is sure to cancel the build that starts now.
                listed, self._queued = self._queued, []
                follow_up, self._follow_up = self._follow_up and not listed, False
                self._tokens.add(token)
            try:
                if self._stop.is_set():
                    break
                self._rebuild(listed, token, follow_up)
                self._unhide_dropped()
            except Exception:  # noqa: BLE001 - keep watching; the next change retries
                logger.exception("rebuild after corpus change failed")
            finally:
                with self._queue_lock:
                    self._tokens.discard(token)

    def _hide_deleted(self, listed: list[dict[str, str]]) -> None:
        """Stop citing deleted files at once; the rebuild that drops them follows."""
        answerer = self.maintainer.answerer
        with self._queue_lock:
            hidden = set(getattr(answerer, "hidden_sources", frozenset()))
            indexed = set(answerer.index.manifest.files) if answerer.ready else set()
            for c in listed:
                path = c["path"]
                if c["change"] == "deleted":
                    hidden.add(path)
                    hidden.update(s for s in indexed if s.startswith(path.rstrip("/") + "/"))  # a deleted folder
                else:
                    hidden.discard(path)
            answerer.hidden_sources = frozenset(s for s in hidden if not (self.corpus_dir / s).exists())

    def _unhide_dropped(self) -> None:
        """Keep hiding only files still in the served generation and still gone from disk."""
        answerer = self.maintainer.answerer
        with self._queue_lock:
            hidden = getattr(answerer, "hidden_sources", frozenset())
            if hidden and answerer.ready:
                indexed = answerer.index.manifest.files
                answerer.hidden_sources = frozenset(s for s in hidden
                                                    if s in indexed and not (self.corpus_dir / s).exists())

    def _rebuild(self, listed: list[dict[str, str]], token: CancelToken | None = None, follow_up: bool = False) -> None:
        """One build of the corpus as it is now; files with much to embed are deferred unless `follow_up`."""
        self.pending = True
        changes = self._carried + listed
        if not follow_up:
            self.last_changes = changes
        started = time.perf_counter()
        try:
            with self.maintainer.build_options(cancel=token, defer_over=None if follow_up else self.defer_passages):
                report = self.maintainer.rebuild_now()
        finally:
            with self._queue_lock:
                self.pending = bool(self._queued) or self._follow_up
        if report is None:
            self.rebuilds += 1
            logger.error("rebuild after corpus change failed, still serving the previous index: %s",
                         self.maintainer.last_error)
            return
        if report.cancelled:
            self.cancelled += 1
            self._carried = changes[-100:]  # what the build that lands will have taken in
            return
        self._carried = []
        self.rebuilds += 1
        self.last_rebuild_seconds = round(time.perf_counter() - started, 3)
        self.last_live_at = time.time()
        for source, why in sorted(report.skipped.items()):
            logger.warning("interview not indexed: %s: %s", source, why)
        self.deferred = list(report.deferred)
        if report.deferred:
            logger.info("indexing %d big interview(s) in a follow-up build (the other changes are live): %s",
                        len(report.deferred), ", ".join(report.deferred))
            with self._queue_lock:
                self._follow_up = self.pending = True
            self._wake.set()

    def status(self) -> dict[str, Any]:
        """What the watcher saw last and when the result went live."""
        alive = self._thread is not None and self._thread.is_alive()
        error = self.error
        if self._thread is not None and not alive and not self._stop.is_set() and error is None:
            error = "the watcher thread is not running; the index no longer follows the corpus"
        return {"watching": alive, "corpus_dir": str(self.corpus_dir),
                "polling": self.polling, "quiet_ms": self.quiet_ms, "max_wait_ms": self.max_wait_ms,
                "batches": self.batches, "rebuilds": self.rebuilds, "pending": self.pending,
                "cancelled": self.cancelled, "deferred": list(self.deferred),
                "last_event_at": self.last_event_at, "last_changes": self.last_changes,
                "last_live_at": self.last_live_at, "last_rebuild_seconds": self.last_rebuild_seconds,
                "hidden_until_rebuilt": sorted(getattr(self.maintainer.answerer, "hidden_sources", ())),
                "error": error}


def start_watching(settings: Settings, maintainer: IndexMaintainer) -> CorpusWatcher:
    """Watch `settings.corpus_dir` and rebuild + swap through `maintainer` on changes; `.stop()` ends it."""
    watcher = CorpusWatcher(settings, maintainer)
    maintainer.watcher = watcher
    return watcher.start()
