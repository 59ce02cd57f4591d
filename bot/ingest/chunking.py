"""Turn parsed interviews into Chunk records: one question and its answer, heading path kept."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from bot.ingest.files import CorpusError
from bot.ingest.parse import Interview, Section
from bot.ingest.text import Sentence, split_sentences, words

# "2": the layout-independent parser (template text left out, closing notes split off) changes the passages of
# files whose bytes did not change, so an index of version "1" is rebuilt rather than reused.
CHUNKER_VERSION = "3"  # 3: an emphasised question may spread over lines
# all-MiniLM-L6-v2 reads 256 word pieces; English averages ~1.3 pieces a word, and the header takes some.
MAX_WORDS = 160
OVERLAP_SENTENCES = 1
# A window holds up to MAX_WORDS words (~1,000 characters); only a "sentence" that never ends (no full stop in a
# whole line of text, or a blob without words) gets longer. Such a passage is no answer anyone can read or quote.
MAX_PASSAGE_CHARS = 20_000


class ChunkBudgetExceeded(CorpusError):
    """An interview would make more passages than a file may, or a passage far longer than any window."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One indexed passage: a question and (part of) its answer, with where it came from."""

    chunk_id: str
    source: str
    project: str
    adopter: str
    section: str
    question: str
    heading_path: tuple[str, ...]
    text: str  # verbatim source lines
    line_start: int
    line_end: int
    embed_text: str  # context header + text, what the model sees
    # PDF: the page of line_start, then the first line of each later page up to line_end; () for other formats.
    pages: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["heading_path"] = list(self.heading_path)
        d["pages"] = list(self.pages)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Chunk":
        """Inverse of to_dict."""
        return cls(**{**d, "heading_path": tuple(d["heading_path"]), "pages": tuple(d.get("pages", ()))})

    def page_of(self, line: int) -> int | None:
        """The PDF page one of this passage's lines is on (None when the passage is not from a PDF)."""
        if not self.pages:
            return None
        return self.pages[0] + sum(1 for start in self.pages[1:] if start <= line)


def context_header(interview: Interview, section: str, question: str) -> str:
    """The short header prepended to embedded text, so names and questions steer the vectors."""
    parts = [f"{interview.project} adopter interview: {interview.adopter}."]
    if section and section != question:
        parts.append(f"{section}.")
    parts.append(question)
    return " ".join(parts)


def _chunk_id(source: str, path: tuple[str, ...], text: str, seen: dict[str, int]) -> str:
    key = "\x1f".join((source, *path, " ".join(text.split())))
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    n = seen.get(digest, 0)
    seen[digest] = n + 1
    return digest if n == 0 else f"{digest}-{n}"


def _sentence_columns(sentences: list[Sentence], lines: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start column on its first line, end column on its last line) of each sentence.

    Searched left to right from where the previous sentence ended: searching each line from its start made a
    long line of many sentences quadratic (and found an earlier copy of a repeated sentence)."""
    columns: list[tuple[int, int]] = []
    line_no, pos = 0, 0  # where the previous sentence ended
    for sentence in sentences:
        line = lines[sentence.line_start - 1]
        head, _, rest = sentence.text.partition("\n")
        a = line.find(head, pos if sentence.line_start == line_no else 0)
        if a < 0:
            a = line.find(head)
        # A sentence's later lines are whole lines from their first column (text is joined lines, verbatim).
        b = a + len(head) if not rest else len(rest.rpartition("\n")[2])
        columns.append((a, b))
        line_no, pos = sentence.line_end, b
    return columns


def _checked(start: int, end: int, text: str) -> tuple[int, int, str]:
    if len(text) > MAX_PASSAGE_CHARS:
        raise ChunkBudgetExceeded(f"lines {start:,}-{end:,} make a passage of {len(text):,} characters with no "
                                  f"sentence end inside (at most {MAX_PASSAGE_CHARS:,})")
    return start, end, text


def _windows(section: Section, lines: tuple[str, ...]) -> Iterable[tuple[int, int, str]]:
    """Yield (line_start, line_end, verbatim text) pieces of a section body within MAX_WORDS."""
    body_lines = list(lines[section.line_start - 1 : section.line_end])
    if len(words(section.body)) <= MAX_WORDS:
        yield _checked(section.line_start, section.line_end, section.body)
        return
    sentences = split_sentences(body_lines, section.line_start)
    counts = [len(words(s.text)) for s in sentences]
    columns = _sentence_columns(sentences, lines)
    i = 0
    while i < len(sentences):
        j, count = i, 0
        while j < len(sentences) and (j == i or count + counts[j] <= MAX_WORDS):
            count += counts[j]
            j += 1
        start, end = sentences[i].line_start, sentences[j - 1].line_end
        # Verbatim text from the first sentence's start to the last sentence's end.
        a, b = columns[i][0], columns[j - 1][1]
        first, last = lines[start - 1], lines[end - 1]
        if start == end:
            text = first[a:b]
        else:
            text = "\n".join([first[a:], *lines[start : end - 1], last[:b]])
        yield _checked(start, end, text)
        if j >= len(sentences):
            break
        i = max(j - OVERLAP_SENTENCES, i + 1)


def chunk_interview(interview: Interview, max_passages: int | None = None) -> list[Chunk]:
    """All chunks of one interview, in document order.

    Raises ChunkBudgetExceeded as soon as the interview makes more than `max_passages` passages (the work of
    chunking and embedding it grows with their number), or one passage longer than MAX_PASSAGE_CHARS."""
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for section in interview.sections:
        path = section.path
        section_name = path[0]
        question = path[-1]
        header = context_header(interview, section_name, question)
        for line_start, line_end, text in _windows(section, interview.lines):
            if max_passages is not None and len(chunks) >= max_passages:
                raise ChunkBudgetExceeded(
                    f"more than {max_passages:,} passages (QABOT_MAX_PASSAGES_PER_FILE); stopped counting at line "
                    f"{line_start:,} of {len(interview.lines):,}")
            chunks.append(Chunk(
                chunk_id=_chunk_id(interview.source, path, text, seen),
                source=interview.source,
                project=interview.project,
                adopter=interview.adopter,
                section=section_name,
                question=question,
                heading_path=path,
                text=text,
                line_start=line_start,
                line_end=line_end,
                embed_text=f"{header}\n{' '.join(text.split())}",
                pages=interview.page_marks(line_start, line_end),
            ))
    return chunks


def chunk_sentences(chunk: Chunk) -> list[Sentence]:
    """The sentences of a chunk, verbatim, with their source lines."""
    return split_sentences(chunk.text.split("\n"), chunk.line_start)
