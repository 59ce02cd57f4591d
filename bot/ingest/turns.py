"""Speaker turns ("Name: …" lines) of a transcript: the interviewer's questions and who else speaks.

The interviewer is the speaker who asks the most questions (turns with a "?"); each of their turns with a "?"
starts a question, answered by what follows up to their next one."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from bot.ingest.markup import MAX_HEADING_CHARS, blank, clean_inline

# "Lin Sun: …", "**Dan:** …", "[00:01:02] Speaker 2: …", "Ana (Acme): …". Up to four words of a name; the
# text after the colon must start on the same line.
_TURN = re.compile(
    r"^\s*(?:[\[(]?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?[\])]?\s+)?(?:\*\*|__)?"
    r"(?P<name>[^\W\d_][\w.'’-]{0,30}(?:[ \t][^\W_][\w.'’-]{0,30}){0,3})[ \t]*(?:\([^()]{1,60}\))?[ \t]*"
    r"(?:\*\*|__)?:(?:\*\*|__)?[ \t]+(?P<text>\S.*)$")
# Labels that say a role rather than name a person: not an interviewee's name.
_ROLE = re.compile(r"^(?:interviewer|interviewee|host|moderator|guest|speaker(?:\s*\d+)?|q|a|question|answer|"
                   r"adopter|toc|unknown)$", re.IGNORECASE)
_MIN_TURNS = 2  # turns per speaker, for two speakers at least
_MIN_SHARE = 0.4  # of the paragraphs, that start with a turn
MAX_QUESTION_CHARS = 300


@dataclass(frozen=True)
class QuestionTurn:
    """An interviewer's turn that asks something."""

    line: int  # 0-based first line of the turn
    next: int  # 0-based line after the turn's own lines
    question: str
    speaker: str


@dataclass(frozen=True)
class Speakers:
    """Who speaks in a transcript."""

    interviewer: str
    others: tuple[str, ...]  # in order of first turn

    def interviewees(self) -> str | None:
        """The other speakers who are named, not labelled by role."""
        names = [s for s in self.others if not _ROLE.match(s)]
        return "; ".join(names) or None


def _turns(lines: list[str], start: int) -> list[tuple[int, str, str]]:
    """(0-based line, speaker, text) of every line that opens a turn."""
    found = []
    for i in range(start, len(lines)):
        line = lines[i]
        if len(line) > MAX_HEADING_CHARS * 20 or ":" not in line[:120]:
            continue
        m = _TURN.match(line[:MAX_HEADING_CHARS * 20])
        if m and not m.group("name")[0].islower():
            found.append((i, " ".join(m.group("name").split()), m.group("text")))
    return found


def _speakers(lines: list[str], start: int) -> tuple[list[tuple[int, str, str]], Speakers] | None:
    """The turns of the people who speak (two or more, each at least twice), or None when this is no transcript."""
    turns = _turns(lines, start)
    counts = Counter(name for _, name, _ in turns)
    speaking = {name for name, n in counts.items() if n >= _MIN_TURNS}
    turns = [t for t in turns if t[1] in speaking]
    paragraphs = sum(1 for i in range(start, len(lines)) if not blank(lines[i]) and (i == start or blank(lines[i - 1])))
    if len(speaking) < 2 or len(turns) < _MIN_SHARE * max(paragraphs, 1):
        return None
    asks = Counter(name for _, name, text in turns if "?" in text)
    if not asks:
        return None
    order = list(dict.fromkeys(name for _, name, _ in turns))
    interviewer = max(order, key=lambda name: (asks[name], -order.index(name)))
    return turns, Speakers(interviewer, tuple(n for n in order if n != interviewer))


def speakers(lines: list[str], start: int = 0) -> Speakers | None:
    """Who speaks, when `lines` are a transcript of speaker turns."""
    found = _speakers(lines, start)
    return found[1] if found else None


def _question_text(text: str) -> str:
    """The asking part of a turn: from its first sentence with a "?" ("Thanks. So why Knative?" -> "So why
    Knative?"), at most MAX_QUESTION_CHARS."""
    sentences = re.split(r"(?<=[.!?…])\s+", " ".join(text.split()))
    k = next((n for n, s in enumerate(sentences) if "?" in s), 0)
    asked = clean_inline(" ".join(sentences[k:]))
    return asked if len(asked) <= MAX_QUESTION_CHARS else "…" + asked[-MAX_QUESTION_CHARS:].split(" ", 1)[-1]


def find_turns(lines: list[str], start: int) -> list[QuestionTurn]:
    """The interviewer's question turns, when `lines` are a transcript; else []."""
    found = _speakers(lines, start)
    if not found:
        return []
    turns, who = found
    asked: list[QuestionTurn] = []
    for n, (i, name, text) in enumerate(turns):
        if name != who.interviewer:
            continue
        # A turn goes on over the lines after it, up to a blank line or the next turn.
        end = turns[n + 1][0] if n + 1 < len(turns) else len(lines)
        j = i + 1
        while j < end and not blank(lines[j]):
            j += 1
        whole = " ".join([text, *(lines[k].strip() for k in range(i + 1, j))])
        if "?" in whole:
            asked.append(QuestionTurn(i, j, _question_text(whole), name))
    return asked
