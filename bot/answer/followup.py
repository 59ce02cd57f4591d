"""Follow-up questions: the standalone question a turn of a conversation asks, given the earlier questions.

"and IBM?" after "How long has Gojek used Knative?" asks "How long has IBM used Knative?"; "why did they pick it?"
asks about the adopters and project the previous turn was about. Resolution reads names from the index (its
adopters and projects), English function words (pronouns, "those", ordinals) from the closed lists below, and,
when a previous question named no adopter ("which Tekton adopter ...?"), who its answer cited (`recall`). It is
deterministic: the same questions over the same index resolve the same way.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from bot.answer.followup_words import (ABOUT, ADOPTER_PRONOUN, DEMONSTRATIVE, ELLIPSIS, ELSE, FILLER, IT,
                                       LEAD, MORE, MORE_WORDS, ORDINAL, ORDINAL_WORDS, ORDINALS, POSSESSIVE,
                                       PRONOUN, SOFT_LEAD, STANDALONE, SUBSET, SUBSET_WORDS, THAT, THERE,
                                       UNRESOLVED, dropped, join_names, possessive)
from bot.index.keyword import terms
from bot.search.mentions import PEOPLE, Catalog, Mention, Who
from bot.search.query import spans_adopters

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Recall:
    """What the answer to a (resolved) question cited: its adopters in answer order, and its passages."""

    adopters: tuple[Who, ...] = ()
    chunk_ids: frozenset[str] = frozenset()
    points: tuple[str, ...] = ()  # what its first citation lists, for "the second one" (bot/answer/points.py)


@dataclass
class Turn:
    """An earlier turn, resolved: what it asked and whom it was about."""

    resolved: str
    topic: str  # what "say more" extends: the question itself, or the subject a "more" follow-up extends
    named: tuple[Who, ...]  # adopters it named or was resolved to, in order
    projects: tuple[str, ...]  # projects it named, scoped or not
    scope: tuple[str, ...]  # projects whose adopters (in the plural) it asked about
    plural: bool  # it asked about adopters in the plural
    options: tuple[Who, ...]  # adopters an ordinal can pick: the last list of two or more
    exclude: frozenset[str]  # passages its answer was not to cite again
    recall: Callable[[str, frozenset[str]], Recall]
    _recalled: Recall | None = field(default=None, repr=False)

    def cited(self) -> Recall:
        """What its answer cited (replayed once, on demand)."""
        if self._recalled is None:
            self._recalled = self.recall(self.resolved, self.exclude)
        return self._recalled

    def adopters(self) -> tuple[Who, ...]:
        """Whom it was about: the adopters it named, else its answer's first (all of them in the plural)."""
        if self.named or self.scope:
            return self.named
        cited = self.cited().adopters
        return cited if self.plural else cited[:1]

    def listed(self) -> tuple[Who, ...]:
        """The adopters an ordinal picks from: those it named (two or more), else its answer's in the plural."""
        if len(self.named) >= 2:
            return self.named
        if self.plural:
            return self.cited().adopters
        return self.options

    def project_names(self) -> tuple[str, ...]:
        """The projects it was about: named, else its adopters'."""
        if self.projects:
            return self.projects
        return tuple(dict.fromkeys(w.project for w in self.adopters()))


@dataclass(frozen=True)
class Resolution:
    """The standalone question a turn asks, and how it was found."""

    question: str
    kind: str = STANDALONE
    exclude: frozenset[str] = frozenset()  # passages the previous answer cited ("what else ...?")
    about: tuple[Who, ...] | None = None  # whom it was resolved to be about (None: whom it names)


