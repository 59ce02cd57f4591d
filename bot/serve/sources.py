"""A passage in its context, for `GET /sources/{chunk_id}` and the MCP `get_source` tool: one body for both."""

from __future__ import annotations

from typing import Any

from bot.index.store import LoadedIndex
from bot.serve.schemas import SectionPassage


def source_body(index: LoadedIndex, chunk_id: str) -> dict[str, Any] | None:
    """The passage with this id, its interview's metadata and the passages of its section; None if unknown."""
    chunk = next((c for c in index.chunks if c.chunk_id == chunk_id), None)
    if chunk is None:
        return None
    same = sorted((c for c in index.chunks if c.source == chunk.source and c.section == chunk.section),
                  key=lambda c: (c.line_start, c.line_end))
    entry = index.manifest.files.get(chunk.source)
    return {**chunk.to_dict(), "title": getattr(entry, "title", None),
            "interviewee": getattr(entry, "interviewee", None), "date": getattr(entry, "date", None),
            "section_passages": [SectionPassage(chunk_id=c.chunk_id, question=c.question, text=c.text,
                                                line_start=c.line_start, line_end=c.line_end) for c in same]}
