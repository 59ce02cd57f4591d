"""Plain-text helpers shared by chunking, retrieval and answering: sentences with line numbers, words."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_LABEL = re.compile(r"^\s*(?:\*\*)?A:(?:\*\*)?\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)\]*_]*\s+(?=[\"“(\[*_]*[A-Z0-9])")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-]*")


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of source text, verbatim, with its 1-based line span."""

    text: str
    line_start: int
    line_end: int


def raw_words(text: str) -> list[str]:
    """Word tokens as written (`words` lower-cases them)."""
    return _WORD.findall(text)


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def _blocks(lines: list[str], first_line: int) -> list[tuple[int, list[str]]]:
    """Group lines into paragraphs and bullet items: [(1-based first line, lines)]."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = first_line
    for offset, line in enumerate(lines):
        number = first_line + offset
        if not line.strip():
            if current:
                blocks.append((start, current))
                current = []
            continue
        if current and _BULLET.match(line):
            blocks.append((start, current))
            current = []
        if not current:
            start = number
        current.append(line)
    if current:
        blocks.append((start, current))
    return blocks


def split_sentences(lines: list[str], first_line: int) -> list[Sentence]:
    """Split source lines into sentences; each sentence is verbatim text found within its lines."""
    sentences: list[Sentence] = []
    for start, block in _blocks(lines, first_line):
        joined = "\n".join(block)
        line_offsets = []
        pos = 0
        for line in block:
            line_offsets.append(pos)
            pos += len(line) + 1
        cursor = 0
        pieces = []
        for m in _SENTENCE_END.finditer(joined):
            pieces.append((cursor, m.start()))
            cursor = m.end()
        pieces.append((cursor, len(joined)))
        for a, b in pieces:
            raw = joined[a:b]
            lead = _BULLET.match(raw)
            if lead:
                a += lead.end()
                raw = joined[a:b]
            label = _LABEL.match(raw)
            if label and label.end() < len(raw):
                a += label.end()
            text = joined[a:b].strip()
            if not text or not _WORD.search(text):
                continue
            a = joined.index(text, a)
            # Binary search: scanning every line offset per sentence made a long paragraph quadratic.
            first = bisect_right(line_offsets, a) - 1
            last = bisect_right(line_offsets, a + len(text) - 1) - 1
            sentences.append(Sentence(text, start + first, start + last))
    return sentences


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace to one space."""
    return " ".join(text.split())
