"""Parse an interview's text into metadata plus sections with 1-based line spans.

Markdown and text are parsed as they are; Word, PDF and transcripts are first turned into text
(`bot/ingest/formats/`), and their line numbers are those of that text. Where the questions are is
`layout.find_markers`, who the interview is about `names`, what is template text `boilerplate`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from bot.ingest import names
from bot.ingest.boilerplate import boilerplate_spans
from bot.ingest.files import CorpusError, relative_source
from bot.ingest.formats import extract
from bot.ingest.layout import Marker, find_markers, question_like
from bot.ingest.markup import MAX_HEADING_CHARS, clean_inline, front_matter, front_matter_end, is_rule, trim
from bot.ingest.turns import speakers

__all__ = ["MAX_HEADING_CHARS", "Interview", "Section", "index_warnings", "parse_file", "parse_text"]

logger = logging.getLogger(__name__)

_LAYOUTS = {"heading": "headings", "numbered": "numbered questions", "emphasis": "emphasised-line questions",
            "prefixed": "Q-prefixed questions", "list": "list-item questions", "paragraph": "question paragraphs",
            "turn": "speaker turns"}


@dataclass(frozen=True)
class Section:
    """One heading and the text under it (up to the next heading)."""

    path: tuple[str, ...]  # heading titles from the top section down to this heading
    heading_line: int  # 1-based line of the heading (0 for text before any heading)
    line_start: int  # 1-based first line of the body
    line_end: int  # 1-based last line of the body
    body: str  # the body lines, verbatim, joined with "\n"
    asked: bool = False  # the last heading of `path` is a question (and the body its answer)


@dataclass(frozen=True)
class Interview:
    """A parsed interview file."""

    source: str  # path relative to the corpus folder, "/" separators
    project: str
    adopter: str
    title: str
    interviewee: str | None
    date: str | None
    sha256: str
    lines: tuple[str, ...]  # the text that line numbers refer to (for Word, PDF, transcripts: as extracted)
    sections: tuple[Section, ...] = field(default_factory=tuple)
    format: str = "markdown"  # markdown, text, docx, pdf, vtt, srt
    layout: str = ""  # how its questions are written, e.g. "headings, numbered questions"
    boilerplate: tuple[tuple[int, int], ...] = ()  # 1-based line spans of template text, not indexed
    warnings: tuple[str, ...] = ()
    pages: tuple[int, ...] = ()  # PDF: the 1-based line each page starts on

    def page_of(self, line: int) -> int | None:
        """The 1-based page a line of a PDF's text is on (None for other formats)."""
        if not self.pages:
            return None
        return sum(1 for start in self.pages if start <= line) or 1

    def page_marks(self, line_start: int, line_end: int) -> tuple[int, ...]:
        """A passage's pages as `Chunk.pages` holds them: the page of `line_start`, then the first line of each
        later page up to `line_end` (() for other formats)."""
        if not self.pages:
            return ()
        page = self.page_of(line_start)
        return (page, *(start for start in self.pages[page:] if start <= line_end))


def _title_line(lines: list[str], start: int) -> int | None:
    """The 0-based line of a plain first line shaped like a title ("Acme Adopter Interview - Initech"): text
    files, PDFs and Word files without a title style have no "#"."""
    for i in range(start, min(start + 3, len(lines))):
        if lines[i].strip():
            return i if len(lines[i]) <= MAX_HEADING_CHARS and names.TITLE.match(clean_inline(lines[i])) else None
    return None


def _closing_note(lines: list[str], start: int, end: int) -> int | None:
    """The line of a rule in the last section's body that closes the file with a note ("---" then "*Interview
    conducted …*"): the answer ends there. None when there is none."""
    for i in range(end - 1, start, -1):
        if is_rule(lines[i]):
            return i if any(line.strip() for line in lines[i + 1 : end]) else None
    return None


