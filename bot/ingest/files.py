"""Find interview files under the corpus folder and read them, never leaving the folder."""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

# Markdown and text, Word, PDF, and meeting transcripts (bot/ingest/formats/ reads each).
SUFFIXES = (".md", ".markdown", ".txt", ".docx", ".pdf", ".vtt", ".srt")


class CorpusError(Exception):
    """A file could not be read or parsed as an interview."""


class FileTooLarge(CorpusError):
    """A file is bigger than the configured limit (QABOT_MAX_FILE_BYTES)."""


def _size(n: int) -> str:
    """A byte count for people: "5.0 MiB (5,242,880 bytes)"."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def too_large_reason(size: int, limit: int) -> str:
    """Why a file of `size` bytes is not read: it names both the size and the limit."""
    return f"file is {_size(size)}, over the limit of {_size(limit)} (QABOT_MAX_FILE_BYTES)"


@dataclass
class Discovery:
    """What a walk of the corpus folder found: the interview files, and every entry it would not read."""

    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # corpus-relative path -> why it was not read


def _inside(target: str, root: str) -> bool:
    """True when the resolved path `target` is `root` or lies below it."""
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def discover(corpus_dir: Path, max_file_bytes: int | None = None) -> Discovery:
    """Walk `corpus_dir` for interview files (nested folders included, hidden ones skipped), sorted.

    Nothing outside the corpus folder is ever read: a link to a file is followed only when its resolved
    target lies inside the corpus root, and links to folders are not followed at all (they would index the
    same files twice, or leave the root). Broken links, link loops, FIFOs, unreadable folders and files over
    `max_file_bytes` (from `stat`, before anything is read) are named in `skipped` so the build can report them
    instead of dropping them silently.
    """
    root = os.path.realpath(corpus_dir)
    found = Discovery()
    found_rel: list[str] = []
    base = str(corpus_dir)

    def rel_of(path: str) -> str:
        return os.path.relpath(path, base).replace(os.sep, "/")

    def unreadable(exc: OSError) -> None:
        if exc.filename and os.path.abspath(exc.filename) != os.path.abspath(base):
            found.skipped[rel_of(exc.filename) + "/"] = f"cannot read folder ({exc.strerror or exc})"

    for here, dirs, files in os.walk(corpus_dir, onerror=unreadable):
        kept = []
        for d in dirs:
            if d.startswith("."):
                continue
            full = os.path.join(here, d)
            if os.path.islink(full):
                found.skipped[rel_of(full) + "/"] = "link to a folder: not followed"
            else:
                kept.append(d)
        dirs[:] = kept
        for name in files:
            lower = name.lower()
            if name.startswith(".") or lower == "readme.md" or os.path.splitext(lower)[1] not in SUFFIXES:
                continue
            full = os.path.join(here, name)
            why = _unreadable_reason(full, root, max_file_bytes)
            if why is None:
                found_rel.append(os.path.relpath(full, base))
            else:
                found.skipped[rel_of(full)] = why
    for rel in sorted(found_rel, key=lambda r: r.split(os.sep)):  # Path order: folder by folder
        found.files.append(corpus_dir / rel)
    return found


def _unreadable_reason(full: str, root: str, max_bytes: int | None = None) -> str | None:
    """Why the entry at `full` must not be read as an interview, or None when it is a regular file inside
    (and not over `max_bytes`)."""
    if os.path.islink(full):
        try:
            target = os.path.realpath(full, strict=True)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "link loop"
            return "broken link"
        if not _inside(target, root):
            return "link leads outside the corpus folder: not followed"
    try:
        st = os.stat(full)
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if max_bytes is not None and st.st_size > max_bytes:
        return too_large_reason(st.st_size, max_bytes)
    return None


def iter_files(corpus_dir: Path) -> Iterator[Path]:
    """Yield the readable interview files under `corpus_dir` (see `discover` for what is left out)."""
    yield from discover(corpus_dir).files


def relative_source(path: Path, corpus_dir: Path) -> str:
    """The file's path relative to the corpus folder, with `/` separators."""
    full, base = str(path), str(corpus_dir)
    if full.startswith(base + os.sep):  # the usual case, without pathlib's slow relative_to
        return full[len(base) + 1:].replace(os.sep, "/")
    return path.relative_to(corpus_dir).as_posix()


def _read_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of a corpus file, opened without following a final link (a link is resolved first).

    `discover` already refused links that leave the corpus; opening the resolved target with O_NOFOLLOW
    keeps a link swapped in afterwards from being followed blindly. A file over `max_bytes` raises FileTooLarge
    without being read, also when it grew after `discover` looked at it.
    """
    fd = os.open(os.path.realpath(path), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise FileTooLarge(f"{path}: {too_large_reason(st.st_size, max_bytes)}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            if max_bytes is None:
                return f.read()
            data = f.read(max_bytes + 1)  # one byte more tells a file that is still growing
        if len(data) > max_bytes:
            raise FileTooLarge(f"{path}: file grew past the limit of {_size(max_bytes)} while being read "
                               "(QABOT_MAX_FILE_BYTES)")
        return data
    finally:
        os.close(fd)


def _decode(data: bytes) -> str | None:
    """Text of `data` as UTF-8 (BOM allowed) or BOM-marked UTF-16; None when it is binary."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    if b"\x00" in data:
        return None
    return data.decode("utf-8-sig")


def read_text(path: Path, max_bytes: int | None = None) -> tuple[str, str]:
    """Read a file as UTF-8 or BOM-marked UTF-16; return (text, sha256). Raise CorpusError if unusable
    (FileTooLarge when it is over `max_bytes`)."""
    data, sha = read_bytes(path, max_bytes)
    return decode_text(data, path), sha


def read_bytes(path: Path, max_bytes: int | None = None) -> tuple[bytes, str]:
    """The bytes of a corpus file and their sha256, read as safely as `read_text` reads text; CorpusError if
    unusable (FileTooLarge when it is over `max_bytes`, or empty)."""
    try:
        data = _read_bytes(path, max_bytes)
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise CorpusError(f"{path}: empty file")
    return data, hashlib.sha256(data).hexdigest()


def decode_text(data: bytes, path: Path) -> str:
    """`data` as text (UTF-8, BOM allowed, or BOM-marked UTF-16); CorpusError naming `path` if it is not."""
    try:
        text = _decode(data)
    except UnicodeDecodeError as exc:
        encoding = "UTF-16" if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "UTF-8"
        raise CorpusError(f"{path}: not valid {encoding} (byte {exc.start})") from exc
    if text is None:
        raise CorpusError(f"{path}: binary file, not text")
    if not text.strip():
        raise CorpusError(f"{path}: empty file")
    return text


def file_sha256(path: Path, max_bytes: int | None = None) -> str:
    """The sha256 of a file's bytes (FileTooLarge when it is over `max_bytes`)."""
    return hashlib.sha256(_read_bytes(path, max_bytes)).hexdigest()
