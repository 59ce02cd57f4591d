"""A passage in its context, for `GET /sources/{chunk_id}` and the MCP `get_source` tool: one body for both."""

from __future__ import annotations

from typing import Any

from bot.index.store import LoadedIndex
from bot.ingest.chunking import Chunk
from bot.serve.schemas import SectionPassage


def source_body(index: LoadedIndex, chunk_id: str) -> dict[str, Any] | None:
    """The passage with this id, its interview's metadata and the passages of its section; None if unknown."""
    chunk = next((c for c in index.chunks if c.chunk_id == chunk_id), None)
    if chunk is None:
        return None
    same = sorted((c for c in index.chunks if c.source == chunk.source and c.section == chunk.section),
                  key=lambda c: (c.line_start, c.line_end))
    entry = index.manifest.files.get(chunk.source)
    body = {k: v for k, v in chunk.to_dict().items() if k != "pages"}
    return {**body, **_pages(chunk), "title": getattr(entry, "title", None),
            "interviewee": getattr(entry, "interviewee", None), "date": getattr(entry, "date", None),
            "section_passages": [SectionPassage(chunk_id=c.chunk_id, question=c.question, text=c.text,
                                                line_start=c.line_start, line_end=c.line_end, **_pages(c))
                                 for c in same]}


def _pages(chunk: Chunk) -> dict[str, int | None]:
    """The PDF pages of a passage's first and last line (None for other formats)."""
    return {"page": chunk.page_of(chunk.line_start), "page_end": chunk.page_of(chunk.line_end)}
