"""Keeps a running service's index fresh: background reindex, pick-up of new generations, status."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from bot.index import store

from bot.index import generations
from bot.answer.answerer import Answerer
from bot.index.build import BuildReport, build

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
        try:
            report = build(self.settings.corpus_dir, self.settings.index_dir, self.answerer.embedder, full=full)
            self.last_report = report
            self.last_build_at = time.time()
            self.last_error = None
            self.try_reload()
            if report.wrote:
                logger.info("index rebuilt: %s", report.summary())
            return report
        except Exception as exc:  # noqa: BLE001 - a failed build must never take the service down
            logger.exception("reindex failed; still serving the previous index")
            self.last_error = f"reindex failed: {exc}"
            return None
        finally:
            self.building = False

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
        out["last_build_at"] = self.last_build_at
        out["bad_generation"] = self.bad_generation if self.bad_generation is not None else (
            self.answerer.damaged_generation if fallback is not None else None)
        out["watch"] = self.watcher.status() if self.watcher is not None else None
        return out