class Resolver:
    """Resolves each question of a conversation against the turns before it."""

    def __init__(self, catalog: Catalog, recall: Callable[[str, frozenset[str]], Recall]) -> None:
        self.catalog = catalog
        self.recall = recall

    def resolve(self, history: Sequence[str], question: str) -> Resolution:
        """The standalone form of `question` after `history` (the earlier questions, oldest first)."""
        prev: Turn | None = None
        for earlier in history:
            if earlier.strip():
                prev = self._turn(self._one(self._resolve(earlier, prev)), prev)
        return self._one(self._resolve(question, prev))

    def _one(self, res: Resolution) -> Resolution:
        """ "which of the Nutanix use GPUs?" -> "does Nutanix use GPUs?": a question for one of several asked of
        the one adopter a follow-up put in."""
        if res.kind == STANDALONE or not res.about or len(res.about) != 1:
            return res
        label = re.escape(self.catalog.label(res.about[0]))
        text = re.sub(rf"^(\s*)(w)hich\s+(?:of\s+)?(?:the\s+)?({label})(?=[\s?,])",
                      lambda m: f"{m.group(1)}{'D' if m.group(2) == 'W' else 'd'}oes {m.group(3)}", res.question,
                      count=1, flags=re.IGNORECASE)
        return res if text == res.question else Resolution(text, res.kind, res.exclude, res.about)

    # -- one turn -------------------------------------------------------------------------------------------

    def _turn(self, res: Resolution, prev: Turn | None) -> Turn:
        mentions = self.catalog.mentions(res.question)
        named = res.about if res.about is not None else \
            tuple(dict.fromkeys(w for m in mentions for w in self._pick(m, mentions)))
        projects = tuple(dict.fromkeys(m.project for m in mentions if m.project))
        # "which of the CubeFS adopters ...?" is about the ones its answer finds, not all of them.
        scope = () if res.kind == SUBSET else tuple(dict.fromkeys(m.project for m in mentions if m.scoped))
        plural = bool(scope) or spans_adopters(res.question) or res.kind == SUBSET
        # What "the other one" picks from: the adopters this turn named, or the list its ordinal picked from.
        options = named if len(named) >= 2 else (prev.listed() if prev and res.kind == ORDINAL else
                                                 prev.options if prev else ())
        topic = prev.topic if res.kind == MORE and prev else res.question
        return Turn(res.question, topic, named, projects, scope, plural, options, res.exclude, self.recall)

    def _pick(self, m: Mention, mentions: list[Mention]) -> tuple[Who, ...]:
        """The adopters a mention names: of the project named beside it when the name is shared."""
        if len(m.adopters) <= 1:
            return m.adopters
        projects = {x.project for x in mentions if x.project}
        return tuple(w for w in m.adopters if w.project in projects) or m.adopters

    def _resolve(self, question: str, prev: Turn | None) -> Resolution:
        q = question.strip()
        mentions = self.catalog.mentions(q)
        content = set(terms(q)) - FILLER - {t for m in mentions for t in terms(q[m.start:m.end])}
        gaps = self._gaps(q, mentions)
        lead = bool(LEAD.match(q))
        if prev is None or not (gaps or lead or not content):
            return Resolution(q, UNRESOLVED if gaps else STANDALONE)
        if not content:
            return self._elliptical(q, mentions, gaps, prev)
        about = ABOUT.match(q)
        if about and mentions and about.start(1) <= mentions[0].start and mentions[0].end <= about.end(1) \
                and terms(q[about.end():]):
            # "how about Nutanix, how many of their people are involved?": the rest asked of the adopter named.
            return self._about(q[about.end():], mentions[0], prev)
        word = SOFT_LEAD.match(q)
        if word and q[word.end():].strip():
            # "so why did they pick it?": a standalone question doesn't start with "so" or "and".
            rest = q[word.end():].lstrip(" ,")
            return self._fill(rest, self.catalog.mentions(rest), self._gaps(rest, self.catalog.mentions(rest)), prev)
        return self._fill(q, mentions, gaps, prev)

    def _about(self, rest: str, mention: Mention, prev: Turn) -> Resolution:
        """The question after "how about <name>," with its pronouns taken as that name, and the previous
        turn's project kept when the name is one of its adopters (or its project's adopters in general)."""
        rest = rest.strip()
        named = self._pick(mention, [mention]) if mention.adopters else ()
        projects = (mention.project,) if mention.project else tuple(dict.fromkeys(
            p for p in prev.project_names() if all(w.project == p for w in named)))
        here = Turn(prev.resolved, prev.topic, named, projects, (mention.project,) if mention.scoped else (),
                    mention.scoped, prev.options, frozenset(), self.recall)
        res = self._fill(rest, self.catalog.mentions(rest), self._gaps(rest, self.catalog.mentions(rest)), here)
        return Resolution(res.question, ELLIPSIS, res.exclude, named or (() if mention.scoped else None))

    def _elliptical(self, q: str, mentions: list[Mention], gaps: list[tuple[str, re.Match[str]]],
                    prev: Turn) -> Resolution:
        """A follow-up with no words of its own: "and IBM?", "the second one?", "why?"."""
        adopters = list(dict.fromkeys(w for m in mentions for w in self._pick(m, mentions)))
        for what, m in gaps:
            if what == "ordinal":
                who = self._ordinal(m.group(1).lower(), prev)
                if who is None and (m.group(1).lower() == "other" or len(prev.listed()) >= 2):
                    return Resolution(q, UNRESOLVED)  # "the other one" of none, or of several: not guessed
                if who is not None and who not in adopters:
                    adopters.append(who)
        project = next((m for m in mentions if m.project), None)
        if adopters or project is not None:
            kind = ORDINAL if any(what == "ordinal" for what, _ in gaps) else ELLIPSIS
            return self._ellipsis(tuple(adopters), project, prev, kind)
        return self._fill(q, mentions, gaps, prev, extend=True)

    def _gaps(self, q: str, mentions: list[Mention]) -> list[tuple[str, re.Match[str]]]:
        """The words that refer outside the question: (what, match), in order, none overlapping."""
        found: list[tuple[str, re.Match[str]]] = []
        taken: list[tuple[int, int]] = []
        names_adopter = any(x.adopters for x in mentions)

        def add(kind: str, m: re.Match[str]) -> None:
            if not any(s < m.end() and m.start() < e for s, e in taken):
                found.append((kind, m))
                taken.append((m.start(), m.end()))

        for m in MORE_WORDS.finditer(q):
            add("more", m)
        for m in ORDINAL_WORDS.finditer(q):
            add("ordinal", m)
        for m in SUBSET_WORDS.finditer(q):
            if not (names_adopter and m.group(0).lower() == "both"):  # "are X and Y both ...?" names them
                add("subset", m)
        for m in DEMONSTRATIVE.finditer(q):
            add("those", m)
        for m in THAT.finditer(q):
            add("that", m)
        for m in ADOPTER_PRONOUN.finditer(q):
            # A pronoun whose adopter is named before it in the question refers to that one.
            if not any(x.end <= m.start() and (x.adopters or x.scoped) for x in mentions) \
                    and not spans_adopters(q[:m.start()]):
                add("adopter", m)
        for m in THERE.finditer(q):
            if not any(x.end <= m.start() and x.adopters for x in mentions):
                add("there", m)
        if not any(x.project for x in mentions):
            for m in IT.finditer(q):
                add("it", m)
        found.sort(key=lambda g: g[1].start())
        return found

    # -- the kinds ------------------------------------------------------------------------------------------

    def _ellipsis(self, adopters: tuple[Who, ...], project: Mention | None, prev: Turn,
                  kind: str = ELLIPSIS) -> Resolution:
        """"and IBM?", "what about the KServe adopters?": the previous question with the new names put in."""
        text = prev.resolved
        old = self.catalog.mentions(text)
        adopter_slots = [m for m in old if m.adopters]
        scope_slots = [m for m in old if m.scoped]
        project_slots = [m for m in old if m.project]
        edits: list[tuple[int, int, str]] = []
        carried: list[str] = []

        def put(slots: list[Mention], new: str, end: Callable[[Mention], int] = lambda m: m.end) -> bool:
            if not slots:
                return False
            edits.append((slots[0].start, end(slots[0]), new))
            edits.extend(dropped(text, m.start, end(m)) for m in slots[1:])
            return True

        if adopters:
            label = join_names([self.catalog.label(w) for w in adopters])
            if not put(adopter_slots, label) and not put(scope_slots, label, lambda m: self._scope_end(text, m)):
                carried.append(label)
            theirs = {w.project for w in adopters}
            if project is None and len(theirs) == 1:  # another project's adopter: its project replaces the old one
                new = next(iter(theirs))
                edits.extend((m.start, m.end, new) for m in project_slots if not m.scoped and m.project != new)
        if project is not None:
            if project.scoped and not adopters and adopter_slots:
                # "what about the KServe adopters?" after a question about one adopter
                put(adopter_slots, f"the {project.project} adopters")
                edits.extend((m.start, m.end, project.project) for m in project_slots)
            elif project_slots:
                edits.extend((m.start, m.end, project.project) for m in project_slots)
            else:
                carried.append(f"the {project.project} adopters" if project.scoped and not adopters
                               else project.project)
        resolved = self._apply(text, edits)
        if carried:
            resolved = f"{resolved} ({', '.join(carried)})"
        about = adopters if adopters else (() if project is not None and project.scoped else None)
        return Resolution(resolved, kind, about=about)

    def _scope_end(self, text: str, m: Mention) -> int:
        """Where "KServe adopters" ends (the people word after a scoped project)."""
        tail = re.match(r"[\s']*s?\s*" + PEOPLE + r"\b", text[m.end:], re.I)
        return m.end + (tail.end() if tail else 0)

    def _fill(self, q: str, mentions: list[Mention], gaps: list[tuple[str, re.Match[str]]],
              prev: Turn, extend: bool = False) -> Resolution:
        """Put the previous turn's adopters and project where the question refers to them (`extend`: and
        ask the previous subject again with these words)."""
        edits: list[tuple[int, int, str]] = []
        referents: tuple[Who, ...] | None = None
        kind = PRONOUN
        unresolved = False
        picked: tuple[re.Match[str], str] | None = None  # an ordinal's point of the previous answer
        for what, m in gaps:
            if what in ("more", "that"):
                extend = True  # "any numbers on that?", "say more": the previous subject, with these words
            elif what == "ordinal":
                word = m.group(1).lower()
                who = self._ordinal(word, prev)
                if who is not None:
                    edits.append((m.start(), m.end(), self.catalog.label(who)))
                    referents, kind = (who,), ORDINAL
                elif word != "other" and len(prev.listed()) < 2 and prev.adopters():
                    # "the second one" after an answer about one adopter: a point in that answer, the one
                    # at that place when the answer lists some, else the subject asked again.
                    point = self._point(word, prev)
                    if point is None:
                        extend = True
                    else:
                        picked = (m, point)
                        referents, kind = prev.adopters(), ORDINAL
                else:
                    unresolved = True
            elif what == "subset":
                group = self._group(prev)
                if not group:
                    unresolved = True
                    continue
                both = m.group(0).lower() == "both"
                span = m.span(1) if m.group(1) else m.span()
                edits.append((m.start(), m.end(), f"both {group}") if both else (span[0], span[1], group))
                referents, kind = (), SUBSET
            elif what in ("adopter", "there"):
                # After "the last adopter you mentioned", "they" is that adopter.
                group = join_names([self.catalog.label(w) for w in referents]) if referents else self._group(prev)
                if not group:
                    unresolved = True
                    continue
                word = m.group(0).lower()
                text = f"at {group}" if what == "there" else possessive(group) if word in POSSESSIVE else group
                edits.append((m.start(), m.end(), text))
                if referents is None:
                    referents = prev.adopters()
            elif what == "it":
                projects = prev.project_names()
                if len(projects) == 1:
                    edits.append((m.start(), m.end(), projects[0]))
        if picked is not None:
            return self._about_point(q, gaps, picked, edits, prev)
        if unresolved and not edits:
            return Resolution(q, UNRESOLVED)
        resolved = self._apply(q, edits)
        if extend:
            return self._more(resolved, prev, referents)
        # A follow-up keeps what it doesn't replace: whom the previous turn was about, and its project.
        after = self.catalog.mentions(resolved)
        carried: list[str] = []
        about = referents
        if not any(m.adopters or m.scoped for m in after) and not spans_adopters(resolved):
            group = self._group(prev)
            if group:
                carried.append(group)
                about = prev.adopters()
        whose = about if about is not None else tuple(w for m in after for w in m.adopters)
        projects = prev.project_names()
        if not any(m.project for m in after) and len(projects) == 1 \
                and all(w.project == projects[0] for w in whose):
            carried.append(projects[0])
        if carried:
            resolved = f"{resolved} ({', '.join(carried)})"
        if resolved == q:
            return Resolution(q, STANDALONE)
        logger.debug("follow-up (%s) resolved to %r", kind, resolved)
        return Resolution(resolved, kind, about=about)

    def _more(self, q: str, prev: Turn, referents: tuple[Who, ...] | None = None) -> Resolution:
        """"any numbers on that?": the previous subject asked again, followed by the new words."""
        topic = prev.topic.strip()
        if referents:  # "the first one's concern": the subject narrowed to that adopter
            topic = self._narrow(topic, set(referents))
        if topic and topic[-1] not in "?.!)":
            topic += "?"
        exclude = prev.cited().chunk_ids if ELSE.search(q) else frozenset()
        return Resolution(f"{topic} {q}", MORE, exclude, about=referents or None)

    def _point(self, word: str, prev: Turn) -> str | None:
        """The point of the previous answer at the ordinal's place, if its answer lists that many."""
        points = prev.cited().points
        index = ORDINALS[word]
        return points[index] if len(points) >= 2 and index < len(points) else None

    def _about_point(self, q: str, gaps: list[tuple[str, re.Match[str]]], picked: tuple[re.Match[str], str],
                     edits: list[tuple[int, int, str]], prev: Turn) -> Resolution:
        """"say more about the last one" -> "What does Cloudera say about build pipeline inefficiencies?":
        the point put in for the ordinal; a request for more becomes a question about the point."""
        m, point = picked
        group = self._group(prev)
        carried: list[str] = []
        if any(what == "more" for what, _ in gaps):
            # The subject asked again with the point: its passage likely says more than the quote showed.
            more = self._more(self._apply(q, [*edits, (m.start(), m.end(), point)]), prev)
            return Resolution(more.question, ORDINAL, more.exclude, about=prev.adopters())
        if not (set(terms(q[:m.start()] + q[m.end():])) - FILLER):
            resolved = f"What does {group} say about {point}?"
        else:
            resolved = self._apply(q, [*edits, (m.start(), m.end(), point)])
            if not edits:  # no pronoun put the adopter in
                carried.append(group)
        projects = prev.project_names()
        if len(projects) == 1 and not any(x.project for x in self.catalog.mentions(resolved)):
            carried.append(projects[0])
        if carried:
            resolved = f"{resolved} ({', '.join(carried)})"
        logger.debug("follow-up (%s) resolved to %r", ORDINAL, resolved)
        return Resolution(resolved, ORDINAL, about=prev.adopters())

    def _narrow(self, text: str, keep: set[Who]) -> str:
        """`text` without the adopters it names that are not in `keep` (and the "and"/"or" joining them)."""
        edits = [dropped(text, m.start, m.end) for m in self.catalog.mentions(text)
                 if m.adopters and not keep & set(m.adopters)]
        return self._apply(text, edits) if edits else text

    def _ordinal(self, word: str, prev: Turn) -> Who | None:
        if word == "other":
            rest = [w for w in prev.options if w not in prev.adopters()]
            return rest[0] if len(rest) == 1 else None
        listed = prev.listed()
        index = ORDINALS[word]
        if len(listed) < 2 or index >= len(listed):
            return None
        return listed[index]

    def _group(self, prev: Turn) -> str:
        """How to write whom the previous turn was about: "the CubeFS adopters", "Cloudera and SAP", ""."""
        if prev.scope and not prev.named:
            return f"the {join_names(list(prev.scope))} adopters"
        adopters = prev.adopters()
        if adopters:
            return join_names([self.catalog.label(w) for w in adopters])
        projects = prev.project_names()
        return f"the {join_names(list(projects))} adopters" if projects and prev.plural else ""

    @staticmethod
    def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
        """`text` with each (start, end) replaced, later ones first; blanks left by removals tidied."""
        for start, end, new in sorted(set(edits), reverse=True):
            text = text[:start] + new + text[end:]
        return re.sub(r"\s{2,}", " ", re.sub(r"\s+([?.!,])", r"\1", text)).strip()
