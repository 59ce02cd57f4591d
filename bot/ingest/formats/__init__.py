"""Interview files of every supported format turned into the text the parser reads.

Markdown and text are read as they are. A Word document, a PDF or a meeting transcript is turned into text that
keeps its structure in markdown form (headings as "#", numbered questions as "1. …", bold lines as "**…**",
speaker turns as "Name: …"), and that text is what is indexed, cited and shown: line numbers refer to it.
A file that cannot be read raises CorpusError with the reason; the build names it and goes on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.ingest.files import CorpusError, decode_text, read_bytes

FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".docx": "docx", ".pdf": "pdf",
           ".vtt": "vtt", ".srt": "srt"}


@dataclass(frozen=True)
class Extracted:
    """The text of an interview file, as the parser reads it."""

    text: str
    sha256: str  # of the file's bytes
    format: str
    pages: tuple[int, ...] = ()  # PDF: the 1-based line of the text each page starts on


def format_of(path: Path) -> str:
    """The format name of a file, from its suffix ("markdown" for an unknown one)."""
    return FORMATS.get(path.suffix.lower(), "markdown")


def extract(path: Path, max_bytes: int | None = None) -> Extracted:
    """The text of the interview file at `path`; CorpusError (naming the file) when it cannot be used."""
    data, sha = read_bytes(path, max_bytes)
    fmt = format_of(path)
    try:
        if fmt == "docx":
            from bot.ingest.formats.docx import docx_text

            return Extracted(docx_text(data), sha, fmt)
        if fmt == "pdf":
            from bot.ingest.formats.pdf import pdf_text

            text, pages = pdf_text(data)
            return Extracted(text, sha, fmt, pages)
        if fmt in ("vtt", "srt"):
            from bot.ingest.formats.transcript import transcript_text

            return Extracted(transcript_text(decode_text(data, path), fmt), sha, fmt)
    except CorpusError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise CorpusError(f"{path}: {exc}") from exc
    return Extracted(decode_text(data, path), sha, fmt)
