"""Names in a question: the adopters and projects of an index, found where a question spells them out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, NamedTuple

from bot.search.query import name_key

# Closed-class English: words that name people in the plural after a project ("the KServe folks").
PEOPLE = r"(?:adopters|users|teams|folks|people|organi[sz]ations|companies|customers|ones)"


class Who(NamedTuple):
    """An adopter of a project, by their display names in the index."""

    project: str
    adopter: str


@dataclass(frozen=True)
class Mention:
    """A name spelled out in a question: characters start..end, an adopter or a project."""

    start: int
    end: int
    adopters: tuple[Who, ...] = ()  # the adopters of that name (several projects may have an "Adopter 3")
    project: str = ""  # a project's display name
    scoped: bool = False  # a project followed by a people word: "KServe adopters"


class Catalog:
    """The adopter and project names of one index, to find them in questions and write them back."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.adopters: dict[str, list[Who]] = {}
        self.projects: dict[str, str] = {}
        for project, adopter in sorted(set(pairs)):
            if adopter:
                whos = self.adopters.setdefault(name_key(adopter), [])
                if Who(project, adopter) not in whos:
                    whos.append(Who(project, adopter))
            if project:
                self.projects.setdefault(name_key(project), project)

    def mentions(self, text: str) -> list[Mention]:
        """The names in `text`, in order; the longest name wins where names overlap."""
        tokens = [(m.start(), m.end(), m.group(0).lower()) for m in re.finditer(r"[A-Za-z0-9]+", text)]
        found: list[Mention] = []
        i = 0
        while i < len(tokens):
            for j in range(min(i + 4, len(tokens)), i, -1):
                gram = "".join(t[2] for t in tokens[i:j])
                key = gram if gram in self.adopters or gram in self.projects else gram[:-1] if gram.endswith("s") \
                    and (gram[:-1] in self.adopters or gram[:-1] in self.projects) else ""
                if not key:
                    continue
                start, end = tokens[i][0], tokens[j - 1][1]
                if key in self.projects:  # a project name is a project even where an adopter shares it
                    scoped = bool(re.match(r"[\s']*s?\s*" + PEOPLE + r"\b", text[end:], re.I))
                    found.append(Mention(start, end, project=self.projects[key], scoped=scoped))
                else:
                    found.append(Mention(start, end, adopters=tuple(self.adopters[key])))
                i = j - 1
                break
            i += 1
        return found

    def label(self, who: Who) -> str:
        """How to write an adopter: its name, with its project's when the name alone is ambiguous or generic.

        "Adopter 2 (Tekton)", not "Tekton Adopter 2": the retriever reads "<project> adopter" as a question about
        that project's adopters in general."""
        key = name_key(who.adopter)
        if len(self.adopters.get(key, ())) > 1 or key.startswith("adopter"):
            return f"{who.adopter} ({who.project})"
        return who.adopter
