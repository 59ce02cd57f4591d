"""Read a question for names and scope: adopters and projects it names, describes or spans."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Collection

from bot.ingest.chunking import Chunk
from bot.index.keyword import terms

# Words that end a company name but don't identify it ("CyberAgent, Inc.", "Shipwright Project").
_NAME_SUFFIXES = {"inc", "corp", "corporation", "ltd", "llc", "gmbh", "co", "company", "project", "the"}


def normalize_name(name: str) -> str:
    """Lower-case alphanumerics only, so "KNative", "knative" and "Knative " compare equal."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def name_key(name: str) -> str:
    """The identifying part of a name: "CyberAgent, Inc." -> "cyberagent", "Shipwright Project" -> "shipwright"."""
    parts = [p for p in re.split(r"[^a-z0-9]+", name.lower()) if p]
    while len(parts) > 1 and parts[-1] in _NAME_SUFFIXES:
        parts.pop()
    return "".join(parts)


def matches(chunk: Chunk, project: str | None, adopter: str | None) -> bool:
    """True when the chunk passes the explicit project/adopter filters."""
    if project and normalize_name(project) != normalize_name(chunk.project):
        return False
    if adopter:
        want, have = normalize_name(adopter), normalize_name(chunk.adopter)
        if not want or (want != have and not have.startswith(want) and want != name_key(chunk.adopter)):
            return False
    return True


def names_in(query: str, names: Collection[str]) -> set[str]:
    """The names (already `name_key`-ed) spelled out in the query, as 1-4 consecutive words.

    A set of names is looked up gram by gram (the query's few dozen grams, not every name of a large index)."""
    if not isinstance(names, (set, frozenset)):
        names = set(names)
    return {g for g in _name_grams(query) if g in names}


@lru_cache(maxsize=256)
def _name_grams(query: str) -> frozenset[str]:
    """The query's runs of 1-4 words, joined lower-case alphanumerics: what a `name_key` can equal."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", query.lower()) if t]
    grams = {"".join(tokens[i:j]) for i in range(len(tokens)) for j in range(i + 1, min(i + 5, len(tokens) + 1))}
    # A possessive or plural ("Gojek's", "KServe's") leaves a trailing "s" to try without.
    grams |= {g[:-1] for g in grams if g.endswith("s")}
    grams.discard("")
    return frozenset(grams)


# Words that set a name apart from what is asked: "Besides Read AI, ...", "other than Gojek and IBM", "outside
# Bloomberg's own interviews".
_EXCLUDING = (("besides",), ("except",), ("excluding",), ("outside",), ("other", "than"), ("apart", "from"),
              ("aside", "from"), ("not", "counting"))


def excluded_names(query: str, names: Collection[str]) -> set[str]:
    """The names (`name_key`-ed) the query sets apart ("Besides Read AI, which adopters ..."): each one right
    after an excluding word, or joined by "and"/"or"/"," to one that is."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", query.lower()) if t]
    out: set[str] = set()
    i = 0
    excluding = False  # inside "besides X, Y and Z"
    while i < len(tokens):
        found = None
        for j in range(min(i + 4, len(tokens)), i, -1):  # the longest name starting here
            gram = "".join(tokens[i:j])
            for g in (gram, gram[:-1] if gram.endswith("s") else None):
                if g and g in names:
                    found = (g, j)
                    break
            if found:
                break
        if found:
            after = any(tuple(tokens[max(0, i - len(w)):i]) == w for w in _EXCLUDING)
            if after or excluding:
                out.add(found[0])
                excluding = True
            i = found[1]
            if i < len(tokens) and tokens[i] == "s":  # a possessive's "s"
                i += 1
            continue  # a name right after (a comma between) keeps the list going
        excluding = excluding and tokens[i] in ("and", "or")
        i += 1
    return out


