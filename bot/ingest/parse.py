"""Parse an interview's text into metadata plus sections with 1-based line spans."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from bot.ingest.files import CorpusError, read_text, relative_source

logger = logging.getLogger(__name__)

# The heading text's trailing "  ##  " is cut off in Python (`_heading_text`): as a regex, `(.*?)\s*#*\s*$` took
# cubic time on a run of spaces (a 2,000-space heading line took 23 s).
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
# Headings, questions and metadata lines longer than this are not structure: a markdown heading this long makes
# the file unusable (CorpusError), a longer "question" or "Interviewee:" line is body text. The longest heading
# in the shared corpus has 311 characters; the cap also bounds the regexes run on titles and headings.
MAX_HEADING_CHARS = 1000
_EMPH_QUESTION = re.compile(r"^\s*(\*\*|__|_|\*)(?P<q>[^*_\s].{8,}?\?)\1\s*$")
# "<Project> Adopter Interview - <Adopter>" and "<Project> - Adopter Interview Questions (<Adopter>)".
# "\s*[-–—:]?\s+" written as two alternatives matches the same text without the cubic backtracking of two
# adjacent whitespace runs.
_TITLE = re.compile(
    r"^(?P<project>.+?)(?:\s*[-–—:]\s+|\s+)adopter\s+interview(?:\s+questions)?\s*"
    r"(?:[-–—:]\s*(?P<adopter>.+?)|\((?P<adopter_paren>[^()]+)\))\s*$", re.IGNORECASE
)
# A numbered question at the left margin ("3. What drew you to the project?"); its answer follows, indented.
_NUMBERED_QUESTION = re.compile(r"^(?:\*\*)?\d{1,2}[.)]\s+(?P<q>[^\s?].*?\?.*?)\s*$")
# Words that name an anonymised adopter ("Adopter 4"): their number is part of the name, not an interview count.
_GENERIC_ADOPTER = re.compile(r"^(?:adopter|company|organi[sz]ation|org|user|customer|end[- ]user)$", re.IGNORECASE)
_META = re.compile(
    r"^\s*[-*]?\s*(?:\*\*)?(?P<key>interviewees?|interview\s+date|meeting\s+time|date)\s*:?\s*(?:\*\*)?\s*:?\s*(?P<value>.*)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Section:
    """One heading and the text under it (up to the next heading)."""

    path: tuple[str, ...]  # heading titles from the top section down to this heading
    heading_line: int  # 1-based line of the heading (0 for text before any heading)
    line_start: int  # 1-based first line of the body
    line_end: int  # 1-based last line of the body
    body: str  # the body lines, verbatim, joined with "\n"


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
    lines: tuple[str, ...]
    sections: tuple[Section, ...] = field(default_factory=tuple)


def _heading_text(raw: str) -> str:
    """A markdown heading's text without its closing "#"s and surrounding space (what `(.*?)\\s*#*\\s*$` kept)."""
    return raw.rstrip().rstrip("#").rstrip()


