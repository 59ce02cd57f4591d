"""Slack transport (slack-bolt): listeners, Block Kit rendering, feedback store."""

from __future__ import annotations

from typing import Any


def mount(app: Any, settings: Any, answerer: Any) -> bool:
    """Add `POST /slack/events` to a FastAPI app when Slack HTTP mode is configured; True if mounted."""
    return False
