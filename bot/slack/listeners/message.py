"""Messages: direct messages are answered; in channels only follow-ups in threads the bot is part of."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext

from bot.slack.responder import Question, Responder

logger = logging.getLogger(__name__)

# Plain user messages only: edits (message_changed), deletions, joins, bot posts... all carry a subtype.
_ANSWERABLE_SUBTYPES = {None, "thread_broadcast", "file_share"}


def register(app: App, responder: Responder) -> None:
    """Listen to message events (message.im, message.channels, message.groups, message.mpim)."""

    @app.event("message")
    def on_message(event: dict[str, Any], client: Any, context: BoltContext) -> None:
        """Answer DMs and thread follow-ups; ignore everything else."""
        if event.get("subtype") not in _ANSWERABLE_SUBTYPES or event.get("bot_id") or not event.get("user"):
            return
        channel, ts, thread_ts = event.get("channel"), event.get("ts"), event.get("thread_ts")
        if not channel or not ts:
            return
        raw = event.get("text") or ""
        is_dm = event.get("channel_type") == "im"
        if not is_dm:
            if not thread_ts or thread_ts == ts:
                return  # a top-level channel message: only mentions (app_mention) are answered
            if context.bot_user_id and f"<@{context.bot_user_id}" in raw:
                return  # the app_mention event answers it
            if not responder.threads.is_ours(client, channel, thread_ts, context.bot_user_id, context.bot_id):
                return
        if not responder.claim_message(channel, ts):
            return
        text, notice = responder.validate(raw, context.bot_user_id)
        q = Question(text, channel, event.get("user"), thread_ts=thread_ts, message_ts=ts, dm=is_dm,
                     bot_user_id=context.bot_user_id)
        if notice:
            responder.notice(client, q, notice)
            return
        responder.respond(client, q)
