"""PDF interviews (read with pypdf) as markdown-shaped text, from the text layer.

A PDF has lines, not paragraphs or headings: they are rebuilt from how the text is set. Lines closer together
than the usual line gap, in the same font size and weight, are one paragraph (joined into one line of text);
a larger font is a heading ("#", the largest first), a paragraph wholly in bold is "**…**", bullets "•" are
"- ", and page numbers alone on a line are dropped. The parser then reads that text as any markdown file; the
first line of each page is recorded so a citation can say its page."""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bot.ingest.files import CorpusError

_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi|,b\b|-b\b", re.IGNORECASE)
_OPENS_BLOCK = re.compile(r"^\s*(?:[-•▪◦*+]\s|\d{1,3}[.)]\s|(?:Q|[Qq]uestion)\s*\d{0,3}\s*[.:)]\s)")
_PAGE_NUMBER = re.compile(r"^\s*(?:-\s*)?(?:page\s+)?\d{1,4}(?:\s+(?:of|/)\s+\d{1,4})?(?:\s*-)?\s*$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[•▪◦]\s*")
# A paragraph starts where the gap to the previous line is this much above the usual line gap.
_PARAGRAPH_GAP = 1.35
_HEADING_SIZE = 1.15  # times the body text size
_MAX_HEADING_CHARS = 200


@dataclass
class _Line:
    """One visual line of a page: its text and how it is set."""

    y: float
    parts: list[tuple[str, float, bool]] = field(default_factory=list)  # (text, font size, bold)

    @property
    def text(self) -> str:
        return "".join(t for t, _, _ in self.parts).strip()

    def weight(self) -> tuple[float, float]:
        """(font size of most of its characters, share of its characters in bold)."""
        sizes: Counter[float] = Counter()
        bold = total = 0
        for text, size, is_bold in self.parts:
            n = len(text.strip())
            sizes[round(size * 2) / 2] += n
            total += n
            bold += n if is_bold else 0
        return (sizes.most_common(1)[0][0] if sizes else 0.0), (bold / total if total else 0.0)


def _page_lines(page: Any) -> list[_Line]:
    lines: list[_Line] = []

    def new_line(y: float) -> None:
        if not lines or lines[-1].parts:
            lines.append(_Line(y))
        else:
            lines[-1].y = y

    def visit(text: str, cm: list[float], tm: list[float], font: dict | None, size: float) -> None:
        for k, piece in enumerate(text.split("\n")):
            if k and lines and lines[-1].parts:  # pypdf ends a line with "\n"
                new_line(lines[-1].y)
            if not piece.strip():
                if piece and lines and lines[-1].parts:
                    lines[-1].parts.append((piece, 0.0, False))  # the space between two runs
                continue
            real = size * (abs(tm[3] * cm[3]) or 1.0)
            y = tm[5] * cm[3] + cm[5]
            if not lines or not lines[-1].parts or abs(lines[-1].y - y) > 0.3 * real:
                new_line(y)
            name = str((font or {}).get("/BaseFont", ""))
            lines[-1].parts.append((piece, real, bool(_BOLD_FONT.search(name))))

    page.extract_text(visitor_text=visit)
    kept = [line for line in lines if line.text]
    # A page number alone at the top or bottom of a page is not interview text.
    while kept and _PAGE_NUMBER.match(kept[-1].text):
        kept.pop()
    while kept and _PAGE_NUMBER.match(kept[0].text):
        kept.pop(0)
    return kept


def _usual_gap(pages: list[list[_Line]]) -> float:
    gaps: Counter[float] = Counter()
    for lines in pages:
        for a, b in zip(lines, lines[1:]):
            gap = round(a.y - b.y, 0)
            if gap > 0:
                gaps[gap] += 1
    return gaps.most_common(1)[0][0] if gaps else 0.0


def _join(texts: list[str]) -> str:
    """Wrapped lines as one line: "multi-" + "cluster" -> "multi-cluster", else joined with a space."""
    out = texts[0]
    for text in texts[1:]:
        if re.search(r"[A-Za-z]-$", out) and text[:1].islower():
            out += text
        else:
            out += " " + text
    return out


def _paragraphs(lines: list[_Line], usual_gap: float) -> list[tuple[list[str], float, float]]:
    """(texts, size, bold share) of each paragraph of a page."""
    paragraphs: list[tuple[list[str], float, float]] = []
    previous: _Line | None = None
    for line in lines:
        size, bold = line.weight()
        is_bold = bold >= 0.9
        new = previous is None or not paragraphs
        if not new:
            p_size, p_bold = paragraphs[-1][1], paragraphs[-1][2] >= 0.9
            gap = previous.y - line.y
            new = (usual_gap and gap > usual_gap * _PARAGRAPH_GAP) or gap < 0 or abs(size - p_size) > 0.6 \
                or is_bold != p_bold or bool(_OPENS_BLOCK.match(line.text)) or previous.text.endswith("?")
        if new:
            paragraphs.append(([line.text], size, bold))
        else:
            texts, p_size, p_bold_share = paragraphs[-1]
            texts.append(line.text)
            paragraphs[-1] = (texts, p_size, min(p_bold_share, bold))
        previous = line
    return paragraphs


def pdf_text(data: bytes) -> tuple[str, tuple[int, ...]]:
    """(text in markdown shape, the 1-based line each page starts on); CorpusError when the PDF is corrupt,
    encrypted, or has no text layer (a scan)."""
    from pypdf import PdfReader  # only imported when a PDF is read

    # pypdf raises many kinds of errors on a damaged file (PdfReadError, ValueError, KeyError, struct.error):
    # each of them means the same thing here.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception:  # noqa: BLE001 - an unsupported cipher is as unreadable as a wrong password
                opened = 0
            if not opened:
                raise CorpusError("encrypted PDF: it needs a password")
        pages = [_page_lines(page) for page in reader.pages]
    except CorpusError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CorpusError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if not any(pages):
        raise CorpusError("no text layer (a scanned PDF?): nothing to index")

    sizes: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            size, _ = line.weight()
            sizes[size] += len(line.text)
    body = sizes.most_common(1)[0][0]
    heading_sizes = sorted({s for s in sizes if s >= body * _HEADING_SIZE}, reverse=True)
    gap = _usual_gap(pages)

    out: list[str] = []
    starts: list[int] = []
    for lines in pages:
        starts.append(len(out) + (2 if out else 1))
        for texts, size, bold in _paragraphs(lines, gap):
            text = _BULLET.sub("- ", _join(texts))
            if size in heading_sizes and len(text) <= _MAX_HEADING_CHARS:
                text = "#" * min(heading_sizes.index(size) + 1, 6) + " " + text
            elif bold >= 0.9 and len(text) <= 2 * _MAX_HEADING_CHARS:
                text = f"**{text}**"
            if out:
                out.append("")
            out.append(text)
    return "\n".join(out) + "\n", tuple(starts)
