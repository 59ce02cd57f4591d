"""The closed word lists of follow-up resolution: what kinds of follow-up there are, the English function words
that mark them (pronouns, "those", ordinals, "say more"), and the small text edits resolution makes."""

from __future__ import annotations

import re
from typing import Sequence

from bot.index.keyword import terms
from bot.search.mentions import PEOPLE

# What a resolution did (Resolution.kind).
STANDALONE = "standalone"  # asked alone: answered as asked
ELLIPSIS = "ellipsis"  # "and IBM?": the previous question about someone else
PRONOUN = "pronoun"  # "why did they pick it?": the previous turn's adopters and project put in
SUBSET = "subset"  # "which of those ...?": among the previous turn's adopters
ORDINAL = "ordinal"  # "the second one": one of the adopters the previous turn listed
MORE = "more"  # "any numbers on that?": the previous question again, with the new words
UNRESOLVED = "unresolved"  # refers to something the conversation doesn't give: answered as asked

ADOPTER_PRONOUN = re.compile(r"\b(they|them|themselves|he|him|she|their|theirs|his|her|hers)\b", re.I)
POSSESSIVE = {"their", "theirs", "his", "her", "hers"}
THERE = re.compile(r"(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )\bthere\b(?!\s+(?:is|are|was|were|been|be)\b)"
                    r"(?!'s)", re.I)
IT = re.compile(r"\bit\b", re.I)
SUBSET_WORDS = re.compile(r"\b(?:which|who|how\s+many|any|each|both|all|none|one|either|neither)\s+of\s+"
                     r"(those|them|these|the\s+ones|the\s+two|the\s+three|the\s+four|the\s+five)\b"
                     r"|\b(?:those|these)\s+" + PEOPLE + r"\b|\bboth\b", re.I)
ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "former": 0, "latter": -1, "last": -1}
ORDINAL_WORDS = re.compile(r"\bthe\s+(first|second|third|fourth|fifth|last|latter|former|other)"
                      r"(?:(?:\s+(?:one|adopter|company|organi[sz]ation|team|interview|interviewee|example))"
                      r"(?:\s+(?:that\s+)?you\s+(?:mentioned|listed|named|cited|gave))?|(?=\s*(?:[?.!,;]|'s|$)))",
                      re.I)
DEMONSTRATIVE = re.compile(r"\b(?:those|these)\s+(?!" + PEOPLE + r"\b)[a-z]", re.I)
THAT = re.compile(r"\b(?:that|this)\b(?=\s*(?:[?.!,;]|$))", re.I)
MORE_WORDS = re.compile(r"\b(?:(?:say|tell\s+(?:me|us)|talk|explain|go\s+into)\s+more|more\s+(?:about|on|detail|details|"
                   r"info|information)|what\s+else|anything\s+else|elaborate|expand\s+on|go\s+on|in\s+more\s+detail|"
                   r"any\s+(?:numbers|figures|details|examples|specifics|metrics|data)|why\s+(?:is|was)\s+that)\b",
                   re.I)
ELSE = re.compile(r"\b(?:else|other\s+than|besides|apart\s+from)\b", re.I)
LEAD = re.compile(r"^\s*(?:and|also|so|but|ok(?:ay)?|now|then|what\s+about|how\s+about|what\s+of|same\s+(?:for|"
                   r"with))\b", re.I)
# "how about Nutanix, ..." / "what about the KServe adopters: ...": a new subject, then a question of its own.
ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+((?:the\s+)?[^,:;?]+?)\s*[,:;]\s*", re.I)
SOFT_LEAD = re.compile(r"^\s*(?:and|so|but|also|ok(?:ay)?|now|then)\b\s*,?", re.I)
# Words that carry no topic in an elliptical follow-up ("and Grafana on the OpenFGA side?").
FILLER = frozenset(terms("side one ones case too also then instead same else now there folks people guys "
                          "first second third fourth fifth last latter former other"))



def join_names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def dropped(text: str, start: int, end: int) -> tuple[int, int, str]:
    """The edit that removes a name from a list: with the "and"/"or"/"," joining it to the others."""
    before = re.search(r"(?:,\s*|\s+(?:and|or)\s+)$", text[:start])
    if before:
        return before.start(), end, ""
    after = re.match(r"(?:,\s*|\s+(?:and|or)\s+)", text[end:])
    return start, end + (after.end() if after else 0), ""


def possessive(text: str) -> str:
    if text.endswith(")") and " (" in text:  # "Adopter 2 (Tekton)" -> "Adopter 2's (Tekton)"
        name, _, rest = text.rpartition(" (")
        return f"{possessive(name)} ({rest}"
    return text + "'" if text.endswith("adopters") else text + "'s"
