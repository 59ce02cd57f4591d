"""Who and what an interview is about: project, adopter, interviewee and date, from wherever the file says it.

Project and adopter are taken, in order, from the front matter, the title, metadata lines (`Company:`,
`**Organization**:`, `Project:`), the file name and the folder (`resolve_names`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.ingest.markup import MAX_HEADING_CHARS, clean_inline, plain

# "<Project> Adopter Interview - <Adopter>" and "<Project> - Adopter Interview Questions (<Adopter>)".
# "\s*[-–—:]?\s+" written as two alternatives matches the same text without the cubic backtracking of two
# adjacent whitespace runs.
TITLE = re.compile(
    r"^(?P<project>.+?)(?:\s*[-–—:]\s+|\s+)adopter\s+interview(?:\s+questions)?\s*"
    r"(?:[-–—:]\s*(?P<adopter>.+?)|\((?P<adopter_paren>[^()]+)\))\s*$", re.IGNORECASE
)
# Words that name an anonymised adopter ("Adopter 4"): their number is part of the name, not an interview count.
_GENERIC_ADOPTER = re.compile(r"^(?:adopter|company|organi[sz]ation|org|user|customer|end[- ]user)$", re.IGNORECASE)
# A metadata line: "Interviewee: …", "**Meeting Time:** …", "- **Organization**: …". The key is what matters.
_META = re.compile(
    r"^\s*[-*]?\s*(?:\*\*)?(?P<key>interviewees?|interviewers?|interview\s+date|meeting\s+time|date|company|"
    r"organi[sz]ation|project)\s*(?::(?:\*\*)?|\*\*:)\s*(?P<value>.*)$",
    re.IGNORECASE,
)
_ATTENDEES = re.compile(r"^\s*[-*]?\s*(?:\*\*)?(?:attendees|participants)\s*:?\s*(?:\*\*)?\s*:?\s*$", re.IGNORECASE)
_ADOPTER_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:\*\*)?adopter:?(?:\*\*)?:?\s*(.*)$", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*[-*+]\s+(.+)$")


@dataclass
class Metadata:
    """What the lines before the first question say about the interview."""

    interviewee: str | None = None
    interviewer: str | None = None
    date: str | None = None
    company: str | None = None
    project: str | None = None
    attendees: list[str] = field(default_factory=list)  # "Name (Affiliation)" items of an Attendees list


def display_name(name: str, text: str) -> str:
    """A project name spelled as the interview spells it inside sentences: "cubefs" (a file name) -> "CubeFS",
    "confidential-containers" (a folder) -> "Confidential Containers", "KNative" (a title) -> "Knative".

    Only mid-sentence uses count (a sentence or heading may capitalise any word), and a capitalised spelling
    beats an all-lower-case one, which may be the common noun ("buildpacks") rather than the name.
    """
    spellings: dict[str, int] = {}
    pattern = r"[-\s]".join(re.escape(part) for part in re.split(r"[-\s]+", name.strip()))  # "a-b" also "a b"
    for m in re.finditer(rf"(?<=[\w,;:)] ){pattern}(?![\w-])", text, re.IGNORECASE):
        spellings[m.group(0)] = spellings.get(m.group(0), 0) + 1
    if not spellings:
        return name.strip().replace("-", " ").title() if name == name.lower() else name.strip()
    return max(spellings.items(), key=lambda kv: (kv[0] != kv[0].lower(), kv[1]))[0]


def adopter_name(raw: str) -> str:
    """The adopter named in a title: "Bloomberg 2" (the second interview of Bloomberg) -> "Bloomberg";
    "Adopter 4" stays as it is, since there the number is the name."""
    raw = raw.strip()
    m = re.match(r"^(?P<name>.+?)\s+#?\d{1,2}$", raw)
    if m and not _GENERIC_ADOPTER.match(m.group("name")):
        return m.group("name")
    return raw


def names_from_title(title: str) -> tuple[str | None, str | None]:
    """(project, adopter) from a title or file stem that follows one of the `TITLE` shapes."""
    m = TITLE.match(title)
    if not m:
        return None, None
    return m.group("project").strip(" -–—:"), adopter_name(m.group("adopter") or m.group("adopter_paren"))


def _words_of_stem(stem: str) -> str:
    """A name from a file name: "acme-corp" -> "Acme Corp"; a spelling with capitals ("TDC-DK") is kept."""
    return stem.replace("-", " ").replace("_", " ").strip().title() if stem == stem.lower() else stem.strip()


def names_from_filename(path: Path) -> tuple[str | None, str | None]:
    """(project, adopter) from `<project>-adopter-interview-<adopter>`, `<Adopter>-interview` (or `-transcript`)
    or a title-shaped stem ("Karmada - Adopter Interview Questions (Bloomberg 1)")."""
    m = re.match(r"^(?P<p>.+?)-adopter-interview-(?P<a>.+)$", path.stem, re.IGNORECASE)
    if m:
        return m.group("p"), m.group("a").replace("-", " ").strip().title()
    project, adopter = names_from_title(clean_inline(path.stem))
    if adopter:
        return project, adopter
    m = re.match(r"^(?P<a>.+?)[-_ ]+(?:interview|transcript)(?:[-_ ]+(?:notes|transcript))?$", path.stem,
                 re.IGNORECASE)
    if m and not re.search(r"adopter$", m.group("a"), re.IGNORECASE):
        return None, adopter_name(_words_of_stem(m.group("a")))
    return None, None


def resolve_names(front: dict[str, str], title: str | None, meta: Metadata, path: Path,
                  text: str) -> tuple[str, str]:
    """(project, adopter): front matter, then the title, metadata lines, the file name and the folder."""
    tp, ta = names_from_title(title) if title else (None, None)
    fp, fa = names_from_filename(path)
    project = front.get("project") or tp or meta.project or fp or path.parent.name or None
    adopter = (front.get("adopter") or front.get("company") or front.get("organization") or ta or meta.company
               or fa or path.stem)
    # Titles disagree ("KNative", "In-toto"): the spelling the interview uses most often wins.
    return (display_name(project, text) if project else "Unknown"), adopter


def list_after(lines: list[str], start: int) -> list[str]:
    """The list items (`-`/`*` bullets) right after line `start`, cleaned."""
    items = []
    for line in lines[start + 1 :]:
        m = _LIST_ITEM.match(line) if len(line) <= MAX_HEADING_CHARS else None
        if not m:
            if items or line.strip():
                break
            continue
        items.append(plain(m.group(1)))
    return items


def read_meta(lines: list[str]) -> Metadata:
    """Metadata from the lines between the title and the first question."""
    meta = Metadata()
    # A file without headings is all preamble: only lines short enough to be metadata are looked at (`_META`'s
    # adjacent optional spaces are quadratic on a long run of them, and so is `clean_inline` on emphasis).
    for n, line in enumerate(lines):
        if len(line) > MAX_HEADING_CHARS:
            continue
        m = _META.match(line)
        if m:
            key, value = m.group("key").lower(), plain(m.group("value"))
            if key.startswith("interviewee") and not meta.interviewee:
                meta.interviewee = value or "; ".join(list_after(lines, n)) or None
            elif key.startswith("interviewer") and not meta.interviewer:
                meta.interviewer = value or None
            elif ("date" in key or "time" in key) and value and not meta.date:
                meta.date = value
            elif key in ("company", "organization", "organisation") and value and not meta.company:
                meta.company = value
            elif key == "project" and value and not meta.project:
                meta.project = value
        elif _ATTENDEES.match(line) and not meta.attendees:
            meta.attendees = list_after(lines, n)
    if meta.interviewee is None:
        # Attendee lists name the adopter's people as "Adopter: Name, Role" or under an "Adopter:" line.
        adopters: list[str] = []
        for n, line in enumerate(lines):
            m = _ADOPTER_LINE.match(line) if len(line) <= MAX_HEADING_CHARS else None
            if m:
                value = plain(m.group(1))
                adopters.extend([value] if value else list_after(lines, n))
        meta.interviewee = "; ".join(adopters) or None
    return meta


def attendees_of(attendees: list[str], adopter: str) -> str | None:
    """The attendees whose affiliation names the adopter ("Yuzhui Liu ( Bloomberg)" -> "Yuzhui Liu"): the
    people interviewed, as opposed to the interviewers, whose affiliation is someone else."""
    key = adopter.lower().strip()
    people = []
    for item in attendees:
        m = re.match(r"^(?P<name>[^()]+?)\s*\((?P<aff>[^()]*)\)", item)
        if m and key and key in m.group("aff").lower():
            people.append(m.group("name").strip())
    return "; ".join(people) or None