def _clean_inline(text: str) -> str:
    """Strip markdown escapes, emphasis and surrounding space from a heading or meta value."""
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|~>])", r"\1", text)  # Google Docs exports escape "-" and ")"
    text = re.sub(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1(?![A-Za-z0-9])", r"\2", text)
    return re.sub(r"^[*_\s]+|[*_\s]+$", "", text).strip(":").strip()


def _display_name(name: str, text: str) -> str:
    """A project name spelled as the interview spells it inside sentences: "cubefs" (a file name) -> "CubeFS",
    "confidential-containers" (a folder) -> "Confidential Containers", "KNative" (a title) -> "Knative".

    Only mid-sentence uses count (a sentence or heading may capitalise any word), and a capitalised spelling
    beats an all-lower-case one, which may be the common noun ("buildpacks") rather than the name.
    """
    spellings: dict[str, int] = {}
    pattern = r"[-\s]".join(re.escape(part) for part in re.split(r"[-\s]+", name.strip()))  # "a-b" also "a b"
    for m in re.finditer(rf"(?<=[\w,;:)] ){pattern}(?![\w-])", text, re.IGNORECASE):
        spellings[m.group(0)] = spellings.get(m.group(0), 0) + 1
    if not spellings:
        return name.strip().replace("-", " ").title() if name == name.lower() else name.strip()
    return max(spellings.items(), key=lambda kv: (kv[0] != kv[0].lower(), kv[1]))[0]


def _adopter_name(raw: str) -> str:
    """The adopter named in a title: "Bloomberg 2" (the second interview of Bloomberg) -> "Bloomberg";
    "Adopter 4" stays as it is, since there the number is the name."""
    raw = raw.strip()
    m = re.match(r"^(?P<name>.+?)\s+#?\d{1,2}$", raw)
    if m and not _GENERIC_ADOPTER.match(m.group("name")):
        return m.group("name")
    return raw


def _names_from_title(title: str) -> tuple[str | None, str | None]:
    """(project, adopter) from a title or file stem that follows one of the `_TITLE` shapes."""
    m = _TITLE.match(title)
    if not m:
        return None, None
    return m.group("project").strip(" -–—:"), _adopter_name(m.group("adopter") or m.group("adopter_paren"))


def _names_from_filename(path: Path) -> tuple[str | None, str | None]:
    m = re.match(r"^(?P<p>.+?)-adopter-interview-(?P<a>.+)$", path.stem, re.IGNORECASE)
    if m:
        return m.group("p"), m.group("a").replace("-", " ").strip().title()
    return _names_from_title(_clean_inline(path.stem))


def _front_matter_end(lines: list[str]) -> int:
    """Number of leading lines taken by YAML front matter (0 if none)."""
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() in ("---", "..."):
                return i + 1
    return 0


def _front_matter_title(lines: list[str], end: int) -> str | None:
    for line in lines[1 : max(end - 1, 1)]:
        m = re.match(r"^title\s*:\s*(.+)$", line.strip(), re.IGNORECASE)
        if m:
            return m.group(1).strip().strip("'\"")
    return None


def _trim(lines: list[str], start: int, end: int) -> tuple[int, int] | None:
    """Shrink [start, end) (0-based) to drop blank and rule-only lines at both ends; None if nothing left."""
    def blank(s: str) -> bool:
        t = s.strip()
        return not t or bool(re.fullmatch(r"[-*_=]{3,}", t))

    while start < end and blank(lines[start]):
        start += 1
    while end > start and blank(lines[end - 1]):
        end -= 1
    return (start, end) if start < end else None


def parse_text(text: str, source: str, sha256: str = "", folder: str | None = None) -> Interview:
    """Parse interview markdown into an Interview; `source` is the corpus-relative path."""
    lines = text.splitlines()
    fm_end = _front_matter_end(lines)
    title = _front_matter_title(lines, fm_end) if fm_end else None

    headings: list[tuple[int, int, str]] = []  # (0-based line, level, text)
    last_level = 1
    for i in range(fm_end, len(lines)):
        m = _HEADING.match(lines[i])
        if m:
            raw = _heading_text(m.group(2))
            if len(raw) > MAX_HEADING_CHARS:
                raise CorpusError(f"line {i + 1:,} is a heading of {len(raw):,} characters "
                                  f"(at most {MAX_HEADING_CHARS:,})")
            last_level = len(m.group(1))
            headings.append((i, last_level, _clean_inline(raw)))
            continue
        if len(lines[i]) > MAX_HEADING_CHARS:
            continue  # a paragraph, not a question
        q = _EMPH_QUESTION.match(lines[i]) or _NUMBERED_QUESTION.match(lines[i])
        if q and headings:
            # A whole-line italic or bold question, or a numbered one at the margin, acts as a heading one level
            # below the last one.
            headings.append((i, min(last_level + 1, 7), _clean_inline(q.group("q"))))

    # The title is the first heading when it is level 1 or reads "<Project> Adopter Interview - <Adopter>".
    title_idx: int | None = None
    if headings and (headings[0][1] == 1 or _TITLE.match(headings[0][2])):
        title_idx = 0
        title = headings[0][2]

    project = adopter = None
    if title:
        project, adopter = _names_from_title(title)
    path = Path(source)
    if not project or not adopter:
        fp, fa = _names_from_filename(path)
        project = project or fp or path.parent.name or None
        adopter = adopter or fa or path.stem
    # Titles disagree ("KNative", "In-toto"): the spelling the interview uses most often wins.
    project = _display_name(project, text) if project else "Unknown"
    title = title or path.stem

    body_headings = [h for n, h in enumerate(headings) if n != title_idx]
    preamble_start = headings[title_idx][0] + 1 if title_idx is not None else fm_end
    preamble_end = body_headings[0][0] if body_headings else len(lines)

    interviewee, date = _preamble_meta(lines[preamble_start:preamble_end])

    sections: list[Section] = []
    if not body_headings:
        sections.extend(_paragraph_sections(lines, preamble_start, len(lines), title))
    else:
        span = _trim(lines, preamble_start, preamble_end)
        if span:
            sections.append(Section(("Interview details",), 0, span[0] + 1, span[1],
                                    "\n".join(lines[span[0] : span[1]])))
        stack: list[tuple[int, str]] = []
        for n, (i, level, htext) in enumerate(body_headings):
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, htext))
            end = body_headings[n + 1][0] if n + 1 < len(body_headings) else len(lines)
            span = _trim(lines, i + 1, end)
            if span is None:
                continue
            sections.append(Section(tuple(t for _, t in stack), i + 1, span[0] + 1, span[1],
                                    "\n".join(lines[span[0] : span[1]])))

    return Interview(source=source, project=project, adopter=adopter, title=title,
                     interviewee=interviewee, date=date, sha256=sha256, lines=tuple(lines),
                     sections=tuple(sections))


