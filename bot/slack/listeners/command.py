"""The slash command (`/ask` by default): acknowledge at once, then post the answer in the channel."""

from __future__ import annotations

import logging
from typing import Any, Callable

from slack_bolt import Ack, App

from bot.slack.mrkdwn import escape, truncate
from bot.slack.responder import Question, Responder

logger = logging.getLogger(__name__)


def register(app: App, responder: Responder) -> None:
    """Listen to the configured slash command."""

    @app.command(responder.settings.slack_command)
    def on_command(ack: Ack, command: dict[str, Any], client: Any, respond: Callable[..., Any]) -> None:
        """Usage help (only to the user) for an empty command; otherwise ack, answer, post."""
        text, notice = responder.validate(command.get("text") or "")
        if notice:
            ack(text=notice, response_type="ephemeral")
            return
        ack(text=f"Searching the interviews for “{escape(truncate(text, 200))}”…", response_type="ephemeral")
        q = Question(text, command.get("channel_id") or "", command.get("user_id"), from_command=True)
        responder.respond(client, q, respond=respond)
