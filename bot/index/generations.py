"""Generations in the index folder: the CURRENT pointer, the build lock, pruning old generations."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Iterator

logger = logging.getLogger(__name__)

CURRENT = "CURRENT"
MANIFEST = "manifest.json"  # what makes a gen-<digits> folder a generation
LOCK = ".lock"
TRASH = ".trash-"  # old generations being deleted
KEEP_GENERATIONS = 2


class StoreError(RuntimeError):
    """The index is missing, incompatible or damaged; the message says what to do."""


class IndexNotFound(StoreError):
    """No index has been built yet."""


class IndexDamaged(StoreError):
    """A file of the index (or the CURRENT pointer) is missing, unreadable or fails its checksum."""


class NoIntactIndex(IndexNotFound, IndexDamaged):
    """CURRENT or its generation is damaged and no other generation is intact: as good as no index (a service
    builds one)."""


_GENERATION = re.compile(r"gen-([0-9]+)")  # ASCII digits only: str.isdigit() also accepts "²", which int() refuses


def generation_dir(index_dir: Path, generation: int) -> Path:
    return index_dir / f"gen-{generation:06d}"


def parse_generation(name: str) -> int | None:
    """The number of a generation folder name ("gen-000012" -> 12), or None when it is not one."""
    match = _GENERATION.fullmatch(name)
    return int(match.group(1)) if match else None


def current_generation(index_dir: Path) -> int | None:
    """The generation CURRENT points at, or None when there is no index (IndexDamaged when CURRENT is bad)."""
    path = index_dir / CURRENT
    try:
        # Bytes, decoded leniently: a binary-garbage CURRENT is reported as damaged, not as a UnicodeDecodeError.
        name = path.read_bytes().decode("utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise IndexDamaged(f"{path} is a folder, not the pointer file; rebuild with `qabot index`, "
                           "which replaces it") from exc
    except OSError as exc:
        raise IndexDamaged(f"{path} cannot be read ({exc.strerror or exc}); fix its permissions or rebuild with "
                           "`qabot index`") from exc
    generation = parse_generation(name)
    if generation is None:
        raise IndexDamaged(f"{path} is damaged ({name[:60]!r}); rebuild with `qabot index`, which replaces it")
    return generation


def numbered_entries(index_dir: Path) -> dict[int, Path]:
    """Every `gen-<digits>` entry of the folder (generations or not) by number, for choosing a new number."""
    out: dict[int, Path] = {}
    try:
        entries = list(index_dir.iterdir())
    except FileNotFoundError:
        return out
    for path in entries:
        number = parse_generation(path.name)
        if number is not None:
            out[number] = path
    return out


def generation_numbers(index_dir: Path) -> list[int]:
    """The numbers of the folder's generations, oldest first, by number (not by name: gen-1000000 follows
    gen-999999). A generation is a folder named as this code names them, holding a manifest; anything else
    (gen-abc, an empty gen-999999, a hand-made gen-7) is left alone."""
    try:
        entries = list(index_dir.iterdir())
    except FileNotFoundError:
        return []
    numbers = ((parse_generation(p.name), p) for p in entries)
    return sorted(n for n, p in numbers
                  if n is not None and p.name == generation_dir(index_dir, n).name and (p / MANIFEST).is_file())


def next_generation(index_dir: Path) -> int:
    """A number greater than every numbered entry of the folder and than CURRENT's, so no folder is reused."""
    try:
        current = current_generation(index_dir) or 0
    except IndexDamaged:
        current = 0  # a bad CURRENT is replaced by the build asking
    return max([current, *numbered_entries(index_dir)]) + 1


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
    """Remove all but the newest `keep` generations (never the current one) and stale temp files.

    Only `gen-<digits>` folders with a manifest count, ordered by number; other folders are left alone."""
    try:
        current = current_generation(index_dir)
    except IndexDamaged as exc:  # which generation is live is unknown: delete none of them
        logger.warning("not pruning old generations: %s", exc)
        current, gens = None, []
    else:
        gens = generation_numbers(index_dir) if current is not None else []
    doomed: list[Path] = []
    for number in gens[:-keep] if keep else gens:
        if number == current:
            continue
        old = generation_dir(index_dir, number)
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
    path = index_dir / LOCK
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        f = path.open("a")
    except OSError as exc:  # a read-only folder or lock file: say which, not a traceback
        where = f" on {exc.filename}" if exc.filename and str(exc.filename) != str(path) else ""
        raise StoreError(f"cannot open the build lock {path}: {exc.strerror or exc}{where}; make {index_dir} "
                         "writable by this user, or set QABOT_INDEX_DIR to a writable folder") from exc
    with f:
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
