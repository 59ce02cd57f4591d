"""Word documents (.docx, read with python-docx) as markdown-shaped text.

Headings by their style ("Title", "Heading 1"-"Heading 6") become "#" lines, numbered list paragraphs "1. …",
bulleted ones "- …" (indented by level), wholly bold paragraphs "**…**", table rows "| … |"; every other
paragraph is a line of its own, with a blank line between blocks. The text parser then finds the questions
there as in any markdown file."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from typing import Any, Iterator

from bot.ingest.files import CorpusError

logger = logging.getLogger(__name__)

# A .docx is a zip of XML: refuse one that would inflate past this (a zip bomb) before python-docx reads it.
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # password-protected Office files and old .doc files
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_HEADING_STYLE = re.compile(r"^heading\s*([1-6])$", re.IGNORECASE)


def _check_container(data: bytes) -> None:
    if data.startswith(_OLE_MAGIC):
        raise CorpusError("not a readable Word document: password-protected, or an old .doc file (save it as .docx)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise CorpusError(f"not a readable Word document (corrupt: {exc})") from exc
    if inflated > MAX_UNZIPPED_BYTES:
        raise CorpusError(f"not a readable Word document: it unpacks to {inflated:,} bytes "
                          f"(at most {MAX_UNZIPPED_BYTES:,})")


class _Numbering:
    """Whether a list paragraph is numbered or bulleted, from the document's numbering definitions."""

    def __init__(self, document: Any) -> None:
        self.formats: dict[tuple[str, int], str] = {}
        try:
            root = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):  # no numbering part: no lists
            return
        abstract: dict[str, dict[int, str]] = {}
        for node in root.iter(f"{_W}abstractNum"):
            levels = {}
            for lvl in node.iter(f"{_W}lvl"):
                fmt = lvl.find(f"{_W}numFmt")
                levels[int(lvl.get(f"{_W}ilvl", "0"))] = fmt.get(f"{_W}val") if fmt is not None else "decimal"
            abstract[node.get(f"{_W}abstractNumId")] = levels
        for num in root.iter(f"{_W}num"):
            ref = num.find(f"{_W}abstractNumId")
            if ref is not None:
                for level, fmt in abstract.get(ref.get(f"{_W}val"), {}).items():
                    self.formats[(num.get(f"{_W}numId"), level)] = fmt

    def numbered(self, num_id: str, level: int) -> bool:
        return self.formats.get((num_id, level), "decimal") not in ("bullet", "none")


def _list_props(paragraph: Any) -> tuple[str, int] | None:
    """(numId, level) of a list paragraph: its own numbering, else its style's ("List Bullet 2" is level 1)."""
    style = paragraph.style
    name = (style.name or "").lower() if style is not None else ""
    digits = re.findall(r"\d", name) if name.startswith("list") else []
    style_level = int(digits[0]) - 1 if digits else 0
    for element in (paragraph._p, getattr(style, "element", None)):
        ppr = element.find(f"{_W}pPr") if element is not None else None
        num = ppr.find(f"{_W}numPr") if ppr is not None else None
        if num is not None:
            num_id = num.find(f"{_W}numId")
            level = num.find(f"{_W}ilvl")
            if num_id is not None and num_id.get(f"{_W}val") != "0":
                return num_id.get(f"{_W}val"), int(level.get(f"{_W}val")) if level is not None else style_level
    if name.startswith("list number") or name.startswith("list bullet"):
        return ("style:" + name.split()[1], style_level)
    return None


def _all_bold(paragraph: Any) -> bool:
    runs = [r for r in paragraph.runs if r.text.strip()]
    style_bold = bool(paragraph.style is not None and paragraph.style.font.bold)
    return bool(runs) and all(r.bold or (r.bold is None and style_bold) for r in runs)


def _blocks(document: Any) -> Iterator[tuple[str, Any]]:
    """("paragraph" | "table", item) in document order."""
    from docx.table import Table

    for item in document.iter_inner_content():
        yield ("table" if isinstance(item, Table) else "paragraph"), item


def _lines(document: Any) -> list[str]:
    numbering = _Numbering(document)
    counters: dict[tuple[str, int], int] = {}
    out: list[str] = []
    in_list = False

    def block(lines: list[str], listed: bool = False) -> None:
        nonlocal in_list
        if out and not (listed and in_list):
            out.append("")
        out.extend(lines)
        in_list = listed

    for kind, item in _blocks(document):
        if kind == "table":
            rows = []
            for row in item.rows:
                cells = [" ".join(c.text.split()) for c in row.cells]
                if any(cells):
                    rows.append("| " + " | ".join(cells) + " |")
            if rows:
                block(rows)
            continue
        text = item.text.replace("\t", " ").strip()
        if not text:
            continue
        lines = [line.strip() for line in text.split("\n") if line.strip()]
        style = (item.style.name or "") if item.style is not None else ""
        heading = _HEADING_STYLE.match(style)
        if style.lower() == "title" or heading:
            level = int(heading.group(1)) if heading else 1
            block(["#" * level + " " + " ".join(lines)])
            continue
        listed = _list_props(item)
        if listed:
            num_id, level = listed
            for key in [k for k in counters if k[0] == num_id and k[1] > level]:
                del counters[key]  # a deeper list restarts under each item
            indent = "   " * level
            if numbering.numbered(num_id, level) and not num_id.startswith("style:bullet"):
                counters[(num_id, level)] = counters.get((num_id, level), 0) + 1
                marker = f"{counters[(num_id, level)]}."
            else:
                marker = "-"
            block([f"{indent}{marker} {lines[0]}", *(indent + "   " + line for line in lines[1:])], listed=True)
            continue
        if _all_bold(item) and len(lines) == 1:
            block([f"**{lines[0]}**"])
            continue
        block(lines)
    return out


def docx_text(data: bytes) -> str:
    """The text of a Word document in markdown shape; CorpusError when it is corrupt, encrypted or empty."""
    _check_container(data)
    import docx  # python-docx: only imported when a Word file is read

    try:
        document = docx.Document(io.BytesIO(data))
        lines = _lines(document)
    # python-docx raises many kinds of errors on a damaged package (KeyError, ValueError, lxml's XMLSyntaxError,
    # its own PackageNotFoundError): each of them means the same thing here.
    except Exception as exc:  # noqa: BLE001
        raise CorpusError(f"not a readable Word document ({type(exc).__name__}: {exc})") from exc
    if not any(line.strip() for line in lines):
        raise CorpusError("empty document: no text")
    return "\n".join(lines) + "\n"
