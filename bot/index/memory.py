"""Memory around an index swap: the cyclic collector paused while it is built, freed heap handed back after."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from contextlib import contextmanager
from typing import Iterator

logger = logging.getLogger(__name__)
_libc = None


def trim() -> None:
    """Ask glibc to return free heap pages (a reload frees millions of small objects it would otherwise keep:
    about 300 MB at 10,000 interviews). A no-op where malloc_trim does not exist."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        logger.debug("malloc_trim is not available")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a generation's objects are made: passages and their ranking
    structures hold no reference cycles, yet each collection triggered by the allocations scans them all
    (at 10,000 interviews parsing the passages takes 2.5 s instead of 3.4 s). Reference counting still frees."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
