"""`@qabot question` in a channel: answer in a thread under the question."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext

from bot.slack.responder import Question, Responder

logger = logging.getLogger(__name__)


def register(app: App, responder: Responder) -> None:
    """Listen to app_mention events."""

    @app.event("app_mention")
    def on_mention(event: dict[str, Any], client: Any, context: BoltContext) -> None:
        """Answer a mention in the thread it starts (or continues)."""
        if event.get("bot_id") or event.get("subtype"):
            return
        channel, ts = event.get("channel"), event.get("ts")
        if not channel or not ts or not responder.claim_message(channel, ts):
            return
        thread_ts = event.get("thread_ts") or ts
        text, notice = responder.validate(event.get("text") or "", context.bot_user_id)
        q = Question(text, channel, event.get("user"), thread_ts=thread_ts, message_ts=ts,
                     bot_user_id=context.bot_user_id)
        if notice:
            responder.notice(client, q, notice)
            responder.threads.add(channel, thread_ts)
            return
        responder.respond(client, q)
