"""A generation's passages in columns, so a start makes its Chunk objects without parsing JSON.

chunks.jsonl holds every passage as a JSON line (with its embed text, which only building reads). Parsing its
171k lines was 2.5 s of a serve start at 10,000 interviews. Beside it the build writes:
- passages.bin: the UTF-8 strings of every passage, row after row: chunk id, source, project, adopter, section,
  question, text, then each heading of its path;
- passages.npy: per row (and one closing row of totals) its first byte, first character and first string there,
  its line_start and line_end;
- passage-ends.npy: per string, where it ends (characters from the start of passages.bin).
A start decodes passages.bin block by block and slices the strings out of it; an incremental build copies an
unchanged file's rows as bytes and shifted offsets, like its chunks.jsonl lines and vectors.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bot.chunking import Chunk

PASSAGES = "passages.bin"
PASSAGE_INDEX = "passages.npy"
PASSAGE_ENDS = "passage-ends.npy"
FILES = (PASSAGES, PASSAGE_INDEX, PASSAGE_ENDS)
_FIXED = 7  # strings every row has before its heading path
_BYTE, _CHAR, _STRING, _LINE_START, _LINE_END = range(5)
_BLOCK_ROWS = 16384  # rows decoded at a time while loading (bounds the decoded block held beside the passages)


class PassageFormatError(ValueError):
    """The passage files disagree with each other or with the generation."""


@dataclass
class PassageFiles:
    """A generation's passage files opened for reading or copying."""

    index: np.ndarray  # int64 (rows + 1, 5)
    ends: np.ndarray  # int64, one per string
    blob: Any  # mmap of passages.bin (or b"" when empty)

    @classmethod
    def open(cls, folder: Path, rows: int) -> "PassageFiles":
        """Open and cross-check the files (PassageFormatError when they disagree)."""
        index = np.load(folder / PASSAGE_INDEX)
        ends = np.load(folder / PASSAGE_ENDS)
        with (folder / PASSAGES).open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        files = cls(index, ends, blob)
        if (index.ndim != 2 or index.shape != (rows + 1, 5) or ends.ndim != 1 or int(index[-1, _BYTE]) != size
                or int(index[-1, _STRING]) != len(ends) or np.any(np.diff(index[:, _STRING]) < _FIXED)
                or (len(ends) and int(ends[-1]) != int(index[-1, _CHAR]))):
            files.close()
            raise PassageFormatError("the passage files disagree with each other")
        return files

    def close(self) -> None:
        """Release the memory map."""
        if isinstance(self.blob, mmap.mmap):
            try:
                self.blob.close()
            except BufferError:  # a slice is still referenced; the map is freed with it
                pass

    def chunks(self) -> list[Chunk]:
        """Every passage as answering needs it: `embed_text` empty, names and heading paths shared."""
        index, ends = self.index, self.ends
        starts = np.empty_like(ends)
        if len(ends):
            starts[0] = 0
            starts[1:] = ends[:-1]
        memo: dict[Any, Any] = {}
        out: list[Chunk] = []
        rows = len(index) - 1
        for r0 in range(0, rows, _BLOCK_ROWS):
            r1 = min(r0 + _BLOCK_ROWS, rows)
            text = bytes(self.blob[int(index[r0, _BYTE]):int(index[r1, _BYTE])]).decode("utf-8")
            base = int(index[r0, _CHAR])
            first = index[r0:r1 + 1, _STRING]

            def column(at: np.ndarray) -> list[str]:
                a, b = (starts[at] - base).tolist(), (ends[at] - base).tolist()
                return [text[i:j] for i, j in zip(a, b)]

            ids, sources, projects, adopters, sections, questions, texts = (
                column(first[:-1] + k) for k in range(_FIXED))
            names = [[memo.setdefault(s, s) for s in col] for col in (sources, projects, adopters, sections, questions)]
            counts = np.diff(first) - _FIXED
            at = np.repeat(first[:-1] + _FIXED - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
            flat = [memo.setdefault(s, s) for s in column(at)]
            cuts = np.concatenate([[0], np.cumsum(counts)]).tolist()
            paths = [memo.setdefault(p, p) for p in (tuple(flat[i:j]) for i, j in zip(cuts, cuts[1:]))]
            lines = index[r0:r1, _LINE_START].tolist(), index[r0:r1, _LINE_END].tolist()
            out.extend(map(Chunk, ids, *names, paths, texts, *lines, repeat("")))
            del text
        return out


class PassageWriter:
    """Streams a new generation's passage files into its (temporary) folder, in row order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._blob = (folder / PASSAGES).open("wb")
        self._index: list[np.ndarray] = []
        self._ends: list[np.ndarray] = []
        self._bytes = self._chars = self._strings = 0

    def add_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Append new passages."""
        rows = np.zeros((len(chunks), 5), dtype=np.int64)
        lengths: list[int] = []
        parts: list[str] = []
        for r, c in enumerate(chunks):
            strings = (c.chunk_id, c.source, c.project, c.adopter, c.section, c.question, c.text, *c.heading_path)
            encoded = "".join(strings).encode("utf-8")
            rows[r] = (self._bytes, self._chars, self._strings, c.line_start, c.line_end)
            parts.append(encoded)
            lengths.extend(len(s) for s in strings)
            self._bytes += len(encoded)
            self._chars += sum(len(s) for s in strings)
            self._strings += len(strings)
        self._blob.write(b"".join(parts))
        self._index.append(rows)
        base = int(rows[0, _CHAR]) if len(chunks) else self._chars
        self._ends.append(base + np.cumsum(np.array(lengths, dtype=np.int64)))

    def copy(self, source: PassageFiles, row: int, rows: int) -> None:
        """Append `rows` passages of an earlier generation from `row` on, as they are."""
        span = source.index[row:row + rows + 1]
        b0, b1 = int(span[0, _BYTE]), int(span[-1, _BYTE])
        c0, c1 = int(span[0, _CHAR]), int(span[-1, _CHAR])
        s0, s1 = int(span[0, _STRING]), int(span[-1, _STRING])
        self._blob.write(source.blob[b0:b1])
        moved = span[:-1].copy()
        moved[:, _BYTE] += self._bytes - b0
        moved[:, _CHAR] += self._chars - c0
        moved[:, _STRING] += self._strings - s0
        self._index.append(moved)
        self._ends.append(source.ends[s0:s1] - c0 + self._chars)
        self._bytes += b1 - b0
        self._chars += c1 - c0
        self._strings += s1 - s0

    def finish(self) -> tuple[str, ...]:
        """Close the files; return their names."""
        self._blob.close()
        total = np.array([[self._bytes, self._chars, self._strings, 0, 0]], dtype=np.int64)
        np.save(self.folder / PASSAGE_INDEX, np.concatenate([*self._index, total]))
        np.save(self.folder / PASSAGE_ENDS, np.concatenate([np.zeros(0, dtype=np.int64), *self._ends]))
        return FILES
