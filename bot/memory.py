"""Handing memory freed by an index swap back to the operating system."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

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
