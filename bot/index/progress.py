"""What a build carries and reports: its limits, cancel token, memo and report, the progress log, and the
embedding step that counts progress and stops when cancelled."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from bot.config import Settings
from bot.embed.embedders import Embedder
from bot.index.store import embed_key

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
        self.prepare: Callable[[], None] | None = None  # called once before the first text is embedded

    @property
    def dim(self) -> int:
        """The embedder's dimension (known once its model is loaded)."""
        return int(self.embedder.dim)

    def embed(self, texts: Sequence[str], what: str) -> np.ndarray:
        """Vectors of `texts`; `what` ("passages" or "sentences") names the progress counter."""
        vectors: list[np.ndarray | None] = [None] * len(texts)
        keys = [embed_key(t) for t in texts]
        todo = []
        for i, key in enumerate(keys):
            vectors[i] = self.memo.vector(key)
            if vectors[i] is None:
                todo.append(i)
        self._count(what, len(texts) - len(todo))
        if todo and self.prepare is not None:  # the ONNX export the embedder runs on is made (or checked) first
            prepare, self.prepare = self.prepare, None
            prepare()
        # Slices of texts of similar length: little padding in each batch (vectors go back in the order given).
        todo.sort(key=lambda i: len(texts[i]))
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
        """The Embedder protocol (counted as sentences)."""
        return self.embed(list(texts), "sentences")

    def embed_query(self, text: str) -> np.ndarray:
        """The Embedder protocol (not used by builds)."""
        return self.embedder.embed_query(text)

    def _count(self, what: str, n: int) -> None:
        if what == "passages":
            self.report.passages_embedded += n
        else:
            self.report.sentences_embedded += n
        self.ticker.tick()
