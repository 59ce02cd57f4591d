"""Bolt listeners, one module per kind of request; `register_all` wires them to an app."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners import command, mention, message, vote
from bot.slack.responder import Responder


def register_all(app: App, responder: Responder) -> None:
    """Register every listener on `app`."""
    for module in (mention, message, command, vote):
        module.register(app, responder)
