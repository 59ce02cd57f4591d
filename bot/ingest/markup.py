"""Markdown markup the parser reads through: inline emphasis and escapes, front matter, paragraphs, rules."""

from __future__ import annotations

import re

# Headings, questions and metadata lines longer than this are not structure: a markdown heading this long makes
# the file unusable (CorpusError), a longer "question" or "Interviewee:" line is body text. The longest heading
# in the shared corpus has 311 characters; the cap also bounds the regexes run on titles and headings.
MAX_HEADING_CHARS = 1000

_RULE = re.compile(r"[-*_=]{3,}")
_LINK = re.compile(r"\[([^\[\]]{1,200})\]\([^()\s]{1,500}\)")


def heading_text(raw: str) -> str:
    """A markdown heading's text without its closing "#"s and surrounding space (what `(.*?)\\s*#*\\s*$` kept).

    Done in Python: as a regex, `(.*?)\\s*#*\\s*$` took cubic time on a run of spaces (a 2,000-space heading
    line took 23 s)."""
    return raw.rstrip().rstrip("#").rstrip()


def clean_inline(text: str) -> str:
    """Strip markdown escapes, emphasis and surrounding space from a heading or meta value."""
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|~>])", r"\1", text)  # Google Docs exports escape "-" and ")"
    text = re.sub(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1(?![A-Za-z0-9])", r"\2", text)
    return re.sub(r"^[*_\s]+|[*_\s]+$", "", text).strip(":").strip()


def plain(text: str) -> str:
    """`clean_inline` plus links reduced to their text: a name as a person would write it."""
    return clean_inline(_LINK.sub(r"\1", text))


def is_rule(line: str) -> bool:
    """A horizontal rule (`---`, `***`, `___`) or a setext underline."""
    return bool(_RULE.fullmatch(line.strip()))


def blank(line: str) -> bool:
    """An empty line or a rule: nothing to index."""
    return not line.strip() or is_rule(line)


def front_matter_end(lines: list[str]) -> int:
    """Number of leading lines taken by YAML front matter (0 if none)."""
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() in ("---", "..."):
                return i + 1
    return 0


def front_matter(lines: list[str], end: int) -> dict[str, str]:
    """The `key: value` lines of the front matter, keys lower-cased (no YAML library: only flat keys matter)."""
    found: dict[str, str] = {}
    for line in lines[1 : max(end - 1, 1)]:
        m = re.match(r"^([A-Za-z][\w -]{0,40}?)\s*:\s*(.+)$", line.strip()) if len(line) <= MAX_HEADING_CHARS else None
        if m:
            found.setdefault(m.group(1).strip().lower().replace("-", " ").replace("_", " "),
                             m.group(2).strip().strip("'\""))
    return found


def trim(lines: list[str], start: int, end: int) -> tuple[int, int] | None:
    """Shrink [start, end) (0-based) to drop blank and rule-only lines at both ends; None if nothing left."""
    while start < end and blank(lines[start]):
        start += 1
    while end > start and blank(lines[end - 1]):
        end -= 1
    return (start, end) if start < end else None


def paragraphs(lines: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """The blank-line (or rule) separated blocks of lines [start, end), as 0-based half-open spans."""
    spans: list[tuple[int, int]] = []
    i = start
    while i < end:
        while i < end and blank(lines[i]):
            i += 1
        j = i
        while j < end and not blank(lines[j]):
            j += 1
        if j > i:
            spans.append((i, j))
        i = j
    return spans
