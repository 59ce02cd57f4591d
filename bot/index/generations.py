"""Generations in the index folder: the CURRENT pointer, the build lock, pruning old generations."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Iterator

logger = logging.getLogger(__name__)

CURRENT = "CURRENT"
LOCK = ".lock"
TRASH = ".trash-"  # old generations being deleted
KEEP_GENERATIONS = 2


class StoreError(RuntimeError):
    """The index is missing, incompatible or damaged; the message says what to do."""


class IndexNotFound(StoreError):
    """No index has been built yet."""


def generation_dir(index_dir: Path, generation: int) -> Path:
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


def fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_held_locks: set[Path] = set()


def prune(index_dir: Path, keep: int = KEEP_GENERATIONS) -> None:
    """Remove all but the newest `keep` generations (never the current one) and stale temp files."""
    current = current_generation(index_dir)
    gens = sorted(p for p in index_dir.glob("gen-*") if p.is_dir())
    doomed: list[Path] = []
    for old in gens[:-keep] if keep else gens:
        if current is not None and old.name == generation_dir(index_dir, current).name:
            continue
        # Renamed out of the way at once; deleting its files (~0.3 s at 10,000 interviews) happens in the
        # background, so a rebuild goes live without waiting for it. A process killed meanwhile leaves a
        # .trash- folder that the next prune removes.
        trash = index_dir / f"{TRASH}{old.name}-{os.getpid()}"
        try:
            os.rename(old, trash)
            doomed.append(trash)
        except OSError:
            shutil.rmtree(old, ignore_errors=True)
    doomed += [p for p in index_dir.glob(f"{TRASH}*") if p not in doomed]
    if doomed:
        threading.Thread(target=_remove_all, args=(doomed,), name="qabot-prune").start()  # not a daemon: finishes
    locked = index_dir.resolve() in _held_locks  # under the build lock no other build can be writing
    for tmp in [*index_dir.glob(".tmp-gen-*"), *index_dir.glob(f".{CURRENT}.*")]:
        pid = tmp.name.rsplit("-" if tmp.name.startswith(".tmp") else ".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and (locked or not _pid_alive(int(pid))):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


def _remove_all(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        _held_locks.add(index_dir.resolve())
        try:
            yield
        finally:
            _held_locks.discard(index_dir.resolve())
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def now() -> float:
    """Wall-clock time for manifests."""
    return time.time()