class _Builder:
    """Sections from markers, keeping template text out and noting what a reader should know."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.sections: list[Section] = []
        self.boilerplate: list[tuple[int, int]] = []
        self.empty: list[str] = []

    def add(self, path: tuple[str, ...], heading_line: int, start: int, end: int, answer: bool,
            asked: bool = False) -> None:
        """Add the body [start, end) (0-based) under `path`; outside an answer, template text is left out."""
        pieces = [(start, end)]
        if not answer:
            pieces = []
            cursor = start
            for a, b in boilerplate_spans(self.lines, start, end):
                pieces.append((cursor, a))
                self.boilerplate.append((a + 1, b))
                cursor = b
            pieces.append((cursor, end))
        for a, b in pieces:
            span = trim(self.lines, a, b)
            if span:
                self.sections.append(Section(path, heading_line, span[0] + 1, span[1],
                                             "\n".join(self.lines[span[0] : span[1]]), asked))


def _build_sections(lines: list[str], body: list[Marker], preamble: tuple[int, int]) -> _Builder:
    built = _Builder(lines)
    built.add(("Interview details",), 0, preamble[0], preamble[1], answer=False)
    stack: list[tuple[int, str]] = []
    asked = False  # a question came before
    for n, marker in enumerate(body):
        while stack and stack[-1][0] >= marker.level:
            stack.pop()
        stack.append((marker.level, marker.text))
        path = tuple(t for _, t in stack)
        end = body[n + 1].line if n + 1 < len(body) else len(lines)
        # Template text stands before the first question or introduces a group of questions; after the first
        # question a section that asks nothing ("Project Strengths", "Community openness") holds answers too.
        opens_group = n + 1 < len(body) and body[n + 1].level > marker.level and body[n + 1].question
        answer = marker.question or question_like(marker.text) or (asked and not opens_group)
        asked = asked or marker.question
        before = len(built.sections)
        rule = _closing_note(lines, marker.next, end) if n + 1 == len(body) else None
        built.add(path, marker.line + 1, marker.next, end if rule is None else rule, answer, marker.question)
        deeper = n + 1 < len(body) and body[n + 1].level > marker.level  # answered by the questions below it
        if len(built.sections) == before and marker.question and not deeper:
            built.empty.append(marker.text)
        if rule is not None:
            built.add(("Closing note",), 0, rule + 1, end, answer=False)
    return built


def _paragraph_sections(lines: list[str], start: int, end: int) -> Iterator[Section]:
    """Sections for a file without headings: one per paragraph (blank-line separated)."""
    i = start
    n = 0
    while i < end:
        while i < end and not lines[i].strip():
            i += 1
        j = i
        while j < end and lines[j].strip():
            j += 1
        if j > i:
            n += 1
            yield Section((f"Paragraph {n}",), 0, i + 1, j, "\n".join(lines[i:j]))
        i = j


def _layout(markers: list[Marker]) -> str:
    kinds = [m.kind for m in markers if m.question]
    if not kinds:
        return "headings, no questions" if markers else "paragraphs"
    if not any(m.kind == "heading" and m.question for m in markers) and any(m.kind == "heading" for m in markers):
        kinds.insert(0, "heading")
    return ", ".join(_LAYOUTS[k] for k in dict.fromkeys(kinds))


def _warnings(sections: list[Section], questions: int, empty: list[str], boilerplate: list[tuple[int, int]],
              layout: str) -> list[str]:
    found = []
    if not questions:
        found.append("no questions found: indexed " + ("paragraph by paragraph" if layout == "paragraphs"
                                                       else "section by section"))
    if len(sections) == 1:
        found.append("parsed into a single section")
    found.extend(f"question without an answer: {q}" for q in empty)
    if boilerplate:
        found.append("template text left out: lines " + ", ".join(f"{a}-{b}" for a, b in boilerplate))
    return found


def parse_text(text: str, source: str, sha256: str = "", fmt: str = "markdown",
               pages: tuple[int, ...] = ()) -> Interview:
    """Parse interview text into an Interview; `source` is the corpus-relative path."""
    lines = text.splitlines()
    fm_end = front_matter_end(lines)
    front = front_matter(lines, fm_end) if fm_end else {}
    title = front.get("title")
    markers = find_markers(lines, fm_end)

    # The title is the first heading when it is level 1 or reads "<Project> Adopter Interview - <Adopter>".
    title_idx: int | None = None
    first = markers[0] if markers else None
    if first and first.kind == "heading" and (first.level == 1 or names.TITLE.match(first.text)):
        title_idx = 0
        title = first.text
    body = [m for n, m in enumerate(markers) if n != title_idx]
    preamble_start = markers[title_idx].next if title_idx is not None else fm_end
    plain_title = _title_line(lines, fm_end) if title_idx is None and (not body or body[0].line > fm_end) else None
    if plain_title is not None:
        title = title or clean_inline(lines[plain_title])
        preamble_start = plain_title + 1
    preamble_end = body[0].line if body else len(lines)
    meta = names.read_meta(lines[preamble_start:preamble_end])
    path = Path(source)
    project, adopter = names.resolve_names(front, title, meta, path, text)

    interviewee = front.get("interviewee") or meta.interviewee or names.attendees_of(meta.attendees, adopter)
    if any(m.kind == "turn" for m in body) and not interviewee:
        who = speakers(lines, fm_end)
        interviewee = who.interviewees() if who else None

    if not body:
        sections = list(_paragraph_sections(lines, preamble_start, len(lines)))
        built = None
    else:
        built = _build_sections(lines, body, (preamble_start, preamble_end))
        sections = built.sections
    layout = _layout(body)
    questions = sum(1 for m in body if m.question)
    boiler = built.boilerplate if built else []
    warnings = _warnings(sections, questions, built.empty if built else [], boiler, layout)
    return Interview(source=source, project=project, adopter=adopter, title=title or path.stem,
                     interviewee=interviewee, date=front.get("date") or meta.date, sha256=sha256,
                     lines=tuple(lines), sections=tuple(sections), format=fmt, layout=layout,
                     boilerplate=tuple(boiler), warnings=tuple(warnings), pages=pages)


def parse_file(path: Path, corpus_dir: Path, max_bytes: int | None = None, warn: bool = True) -> Interview:
    """Read and parse one interview file of any supported format; raise CorpusError if it cannot be used (or
    is over `max_bytes`). With `warn`, a file without questions or in one section is logged, by name
    (`index_warnings`)."""
    found = extract(path, max_bytes)
    source = relative_source(path, corpus_dir)
    try:
        interview = parse_text(found.text, source, found.sha256, found.format, found.pages)
    except CorpusError as exc:
        raise CorpusError(f"{path}: {exc}") from exc
    if not interview.sections:
        raise CorpusError(f"{path}: no text to index")
    if warn:
        for warning in index_warnings(interview):
            logger.warning("%s: %s", source, warning)
    return interview


def index_warnings(interview: Interview) -> list[str]:
    """The warnings a build names a file for: no questions found, or the whole file in one section."""
    return [w for w in interview.warnings if w.startswith(("no questions", "parsed into a single"))]

