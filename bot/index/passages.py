"""A generation's passages in columns, so a start makes its Chunk objects and keyword indexes without parsing
JSON or tokenizing every passage again.

These files are the generation's only passage record (up to format 4 a chunks.jsonl held them too, as JSON lines:
parsing its 171k lines was 2.5 s of a serve start at 10,000 interviews, and tokenizing their texts 4-5 s). The
embed texts are not kept: a build reuses vectors by their digests (keys.npy). The build writes:
- passages.bin: the UTF-8 chunk id and text of every passage, row after row;
- passage-rows.bin: per row (and one closing row of totals) its first byte, first character and first token there,
  the length of its chunk id, its lines, and the codes of its source, project, adopter, section, question and
  heading path in the tables, and the code of its pages (little-endian int64s);
- passage-tokens.bin: the term codes of every passage text, as bot.index.keyword tokenizes it (little-endian int32s);
- passage-tables.json: the distinct names (sources, projects, adopters, sections, questions, headings), heading
  paths (lists of name codes), pages (`Chunk.pages`, code 0 the empty one of a passage not from a PDF) and terms
  the codes stand for, and the tokenizer rules the terms were made by.
An incremental build copies an unchanged file's rows as bytes, codes and shifted offsets (its tables start as
the previous generation's, so codes keep their meaning; a full build starts them afresh). The files are raw
arrays, written as the rows come (a .npy file needs its length before its first byte).
"""

from __future__ import annotations

import json
import mmap
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bot.index import keyword
from bot.ingest.chunking import Chunk
from bot.index.filecopy import append_range
from bot.index.keyword import Tokens, fingerprint, tokenize

PASSAGES = "passages.bin"
PASSAGE_INDEX = "passage-rows.bin"  # int64, little-endian, COLUMNS per row
PASSAGE_TOKENS = "passage-tokens.bin"  # int32, little-endian
PASSAGE_TABLES = "passage-tables.json"
FILES = (PASSAGES, PASSAGE_INDEX, PASSAGE_TOKENS, PASSAGE_TABLES)
# Columns of passages.npy; the closing row holds the totals of BYTE, CHAR and TOKEN.
BYTE, CHAR, TOKEN, ID_CHARS, LINE_START, LINE_END, SOURCE, PROJECT, ADOPTER, SECTION, QUESTION, PATH, PAGES = range(13)
COLUMNS = 13
_NAMES = (SOURCE, PROJECT, ADOPTER, SECTION, QUESTION)
_BLOCK_ROWS = 16384  # rows decoded at a time while loading (bounds the decoded block held beside the passages)


class PassageFormatError(ValueError):
    """The passage files disagree with each other or with the generation."""


