"""Where an interview's questions are, whatever their form: headings, numbered or `Q1.` lines, emphasised lines,
`Q:` lines, list items or paragraphs ending in "?", or a speaker's turns in a transcript.

The strong forms (a heading, a numbered, `Q`-prefixed or wholly emphasised line) are always questions. In a file
without any, a transcript's speaker turns are looked for next, and only then the weak forms (a bulleted item or a
bare paragraph ending in "?"): in a file with strong questions, a "?" list item is part of an answer."""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from bot.ingest.files import CorpusError
from bot.ingest.markup import MAX_HEADING_CHARS, blank, clean_inline, heading_text
from bot.ingest.turns import find_turns

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_FENCE = re.compile(r"^\s*(?:```|~~~)")
# A whole line in emphasis ending in "?" ("_Why did you pick it?_"), or in bold with a few words after the "?"
# ("**What version do you run? (not shared)**").
_EMPH_QUESTION = re.compile(r"^\s*(\*\*|__|_|\*)(?P<q>[^*_\s].{8,}?\?)\1\s*$")
_BOLD_QUESTION = re.compile(r"^\s*(\*\*|__)(?P<q>[^*_\s][^*]{8,}?\?[^*?]{1,80}?)\1\s*$")
# A numbered question at the left margin ("3. What drew you to the project?"); its answer follows, indented or not.
_NUMBERED_QUESTION = re.compile(r"^(?:\*\*)?\d{1,2}[.)]\s+(?P<q>[^\s?].*?\?.*?)\s*$")
# "Q1. …", "Q: …", "**Question 3:** …": the prefix says it is a question, with or without a "?".
_Q_PREFIX = re.compile(r"^\s*(?:[-*]\s+)?(?:\*\*|__)?(?:Q|[Qq]uestion)(?:\s*\d{1,3})?\s*[.:)](?:\*\*|__)?\s+"
                       r"(?P<q>\S.*)$")
# A question in emphasis spread over a few lines: "_What is your perception in terms of the project's:" ...
# "Maintainer response_" (the opening mark starts a line, the same mark ends a later one, no blank between).
_EMPH_OPEN = re.compile(r"^\s*(?P<mark>_|\*)(?![*_\s])(?P<q>.*\S)\s*$")
MAX_SPREAD_LINES = 8
_LIST_QUESTION = re.compile(r"^[-*+•]\s+(?P<q>\S.{7,}\?)[\s*_]*$")
_PARAGRAPH_QUESTION = re.compile(r"^(?P<q>[A-Z¿\"“(*_].{7,}\?)[\s*_)\"”]*$")
# What a heading or question may start with that is numbering, not words: "1. ", "2) ", "Q3: ", "Question 4 - ".
_NUMBER_PREFIX = re.compile(r"^\d{1,3}[.)]\s+(?=\S)")
_Q_NUMBER_PREFIX = re.compile(r"^(?:Q|[Qq]uestion)\s*\d{0,3}\s*[.:)\-–]?\s+(?=\S)")
_QUESTION_START = re.compile(
    r"^(?:what|how|why|when|where|which|who|whom|whose|do|does|did|is|are|was|were|can|could|would|will|should|"
    r"has|have|had|please|describe|tell|explain)\b", re.IGNORECASE)
# Forms whose question needs no "?" (a "Q:" line) but which a lone line in an answer could fake: they count from
# two lines of the form on.
_MIN_PREFIXED = 2
MAX_WEAK_QUESTION_CHARS = 300


@dataclass(frozen=True)
class Marker:
    """A heading or question: where a section starts."""

    line: int  # 0-based line of the heading or question
    level: int  # heading depth; a question that is not a heading sits one level below the last heading
    text: str  # the heading or question, markup and numbering removed
    kind: str  # "heading", "numbered", "emphasis", "prefixed", "list", "paragraph", "turn"
    question: bool  # the text asks something (an answer follows)
    next: int  # 0-based first line of the body (after the heading, or after a question spread over lines)


def question_like(text: str) -> bool:
    """A heading that asks something: it has a "?" or starts like a question ("What is your perception …:")."""
    return "?" in text or bool(_QUESTION_START.match(text))


def _strip_numbering(text: str, question: bool) -> str:
    """ "1. How long …?" -> "How long …?"; "Q3: Why?" -> "Why?" (a "Q3" before a non-question is kept: "Q3 plans")."""
    stripped = _NUMBER_PREFIX.sub("", text, count=1)
    if question:
        stripped = _Q_NUMBER_PREFIX.sub("", stripped, count=1)
    return stripped or text


def _heading(lines: list[str], i: int, raw: str, level: int) -> Marker:
    text = clean_inline(raw)
    bare = re.fullmatch(r"(?:(?:Q|[Qq]uestion)\s*)?\d{1,3}[.):]?", text)
    if bare:
        # "#### 1." with the question on the next line: the question is that line.
        j = i + 1
        while j < len(lines) and j <= i + 2 and not lines[j].strip():
            j += 1
        if j < len(lines) and lines[j].strip() and len(lines[j]) <= MAX_HEADING_CHARS and not _HEADING.match(lines[j]):
            text = clean_inline(lines[j])
            return Marker(i, level, text, "heading", question_like(text), j + 1)
    text = _strip_numbering(text, "?" in text)
    return Marker(i, level, text, "heading", question_like(text), i + 1)