def name_counts(query: str, name: str) -> int:
    """How many times a name (`name_key`-ed) is spelled out in the query."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", query.lower()) if t]
    n = 0
    for i in range(len(tokens)):
        for j in range(i + 1, min(i + 5, len(tokens) + 1)):
            gram = "".join(tokens[i:j])
            if gram == name or (gram.endswith("s") and gram[:-1] == name):
                n += 1
                break
    return n


# Words that make a question about several adopters at once ("which adopters", "do teams ...", "companies").
_SPANS = re.compile(r"\b(?:adopters|organi[sz]ations|companies|teams|users|vendors|everyone|anyone|others)\b",
                    re.IGNORECASE)


def spans_adopters(query: str) -> bool:
    """True when the question asks about adopters in the plural, so its answer spans interviews."""
    return bool(_SPANS.search(query))


_ADOPTER_WORDS = ("adopters", "adopter", "users", "teams", "organizations")


def scoped_projects(query: str, projects: set[str]) -> set[str]:
    """The named projects whose adopters the question is about: "<project> adopters/users/teams", each project of
    "KServe and OpenFGA adopters" or "Tekton, KServe or Knative users" too."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", query.lower()) if t]
    spans = [(i, j, "".join(tokens[i:j])) for i in range(len(tokens)) for j in range(i + 1, min(i + 5, len(tokens)))
             if "".join(tokens[i:j]) in projects]
    scoped: set[str] = set()
    scoped_at: set[int] = set()  # where a scoped project's name starts
    for i, j, gram in sorted(spans, key=lambda s: -s[0]):  # right to left: a list ends with "... adopters"
        nxt = j + 1 if j < len(tokens) and tokens[j] in ("and", "or") else j
        if tokens[j] in _ADOPTER_WORDS or (nxt in scoped_at and nxt > i):
            scoped.add(gram)
            scoped_at.add(i)
    return scoped


# "the Dutch bank", "the ride-hailing company": an adopter described instead of named.
_MODIFIER = r"(?!(?:the|a|an|of|to|in|on|at|for|with|and|or|by|its|their|project)\b)[\w-]+\s+"
_DESCRIPTION = re.compile(
    r"\bthe\s+((?:" + _MODIFIER + r"){1,6}?(?:startup|company|integrator|vendor|fintech|giant|super-?app|provider|"
    r"firm|organi[sz]ation|business|maker|bank|retailer|operator|group|consultancy|platform|service|team))(?:'s)?\b",
    re.IGNORECASE)


def descriptions(query: str) -> list[str]:
    """Phrases that describe an adopter without naming it ("the Nordic payments fintech")."""
    return [m.group(1) for m in _DESCRIPTION.finditer(query)]


def without_descriptions(query: str) -> str:
    """The question with each description replaced by "the organization" (what it asks, not about whom)."""
    return _DESCRIPTION.sub("the organization", query)


_NAME_TOKEN = re.compile(r"[\w.'’&-]+")


def without_names(query: str, adopter_terms: set[str], project_terms: set[str]) -> str:
    """The question without the words of the adopters and projects it names (`*_terms`: their stems): what it
    asks, not about whom. "How long has Adopter 3 (Tekton) been on Tekton?" -> "How long has Adopter been on?"."""
    names = adopter_terms | project_terms

    def keep(m: re.Match[str]) -> str:
        stems = set(terms(m.group(0)))
        return "" if stems and stems <= names else m.group(0)

    text = re.sub(r"\(\s*\)", "", _NAME_TOKEN.sub(keep, query))
    return re.sub(r"\s{2,}", " ", re.sub(r"\s+([?.!,)])", r"\1", text)).strip()


def place_variants(word: str) -> set[str]:
    """Country spellings a demonym may come from: German -> Germany, Indonesian -> Indonesia, Japanese -> Japan,
    Chinese -> China, European -> Europe, Italian -> Italy (candidates; the caller keeps the known ones)."""
    w = word.lower()
    out = set()
    if w.endswith("ese"):
        out |= {w[:-3], w[:-3] + "a"}
    if w.endswith("ian"):
        out |= {w[:-1], w[:-3] + "y", w[:-3] + "ia"}
    if w.endswith("ean"):
        out.add(w[:-2])
    if w.endswith("an"):
        out |= {w[:-1], w + "y"}
    if w.endswith("ish"):
        out |= {w[:-3], w[:-3] + "land"}
    return out - {w}


_GENERIC_ADOPTER = re.compile(r"\badopters?\b(?!\s*\d)", re.IGNORECASE)


def embedding_query(query: str) -> str:
    """The question as the model sees it: "adopters" in general becomes "organizations".

    Every passage is from an adopter interview and some interviews say "the adopter" in every sentence,
    so the word would pull those interviews toward any question about adopters in general.
    """
    return _GENERIC_ADOPTER.sub(lambda m: "organizations" if m.group(0).lower().endswith("s") else "organization",
                                query)