@dataclass
class Tables:
    """The names, heading paths, pages and terms that passages.npy and passage-tokens.npy refer to by code."""

    names: list[str]
    paths: list[list[int]]
    terms: list[str]
    tokenizer: str
    pages: list[list[int]] = field(default_factory=lambda: [[]])  # code 0: no pages (not a PDF)

    def to_json(self) -> str:
        """Serialized tables."""
        return json.dumps({"names": self.names, "paths": self.paths, "terms": self.terms, "pages": self.pages,
                           "tokenizer": self.tokenizer}, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def read(cls, path: Path) -> "Tables":
        """Parse the tables file (PassageFormatError when it is not one)."""
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            tables = cls(d["names"], d["paths"], d["terms"], d["tokenizer"], d["pages"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PassageFormatError(f"{path.name} is not a passage table ({exc})") from exc
        if not all(isinstance(x, list) for x in (tables.names, tables.paths, tables.terms, tables.pages)):
            raise PassageFormatError(f"{path.name} is not a passage table")
        return tables


def _map_int32(path: Path) -> np.ndarray:
    """A raw little-endian int32 file, memory-mapped (an empty one as an empty array)."""
    size = path.stat().st_size
    if size % 4:
        raise PassageFormatError(f"{path.name} is not whole int32s")
    return np.memmap(path, dtype="<i4", mode="r") if size else np.zeros(0, dtype="<i4")


@dataclass
class PassageFiles:
    """A generation's passage files opened for reading or copying."""

    index: np.ndarray  # int64 (rows + 1, COLUMNS)
    tokens: np.ndarray  # int32 term codes (memory-mapped)
    tables: Tables
    blob: Any  # mmap of passages.bin (or b"" when empty), for copying
    path: Path | None = None  # passages.bin, read block by block when loading (its pages then are not kept mapped)

    @classmethod
    def open(cls, folder: Path, rows: int) -> "PassageFiles":
        """Open and cross-check the files (PassageFormatError when they disagree)."""
        index = np.fromfile(folder / PASSAGE_INDEX, dtype="<i8")
        if len(index) % COLUMNS:
            raise PassageFormatError(f"{PASSAGE_INDEX} is not whole rows")
        index = index.reshape(-1, COLUMNS)
        tokens = _map_int32(folder / PASSAGE_TOKENS)
        tables = Tables.read(folder / PASSAGE_TABLES)
        with (folder / PASSAGES).open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        files = cls(index, tokens, tables, blob, folder / PASSAGES)
        if not files._consistent(rows, size):
            files.close()
            raise PassageFormatError("the passage files disagree with each other")
        return files

    def _consistent(self, rows: int, size: int) -> bool:
        index, tables = self.index, self.tables
        if index.ndim != 2 or index.shape != (rows + 1, COLUMNS) or self.tokens.ndim != 1:
            return False
        if int(index[-1, BYTE]) != size or int(index[-1, TOKEN]) != len(self.tokens):
            return False
        body = index[:-1]
        if rows and (np.any(np.diff(index[:, [BYTE, CHAR, TOKEN]], axis=0) < 0)
                     or np.any(body[:, ID_CHARS] < 0) or np.any(body[:, ID_CHARS] > np.diff(index[:, CHAR]))
                     or int(body[:, _NAMES].min()) < 0 or int(body[:, _NAMES].max()) >= len(tables.names)
                     or int(body[:, PATH].min()) < 0 or int(body[:, PATH].max()) >= len(tables.paths)
                     or int(body[:, PAGES].min()) < 0 or int(body[:, PAGES].max()) >= len(tables.pages)):
            return False
        return (all(isinstance(name, str) for name in tables.names)
                and all(isinstance(p, list) and all(type(n) is int for n in p) for p in tables.pages)
                and all(isinstance(p, list) and all(type(c) is int and 0 <= c < len(tables.names) for c in p)
                        for p in tables.paths))

    def close(self) -> None:
        """Release the memory maps."""
        self.tokens = np.zeros(0, dtype=np.int32)
        if isinstance(self.blob, mmap.mmap):
            try:
                self.blob.close()
            except BufferError:  # a slice is still referenced; the map is freed with it
                pass

    def _blocks(self, row: int, rows: int) -> Any:
        """(first row, last row + 1, decoded text of those rows, character offset of that text) block by block."""
        index = self.index
        with (self.path.open("rb") if self.path is not None else nullcontext()) as f:
            for r0 in range(row, row + rows, _BLOCK_ROWS):
                r1 = min(r0 + _BLOCK_ROWS, row + rows)
                start, stop = int(index[r0, BYTE]), int(index[r1, BYTE])
                if f is None:
                    data = bytes(self.blob[start:stop])
                else:
                    f.seek(start)
                    data = f.read(stop - start)
                    if len(data) != stop - start:
                        raise PassageFormatError(f"{PASSAGES} ends early")
                yield r0, r1, data.decode("utf-8"), int(index[r0, CHAR])

    def texts(self, row: int, rows: int) -> list[str]:
        """The passage texts of `rows` rows from `row` on."""
        out: list[str] = []
        index = self.index
        for r0, r1, text, base in self._blocks(row, rows):
            starts = (index[r0:r1, CHAR] + index[r0:r1, ID_CHARS] - base).tolist()
            out.extend(text[i:j] for i, j in zip(starts, (index[r0 + 1:r1 + 1, CHAR] - base).tolist()))
        return out

    def chunks(self) -> list[Chunk]:
        """Every passage as answering needs it: `embed_text` empty, names and heading paths shared."""
        index, names = self.index, self.tables.names
        paths = [tuple(names[c] for c in p) for p in self.tables.paths]
        pages = [tuple(p) for p in self.tables.pages]
        out: list[Chunk] = []
        for r0, r1, text, base in self._blocks(0, len(index) - 1):
            starts = (index[r0:r1, CHAR] - base).tolist()
            cuts = (index[r0:r1, CHAR] + index[r0:r1, ID_CHARS] - base).tolist()
            ends = (index[r0 + 1:r1 + 1, CHAR] - base).tolist()
            ids = [text[i:j] for i, j in zip(starts, cuts)]
            texts = [text[i:j] for i, j in zip(cuts, ends)]
            columns = [[names[c] for c in index[r0:r1, k].tolist()] for k in _NAMES]
            heading_paths = [paths[c] for c in index[r0:r1, PATH].tolist()]
            lines = index[r0:r1, LINE_START].tolist(), index[r0:r1, LINE_END].tolist()
            page_marks = [pages[c] for c in index[r0:r1, PAGES].tolist()]
            out.extend(map(Chunk, ids, *columns, heading_paths, texts, *lines, repeat(""), page_marks))
        return out

    def text_tokens(self) -> Tokens | None:
        """Every passage text's global term ids (`keyword.tokenize` of the texts), or None when the terms were made
        by other tokenizer rules."""
        if self.tables.tokenizer != fingerprint():
            return None
        with keyword._vocab_lock:
            to_global = np.array([keyword._term_id(t) for t in self.tables.terms], dtype=np.int32)
        local = np.asarray(self.tokens)
        if len(local) and (int(local.min()) < 0 or int(local.max()) >= len(to_global)):
            raise PassageFormatError("passage tokens outside the term table")
        ids = to_global[local] if len(local) else np.zeros(0, dtype=np.int32)
        return Tokens(ids, np.ascontiguousarray(self.index[:, TOKEN]))


def _intern(codes: dict[str, int], values: list[str], value: str) -> int:
    """The code of `value` in a table (its position in `values`), appended when it is new."""
    code = codes.get(value)
    if code is None:
        code = codes[value] = len(values)
        values.append(value)
    return code


class PassageWriter:
    """Streams a new generation's passage files into its (temporary) folder, in row order.

    `seed`: the previous generation's files, the only ones rows may be copied from; the tables start as its."""

    def __init__(self, folder: Path, seed: PassageFiles | None = None) -> None:
        self.folder = folder
        self.seed = seed
        self._blob = (folder / PASSAGES).open("wb")
        self._rows = (folder / PASSAGE_INDEX).open("wb")
        self._tokens = (folder / PASSAGE_TOKENS).open("wb")
        self._bytes = self._chars = self._ntokens = 0
        fp = fingerprint()
        # The previous terms are kept only when made by the same tokenizer rules (else copied rows are tokenized).
        self._seed_terms = seed is not None and seed.tables.tokenizer == fp
        self.tables = Tables(list(seed.tables.names) if seed else [], [list(p) for p in seed.tables.paths] if seed else [],
                             list(seed.tables.terms) if self._seed_terms else [], fp,
                             [list(p) for p in seed.tables.pages] if seed else [[]])
        self._name_code = {n: i for i, n in enumerate(self.tables.names)}
        self._path_code = {tuple(p): i for i, p in enumerate(self.tables.paths)}
        self._term_code = {t: i for i, t in enumerate(self.tables.terms)}
        self._pages_code = {tuple(p): i for i, p in enumerate(self.tables.pages)}

    def _name(self, name: str) -> int:
        return _intern(self._name_code, self.tables.names, name)

    def _path(self, path: Sequence[str]) -> int:
        codes = tuple(self._name(h) for h in path)
        code = self._path_code.get(codes)
        if code is None:
            code = self._path_code[codes] = len(self.tables.paths)
            self.tables.paths.append(list(codes))
        return code

    def _pages(self, pages: Sequence[int]) -> int:
        key = tuple(pages)
        code = self._pages_code.get(key)
        if code is None:
            code = self._pages_code[key] = len(self.tables.pages)
            self.tables.pages.append(list(key))
        return code

    def _local_tokens(self, texts: Sequence[str]) -> Tokens:
        """`tokenize(texts)` with ids replaced by this generation's term codes."""
        tokens = tokenize(texts)
        if not len(tokens.ids):
            return tokens
        used = np.unique(tokens.ids)
        codes = np.array([self._term(keyword._names[g]) for g in used.tolist()], dtype=np.int32)
        return Tokens(codes[np.searchsorted(used, tokens.ids)], tokens.ptr)

    def _term(self, term: str) -> int:
        return _intern(self._term_code, self.tables.terms, term)

    def _append_tokens(self, ids: np.ndarray) -> None:
        self._tokens.write(memoryview(np.ascontiguousarray(ids, dtype="<i4")))
        self._ntokens += len(ids)

    def add_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Append new passages."""
        rows = np.zeros((len(chunks), COLUMNS), dtype=np.int64)
        tokens = self._local_tokens([c.text for c in chunks])
        parts: list[bytes] = []
        for r, c in enumerate(chunks):
            encoded = (c.chunk_id + c.text).encode("utf-8")
            parts.append(encoded)
            rows[r] = (self._bytes, self._chars, self._ntokens + int(tokens.ptr[r]), len(c.chunk_id), c.line_start,
                       c.line_end, self._name(c.source), self._name(c.project), self._name(c.adopter),
                       self._name(c.section), self._name(c.question), self._path(c.heading_path),
                       self._pages(c.pages))
            self._bytes += len(encoded)
            self._chars += len(c.chunk_id) + len(c.text)
        self._blob.write(b"".join(parts))
        self._rows.write(memoryview(rows.astype("<i8", copy=False)))
        self._append_tokens(tokens.ids)

    def copy(self, source: PassageFiles, row: int, rows: int) -> None:
        """Append `rows` passages of the seed generation from `row` on, as they are."""
        if source is not self.seed:
            raise ValueError("passages are copied only from the generation the writer was seeded with")
        span = source.index[row:row + rows + 1]
        b0, b1 = int(span[0, BYTE]), int(span[-1, BYTE])
        c0, c1 = int(span[0, CHAR]), int(span[-1, CHAR])
        t0, t1 = int(span[0, TOKEN]), int(span[-1, TOKEN])
        if source.path is not None:
            append_range(source.path, b0, self._blob, b1 - b0)
        else:
            self._blob.write(source.blob[b0:b1])
        moved = span[:-1].copy()
        moved[:, BYTE] += self._bytes - b0
        moved[:, CHAR] += self._chars - c0
        if self._seed_terms:
            moved[:, TOKEN] += self._ntokens - t0
            if isinstance(source.tokens, np.memmap):
                append_range(Path(source.tokens.filename), t0 * 4, self._tokens, (t1 - t0) * 4)
                self._ntokens += t1 - t0
            else:
                self._append_tokens(source.tokens[t0:t1])
        else:  # the terms were made by other rules: these texts are tokenized again
            tokens = self._local_tokens(source.texts(row, rows))
            moved[:, TOKEN] = self._ntokens + tokens.ptr[:-1]
            self._append_tokens(tokens.ids)
        self._rows.write(memoryview(moved.astype("<i8", copy=False)))
        self._bytes += b1 - b0
        self._chars += c1 - c0

    def finish(self) -> tuple[str, ...]:
        """Close the files; return their names."""
        total = np.zeros((1, COLUMNS), dtype="<i8")
        total[0, [BYTE, CHAR, TOKEN]] = self._bytes, self._chars, self._ntokens
        self._rows.write(memoryview(total))
        for f in (self._blob, self._rows, self._tokens):
            f.close()
        (self.folder / PASSAGE_TABLES).write_text(self.tables.to_json(), encoding="utf-8")
        return FILES