def _strong_question(line: str, prefixed_ok: bool) -> tuple[str, str] | None:
    """(question, kind) when `line` is a question by its form alone."""
    m = _NUMBERED_QUESTION.match(line)
    if m:
        return clean_inline(m.group("q")), "numbered"
    m = _Q_PREFIX.match(line)
    if m and (prefixed_ok or "?" in m.group("q")):
        return clean_inline(m.group("q")), "prefixed"
    m = _EMPH_QUESTION.match(line) or _BOLD_QUESTION.match(line)
    if m:
        return _strip_numbering(clean_inline(m.group("q")), True), "emphasis"
    return None


def _spread_emphasis(lines: list[str], i: int) -> tuple[str, int] | None:
    """(question, its last line) when line `i` opens an emphasised question that closes on a later line."""
    m = _EMPH_OPEN.match(lines[i])
    if not m or m.group("q").endswith(m.group("mark")):
        return None
    mark = m.group("mark")
    parts = [m.group("q")]
    for j in range(i + 1, min(len(lines), i + MAX_SPREAD_LINES)):
        line = lines[j].strip()
        if not line or _HEADING.match(line):
            return None
        if line.endswith(mark) and not line.endswith(mark * 2) and mark not in line[:-1]:
            parts.append(line[:-1])
            text = clean_inline(" ".join(p.strip() for p in parts))
            return (text, j) if question_like(text) else None
        if mark in line:
            return None  # emphasis opened or closed inside a line: not one spread question
        parts.append(line)
    return None


def _has_answer(lines: list[str], start: int, end: int) -> bool:
    return any(not blank(line) for line in lines[start:end])


def _level_below(headings: list[Marker], heading_lines: list[int], i: int) -> int:
    """The level for a question at line `i` that is not a heading: one below the last heading before it."""
    k = bisect_left(heading_lines, i)
    return min((headings[k - 1].level if k else 0) + 1, 7)


def _weak_questions(lines: list[str], start: int, headings: list[Marker], fenced: set[int]) -> list[Marker]:
    """List items and bare paragraphs ending in "?" that are followed by an answer."""
    found: list[tuple[int, str, str]] = []
    for i in range(start, len(lines)):
        line = lines[i]
        if i in fenced or len(line) > MAX_WEAK_QUESTION_CHARS or not line.strip():
            continue
        m = _LIST_QUESTION.match(line)
        if m:
            found.append((i, clean_inline(m.group("q")), "list"))
            continue
        opens_paragraph = i == start or blank(lines[i - 1]) or bool(_HEADING.match(lines[i - 1]))
        m = _PARAGRAPH_QUESTION.match(line) if opens_paragraph and not _HEADING.match(line) else None
        if m:
            found.append((i, clean_inline(m.group("q")), "paragraph"))
    heading_lines = [h.line for h in headings]
    kept: list[Marker] = []
    for n, (i, text, kind) in enumerate(found):
        k = bisect_left(heading_lines, i)
        stop = min(found[n + 1][0] if n + 1 < len(found) else len(lines),
                   heading_lines[k] if k < len(heading_lines) else len(lines))
        if _has_answer(lines, i + 1, stop):  # "?" items in a row are a list of questions asked, not questions
            kept.append(Marker(i, _level_below(headings, heading_lines, i), text, kind, True, i + 1))
    return kept


def find_markers(lines: list[str], start: int) -> list[Marker]:
    """Every heading and question of `lines` from `start` on, in order.

    Raises CorpusError for a markdown heading longer than MAX_HEADING_CHARS (no real heading is)."""
    headings: list[Marker] = []
    candidates: list[tuple[int, str]] = []  # lines that may be strong questions, judged once all are counted
    fenced: set[int] = set()
    in_fence = False
    prefixed = 0
    for i in range(start, len(lines)):
        line = lines[i]
        if _FENCE.match(line):
            in_fence = not in_fence
            fenced.add(i)
            continue
        if in_fence:
            fenced.add(i)
            continue
        m = _HEADING.match(line)
        if m:
            raw = heading_text(m.group(2))
            if len(raw) > MAX_HEADING_CHARS:
                raise CorpusError(f"line {i + 1:,} is a heading of {len(raw):,} characters "
                                  f"(at most {MAX_HEADING_CHARS:,})")
            headings.append(_heading(lines, i, raw, len(m.group(1))))
            continue
        if len(line) > MAX_HEADING_CHARS:
            continue  # a paragraph, not a question
        if _Q_PREFIX.match(line):
            prefixed += 1
        candidates.append((i, line))
    # A heading that swallowed its question line leaves that line out of the candidates.
    swallowed = {j for h in headings for j in range(h.line + 1, h.next)}
    markers = list(headings)
    heading_lines = [h.line for h in headings]
    questions: list[Marker] = []
    spread_to = -1
    for i, line in candidates:
        if i in swallowed or i <= spread_to:
            continue
        spread = _spread_emphasis(lines, i) if not headings or headings[0].line < i else None
        if spread is not None:
            spread_to = spread[1]
            questions.append(Marker(i, _level_below(headings, heading_lines, i), spread[0], "emphasis", True,
                                    spread_to + 1))
            continue
        q = _strong_question(line, prefixed >= _MIN_PREFIXED)
        # A whole-line question acts as a heading one level below the last one; before the first heading of a
        # file that has headings it is preamble text.
        if q and (not headings or headings[0].line < i):
            questions.append(Marker(i, _level_below(headings, heading_lines, i), q[0], q[1], True, i + 1))
    if not questions and not any(h.question for h in headings):
        last = max((h.level for h in headings), default=0)
        questions = [Marker(t.line, min(last + 1, 7), t.question, "turn", True, t.next)
                     for t in find_turns(lines, start)]
    if not questions and not any(h.question for h in headings):
        questions = _weak_questions(lines, start, headings, fenced | swallowed)
    markers.extend(questions)
    markers.sort(key=lambda m: m.line)
    return markers
