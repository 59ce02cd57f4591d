"""The points an answer lists, for a follow-up that picks one by its place ("say more about the second one").

An answer about one adopter often lists things: a passage that is a list ("- Dependency on Knative ...",
"- Limited number of active maintainers ...") or a quoted sentence that enumerates them ("Two main factors drew
us to OpenFGA: multi-tenancy and storage."). Its points are, in order: the enumeration after a colon in the
quote, else the list items of the quoted passage. Both are read from the layout of the text (list markers,
a colon, commas and "and"/"or"), not from any word of a corpus.
"""

from __future__ import annotations

import re

from bot.ingest.text import raw_words

# A list item at the start of a line: "- ", "* ", "+ ", "• ", "1. ", "2) ".
_ITEM = re.compile(r"^[ \t]*(?:[-*+\u2022]|\d{1,3}[.)])[ \t]+(.+?)\s*$", re.MULTILINE)
# "...: a, b and c." - what follows the last colon of a sentence, up to its end.
_AFTER_COLON = re.compile(r":\s*([^:]+?)\s*[.?!]*\s*$")
_COMMAS = re.compile(r"\s*[,;]\s*")
_AND = re.compile(r"\s+(?:and|or)\s+", re.IGNORECASE)
MAX_POINTS = 8  # more parts than this is a sentence with commas, not a list of points
MAX_POINT_WORDS = 12  # an enumerated point is a phrase ("multi-tenancy"), not a clause
# Two points joined by "and" alone ("multi-tenancy and storage") are short: a longer "x and y" is one clause.
MAX_PAIR_WORDS = 4
_MARKUP = re.compile(r"[*_`]+")


def answer_points(quote: str, passage: str) -> tuple[str, ...]:
    """The points of an answer whose first citation quotes `quote` from `passage` (empty when it lists none)."""
    enumerated = _enumeration(quote)
    if enumerated:
        return enumerated
    items = tuple(_clean(m.group(1)) for m in _ITEM.finditer(passage))
    items = tuple(i for i in items if i)
    return items if len(items) >= 2 else ()


def _enumeration(quote: str) -> tuple[str, ...]:
    """"Two main factors drew us to OpenFGA: multi-tenancy and storage." -> ("multi-tenancy", "storage")."""
    for sentence in re.split(r"(?<=[.?!])\s+", quote.strip()):
        m = _AFTER_COLON.search(sentence)
        if not m:
            continue
        parts = _split(m.group(1))
        longest = MAX_POINT_WORDS if re.search(r"[,;]", m.group(1)) else MAX_PAIR_WORDS
        if 2 <= len(parts) <= MAX_POINTS and all(len(raw_words(p)) <= longest for p in parts):
            return tuple(_clean(p) for p in parts)
    return ()


def _split(text: str) -> list[str]:
    """"a, b and c" / "a and b" / "either a and b, or c": commas part the points when there are any (an "and"
    then joins only the last two), else "and"/"or" does."""
    parts = [p for p in _COMMAS.split(text) if p]
    if len(parts) == 1:
        parts = _AND.split(parts[0])
    else:
        parts = [re.sub(r"^(?:and|or)\s+", "", p, flags=re.IGNORECASE) for p in parts]
        parts[-1:] = _AND.split(parts[-1], maxsplit=1) if not text.rstrip().endswith(",") else parts[-1:]
    return [re.sub(r"^(?:either|both|neither)\s+", "", p.strip(" ."), flags=re.IGNORECASE) for p in parts if p.strip(" .")]


def _clean(text: str) -> str:
    """A point as it reads in a question: emphasis and list punctuation removed (capitals kept: names)."""
    return _MARKUP.sub("", text).strip(" .;,")
