"""What kind of number a question asks for, and whether a passage states a number of that kind.

"What p99 latency does X see?" is not answered by a passage that gives X's request rate, nor "By what
percentage did X cut costs?" by one that says costs fell: a passage answers a question for a measurement only
when it states one of the asked kind (a duration with its unit, a percentage, a version number, a count of the
asked thing). The kinds are units and number shapes of English, not words of any corpus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.index.keyword import terms

# A number in digits or in words ("three official reviewers", "thousands of tenants"); "one" is left out: it is
# mostly not a count.
NUMBER = (r"(?:\d[\d,.]*\+?|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
          r"forty|fifty|hundreds?|thousands?|millions?|billions?|dozens?)")
_ANY_NUMBER = re.compile(rf"\b{NUMBER}", re.IGNORECASE)
_PERCENT = re.compile(r"\d\s*%|\bper\s?cent\b|\bpercentage\s+points?\b", re.IGNORECASE)
_DURATION = re.compile(r"\d[\d,.]*\s*(?:ms|µs|us|milliseconds?|microseconds?|secs?|seconds?|minutes?|mins?)\b",
                       re.IGNORECASE)
_VERSION = re.compile(r"\bv?\d+\.\d+(?:\.\d+)?\b|\bv\d+\b|\bversion\s+\d", re.IGNORECASE)
_MONEY = re.compile(r"[$€£¥]\s*\d|\d[\d,.]*\s*(?:k|m|million|billion)?\s*(?:dollars|usd|eur|euros?|gbp|rmb|yuan)\b",
                    re.IGNORECASE)
_RATIO = re.compile(r"\d\s*%|\bper\s?cent\b|\d[\d,.]*\s*(?:x|times)\b|\b(?:twice|double|half|halved|doubled|"
                    r"tripled)\b", re.IGNORECASE)

# A question that asks for a number, a version or a measurement: answered only where a passage states one.
ASKS_QUANTITY = re.compile(r"\b(?:how\s+(?:many|much|long|big|large|fast|often)|what\s+(?:percentage|share|number|"
                            r"version|release|level|latency|uptime|availability|size)|which\s+(?:version|release)|"
                            r"by\s+what|p\d\d|percent)\b", re.IGNORECASE)
# What kind of number, most specific first. "how many <thing>" is handled apart: its thing is read.
_ASKS = (
    ("rate", re.compile(r"\b(?:requests|queries|calls|checks|transactions|messages|events|builds|jobs)\s+(?:per|a|each)\s+"
                        r"(?:second|minute|hour|day)\b|\b(?:rps|qps|tps|throughput)\b", re.IGNORECASE)),
    ("percent", re.compile(r"\bpercent(?:age)?\b|%|\bwhat\s+share\b", re.IGNORECASE)),
    ("duration", re.compile(r"\blatency\b|\bp\d\d\b|\bresponse\s+times?\b", re.IGNORECASE)),
    # Uptime, not a release milestone ("when did it reach general availability?").
    ("percent", re.compile(r"\buptime\b|(?<!general )\bavailability\b", re.IGNORECASE)),
    ("money", re.compile(r"\bhow\s+much\s+(?:money|did\s+\w+\s+save)\b|\bsave[ds]?\s+per\s+year\b", re.IGNORECASE)),
    ("ratio", re.compile(r"\bhow\s+much\s+(?:faster|slower|cheaper|smaller|quicker|less|more)\b|\bby\s+how\s+much\b",
                         re.IGNORECASE)),
    ("version", re.compile(r"\b(?:which|what)\s+(?:[\w.-]+\s+){0,2}(?:version|release)\b", re.IGNORECASE)),
)
# "how many of Nutanix's people ...": a possessive is one word of the counted thing.
_HOW_MANY = re.compile(r"\bhow\s+many\s+((?:[\w'’-]+\s+){0,3}?[\w'’-]+?)(?=\s+(?:do|does|did|is|are|was|were|has|have|had|"
                       r"can|will|would|run|runs|use|uses|used|work|works|in|on|of|per|a|an|the|does|across|at|for|with|and)\b|\?|$)",
                       re.IGNORECASE)
# A rate: "250 RPS", "1.2k req/s", "10,000 requests per second", "40 builds a day".
_RATE = re.compile(rf"\b{NUMBER}\s*(?:k|m|million|thousand)?\s*(?:rps|qps|tps|req/s|/s\b|/sec|(?:[\w-]+\s+){{0,3}}"
                   r"(?:per|a|each)\s+(?:second|minute|hour|day|week|month|sec|min)\b)", re.IGNORECASE)
# The asking phrases counted one by one: more than one in a question and any number may answer it. Narrower
# than ASKS_QUANTITY, which only says whether a number is asked for ("by what", "p99" name no separate ask).
_ASKS_ANY = re.compile(r"\bhow\s+(?:many|much|long|big|large|fast|often)\b|\b(?:which|what)\s+(?:percentage|share|"
                       r"number|version|release|latency|uptime|availability|size)\b", re.IGNORECASE)
_SHAPES = {"rate": _RATE, "percent": _PERCENT, "duration": _DURATION, "version": _VERSION, "money": _MONEY, "ratio": _RATIO}
_WORD = re.compile(r"[\w%$€£¥.,+-]+")
# Counting people: any word for a person counts as the thing ("how many people ..." - "3 other members").
_PEOPLE = frozenset(terms("people persons engineers developers members maintainers contributors staff employees "
                          "users folks team teams"))
COUNT_BEFORE = 3  # "8,000 active customers": the number stands at most this many words before the counted thing
COUNT_AFTER = 2  # "customers: 8,000", "clusters (40)"


@dataclass(frozen=True)
class Measure:
    """A kind of number a question asks for: a named shape, or a count of `things` (stems)."""

    kind: str  # "rate", "percent", "duration", "version", "money", "ratio", "count" or "number" (any number)
    things: frozenset[str] = frozenset()


# What a question says it is "about" is its topic, not the measurement it asks for: "What does Adopter 4 say about
# throughput and latency for metrics?" asks for what was said, not for a rate or a duration.
_ABOUT = re.compile(r"\b(?:about|regarding|concerning)\b", re.IGNORECASE)


def asked_measure(question: str) -> Measure:
    """The kind of number `question` asks for ("number" when it asks for one of no particular kind, or for
    several: "How much storage and how many clients ..." is answered by either). Words after "about" are the
    question's topic and name no kind."""
    about = _ABOUT.search(question)
    if about:
        question = question[:about.start()]
    if len(_ASKS_ANY.findall(question)) > 1:
        return Measure("number")
    # A shape says more than the counted thing: "how many builds a day" asks for a rate.
    for kind, pattern in _ASKS:
        if pattern.search(question):
            return Measure(kind)
    many = _HOW_MANY.search(question)
    things = frozenset(terms(many.group(1))) if many else frozenset()
    if things:
        return Measure("count", things | _PEOPLE if things & _PEOPLE else things)
    return Measure("number")


def states(measure: Measure, text: str) -> bool:
    """True when `text` states a number of the asked kind."""
    shape = _SHAPES.get(measure.kind)
    if shape is not None:
        return bool(shape.search(text))
    if measure.kind == "count":
        return _counts(measure.things, text)
    return bool(_ANY_NUMBER.search(text))


def _counts(things: frozenset[str], text: str) -> bool:
    """A number within a few words of one of the counted things ("40 clusters", "thousands of tenants")."""
    words = _WORD.findall(text)
    stems = [set(terms(w)) for w in words]
    numeric = [bool(re.fullmatch(NUMBER, w.strip(".,"), re.IGNORECASE)) for w in words]
    for i, s in enumerate(stems):
        if s & things:
            lo, hi = max(0, i - COUNT_BEFORE), min(len(words), i + COUNT_AFTER + 1)
            if any(numeric[j] for j in range(lo, hi) if j != i):
                return True
    return False
