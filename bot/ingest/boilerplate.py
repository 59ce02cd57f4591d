"""Template boilerplate: text that is about the interview itself (what the template is for, what interviewers
should say, how answers will be handled), not an answer to anything.

Recognised by where it stands and what it talks about: only prose outside any answer (before the first
question, in a group's introduction before its first question, after a rule that closes the file) is looked
at, and a paragraph there is template text when it speaks of the interview,
the template, the questions or the interviewers themselves. The paragraphs of prose that follow it, up to a
list, table or metadata line, go with it: an introduction's second paragraph rarely repeats the subject."""

from __future__ import annotations

import re

from bot.ingest.markup import MAX_HEADING_CHARS, paragraphs

# The interview speaking of itself: "this template", "these interviews", "the following set of questions",
# "the CNCF TOC Adopter Interview", "interviewers", or a note that opens with "Interview …". ("the questions"
# alone is not enough: answers say "they answered the questions".)
_SELF_REFERENCE = re.compile(
    r"\b(?:this|these|following)\s+(?:[\w’'-]{1,40}\s+){0,4}?(?:interviews?|templates?|questionnaires?|surveys?"
    r"|questions)\b"
    r"|\bthe\s+(?:[\w’'-]{1,40}\s+){0,4}?(?:interviews?|templates?|questionnaires?)\b"
    r"|\binterviewers?\b|^\W*(?:interview|template)\b",
    re.IGNORECASE,
)
# A line that is not prose: a list item, a table row, a heading, or a short "Key: value" metadata line.
_NOT_PROSE = re.compile(r"^\s*(?:[-*+•]\s|\d{1,3}[.)]\s|\||#)")
_META_LINE = re.compile(r"^\s*(?:\*\*|__)?(?P<key>[^\W\d_][\w/&.'’-]*(?:\s+[\w/&.'’-]+){0,2})\s*(?:\*\*|__)?\s*:"
                        r"(?:\*\*|__)?(?P<value>.*)$")
_MAX_META_VALUE = 120
# Prose longer than this is read only at its start: a cue is in an introduction's first sentences.
_LOOK_CHARS = 2000


def _is_prose(first_line: str) -> bool:
    if _NOT_PROSE.match(first_line):
        return False
    m = _META_LINE.match(first_line[:MAX_HEADING_CHARS])
    return not (m and len(m.group("value").strip()) <= _MAX_META_VALUE)


def speaks_of_the_interview(text: str) -> bool:
    """True when a paragraph talks about the interview, its template, questions or interviewers."""
    return bool(_SELF_REFERENCE.search(" ".join(text[:_LOOK_CHARS].split())))


def boilerplate_spans(lines: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """The 0-based half-open spans of [start, end) that are template text (see the module docstring)."""
    spans: list[tuple[int, int]] = []
    run_start: int | None = None
    run_end = start
    for a, b in paragraphs(lines, start, end):
        prose = _is_prose(lines[a])
        if run_start is not None and prose:
            run_end = b  # the introduction goes on
            continue
        if run_start is not None:
            spans.append((run_start, run_end))
            run_start = None
        if prose and speaks_of_the_interview("\n".join(lines[a:b])):
            run_start, run_end = a, b
    if run_start is not None:
        spans.append((run_start, run_end))
    return spans
