"""Copy a byte range from one file into another by the kernel (no pages mapped or read into Python)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


class ShortFile(OSError):
    """The source file ended before the range was copied."""


def copy_range(source: Path, source_offset: int, target: BinaryIO, target_offset: int, count: int) -> None:
    """Copy `count` bytes of `source` from `source_offset` into the open file `target` at `target_offset`
    (os.copy_file_range; read and write where the kernel cannot copy between the two files)."""
    with source.open("rb") as f:
        done = 0
        try:
            while done < count:
                copied = os.copy_file_range(f.fileno(), target.fileno(), count - done, source_offset + done,
                                            target_offset + done)
                if copied <= 0:
                    break
                done += copied
        except OSError:  # another file system, an old kernel: read and written instead
            pass
        while done < count:
            data = os.pread(f.fileno(), min(count - done, 1 << 24), source_offset + done)
            if not data:
                raise ShortFile(f"{source} ended before its bytes were copied")
            done += os.pwrite(target.fileno(), data, target_offset + done)


def append_range(source: Path, source_offset: int, target: BinaryIO, count: int) -> None:
    """Copy `count` bytes of `source` from `source_offset` to the end of the buffered file `target`."""
    target.flush()
    at = target.seek(0, os.SEEK_END)
    copy_range(source, source_offset, target, at, count)
    target.seek(at + count)