def _list_after(lines: list[str], start: int) -> list[str]:
    """The list items (`-`/`*` bullets) right after line `start`, cleaned."""
    items = []
    for line in lines[start + 1 :]:
        m = re.match(r"^\s*[-*+]\s+(.+)$", line) if len(line) <= MAX_HEADING_CHARS else None
        if not m:
            if items or line.strip():
                break
            continue
        items.append(_clean_inline(m.group(1)))
    return items


def _preamble_meta(lines: list[str]) -> tuple[str | None, str | None]:
    """Interviewee(s) and date from the lines between the title and the first section."""
    interviewee = date = None
    # A file without headings is all preamble: only lines short enough to be metadata are looked at (`_META`'s
    # adjacent optional spaces are quadratic on a long run of them, and so is `_clean_inline` on emphasis).
    for n, line in enumerate(lines):
        m = _META.match(line) if len(line) <= MAX_HEADING_CHARS else None
        if m:
            key, value = m.group("key").lower(), _clean_inline(m.group("value"))
            if key.startswith("interviewee") and not interviewee:
                interviewee = value or "; ".join(_list_after(lines, n)) or None
            elif ("date" in key or "time" in key) and value and not date:
                date = value
    if interviewee is None:
        # Attendee lists name the adopter's people as "Adopter: Name, Role" or under an "Adopter:" line.
        adopters: list[str] = []
        for n, line in enumerate(lines):
            m = re.match(r"^\s*(?:[-*]\s*)?(?:\*\*)?adopter:?(?:\*\*)?:?\s*(.*)$", line, re.IGNORECASE)
            if m and len(line) <= MAX_HEADING_CHARS:
                value = _clean_inline(m.group(1))
                adopters.extend([value] if value else _list_after(lines, n))
        interviewee = "; ".join(adopters) or None
    return interviewee, date


def _paragraph_sections(lines: list[str], start: int, end: int, title: str) -> Iterator[Section]:
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


def parse_file(path: Path, corpus_dir: Path, max_bytes: int | None = None) -> Interview:
    """Read and parse one interview file; raise CorpusError if it cannot be used (or is over `max_bytes`)."""
    text, sha = read_text(path, max_bytes)
    try:
        interview = parse_text(text, relative_source(path, corpus_dir), sha)
    except CorpusError as exc:
        raise CorpusError(f"{path}: {exc}") from exc
    if not interview.sections:
        raise CorpusError(f"{path}: no text to index")
    return interview
