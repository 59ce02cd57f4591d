"""Where a citation or passage stands in its interview, as people read it: `file:12-14` and, for a PDF, the page."""

from __future__ import annotations

from typing import Any


def line_span(start: int, end: int) -> str:
    """"12" for one line, "12-14" for several."""
    return str(start) if start == end else f"{start}-{end}"


def page_label(p: Any, before: str = "") -> str:
    """"p. 2" or "pp. 2-3" for a citation or passage from a PDF (after `before`); "" for other formats."""
    page, end = getattr(p, "page", None), getattr(p, "page_end", None)
    if page is None:
        return ""
    return f"{before}p. {page}" if end in (None, page) else f"{before}pp. {page}-{end}"


def location(p: Any) -> str:
    """`source:lines`, then `, p. N` for a PDF: what every text surface (CLI, Slack, /v1) shows as the origin."""
    return f"{p.source}:{line_span(p.line_start, p.line_end)}{page_label(p, ', ')}"
