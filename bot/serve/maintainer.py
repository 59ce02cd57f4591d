"""Keeps a running service's index fresh: background reindex, pick-up of new generations, status."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Iterator

from bot.index import store

from bot.index import generations
from bot.answer.answerer import Answerer
from bot.index.build import BuildCancelled, BuildMemo, BuildReport, CancelToken, Limits, build

logger = logging.getLogger(__name__)


class IndexMaintainer:
    """Runs rebuilds in the background and swaps new generations into an Answerer without a restart."""

    def __init__(self, answerer: Answerer, poll_seconds: float = 2.0) -> None:
        self.answerer = answerer
        self.settings = answerer.settings
        self.poll_seconds = poll_seconds
        self._build_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.last_report: BuildReport | None = None
        self.last_error: str | None = None
        self.last_build_at: float | None = None
        self.building = False
        self.bad_generation: int | None = None  # a generation that failed to load; not retried
        self.watcher: Any = None  # the CorpusWatcher (bot.serve.watch) when the corpus is watched
        self.memo = BuildMemo()  # vectors and skips carried from build to build: a cancelled build's work is kept
        self.current: BuildReport | None = None  # the running build's report, with its progress
        self.last_cancelled: BuildReport | None = None
        self.builds_cancelled = 0
        self._options = threading.local()

    def start(self) -> None:
        """Start polling the index folder for generations written by other processes."""
        if self._poller is None and self.poll_seconds > 0:
            self._poller = threading.Thread(target=self._poll, name="qabot-index-poll", daemon=True)
            self._poller.start()

    def stop(self) -> None:
        """Stop background work."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.try_reload()

    def try_reload(self) -> bool:
        """Swap in a newer generation if one exists; keep serving the old one if it is bad."""
        try:
            generation = generations.current_generation(self.settings.index_dir)
        except store.StoreError as exc:
            self._failed(str(exc), None)
            return False
        if generation is not None and generation == self.bad_generation:
            return False  # verified bad already; re-checksumming it every poll would only burn CPU
        try:
            swapped = self.answerer.reload()
        except store.StoreError as exc:
            self._failed(str(exc), generation)
            return False
        if self.answerer.fallback is not None:
            # CURRENT's generation is damaged and an older one is served (the Answerer warned): say so in status.
            self.last_error = self.answerer.fallback
            self.bad_generation = self.answerer.damaged_generation
            return swapped
        if swapped:
            self.bad_generation = None
            if self.last_error and not self.building:
                self.last_error = None
            index = self.answerer.index
            logger.info("index generation %s live: %d interviews, %d chunks, %d skipped",
                        index.generation, len(index.manifest.files), len(index.chunks), len(index.manifest.skipped))
        return swapped

    def _failed(self, message: str, generation: int | None) -> None:
        if self.last_error != message:
            logger.error("new index generation not loaded, still serving the previous one: %s", message)
        self.last_error = message
        self.bad_generation = generation

    def reindex(self, full: bool = False) -> bool:
        """Start an incremental build in the background; False if one is already running."""
        if not self._build_lock.acquire(blocking=False):
            return False
        self.building = True
        threading.Thread(target=self._run_build, args=(full,), name="qabot-reindex", daemon=True).start()
        return True

    @contextlib.contextmanager
    def build_options(self, cancel: CancelToken | None = None, defer_over: int | None = None) -> Iterator[None]:
        """Builds that `rebuild_now` runs in this thread meanwhile take this cancel token and deferral threshold
        (see `build`). Passed aside so `rebuild_now` keeps the signature its callers and tests wrap."""
        self._options.value = (cancel, defer_over)
        try:
            yield
        finally:
            self._options.value = None

    def rebuild_now(self, full: bool = False) -> BuildReport | None:
        """Run a build in this thread (waits for one in progress) and swap it in."""
        with self._build_lock:
            self.building = True
            return self._build(full)

    def _run_build(self, full: bool) -> None:
        try:
            self._build(full)
        finally:
            self._build_lock.release()

    def _build(self, full: bool) -> BuildReport | None:
        """Run one build; a cancelled one returns its report with `cancelled` set (nothing was written)."""
        cancel, defer_over = getattr(self._options, "value", None) or (None, None)
        report = self.current = BuildReport()
        try:
            build(self.settings.corpus_dir, self.settings.index_dir, self.answerer.embedder, full=full,
                  limits=Limits.from_settings(self.settings), cancel=cancel, report=report, memo=self.memo,
                  defer_over=defer_over)
            self.last_report = report
            self.last_build_at = time.time()
            self.last_error = None
            if not report.deferred:
                self.memo.forget_vectors()  # on disk now; kept only while a deferred file still needs them
            self.try_reload()
            if report.wrote:
                logger.info("index rebuilt: %s", report.summary())
            return report
        except BuildCancelled:
            self.last_cancelled = report
            self.builds_cancelled += 1
            generation = self.answerer.index.generation if self.answerer.ready else None
            logger.info("rebuild cancelled (%s); still serving generation %s", report.cancelled, generation)
            return report
        except Exception as exc:  # noqa: BLE001 - a failed build must never take the service down
            logger.exception("reindex failed; still serving the previous index")
            self.last_error = f"reindex failed: {exc}"
            return None
        finally:
            self.building = False
            self.current = None

    def status(self) -> dict[str, Any]:
        """Generation, when it was built, what the last build changed, and any error.

        `generation` is the one served; when CURRENT names a damaged one, `fallback` says why it is not served and
        `bad_generation` which it is."""
        fallback = self.answerer.fallback
        out: dict[str, Any] = {"ready": self.answerer.ready, "building": self.building,
                               "last_error": self.last_error or fallback, "generation": None, "built_at": None,
                               "chunks": 0, "interviews": 0, "skipped": {}, "last_build": None,
                               "fallback": fallback}
        if self.answerer.ready:
            index = self.answerer.index
            out.update(generation=index.generation, built_at=index.manifest.built_at,
                       chunks=len(index.chunks), interviews=len(index.manifest.files),
                       skipped=dict(index.manifest.skipped))
        if self.last_report is not None:
            out["last_build"] = self.last_report.to_dict()
        current = self.current
        # While a build runs: its phase, files read and passages embedded so far, of how many.
        out["progress"] = current.progress() if current is not None else None
        out["builds_cancelled"] = self.builds_cancelled
        cancelled = self.last_cancelled
        out["last_cancelled"] = None if cancelled is None else {
            "reason": cancelled.cancelled, "at": (cancelled.started_at or 0) + cancelled.seconds,
            "progress": cancelled.progress()}
        out["last_build_at"] = self.last_build_at
        out["bad_generation"] = self.bad_generation if self.bad_generation is not None else (
            self.answerer.damaged_generation if fallback is not None else None)
        out["watch"] = self.watcher.status() if self.watcher is not None else None
        return out
