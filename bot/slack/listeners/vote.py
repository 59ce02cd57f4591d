"""👍 / 👎 buttons: store one vote per user per answer, then thank the user in the message."""

from __future__ import annotations

import logging
from typing import Any, Callable

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import VOTE_ACTION, VOTE_UP, with_thanks
from bot.slack.responder import Responder

logger = logging.getLogger(__name__)


def register(app: App, responder: Responder) -> None:
    """Listen to the feedback buttons."""

    @app.action(VOTE_ACTION)
    def on_vote(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: Any,
                respond: Callable[..., Any]) -> None:
        """Record the vote (a second click changes it) and update the message."""
        ack()
        vote = "up" if action.get("action_id") == VOTE_UP else "down"
        user = (body.get("user") or {}).get("id") or ""
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message = body.get("message") or {}
        ts = message.get("ts") or (body.get("container") or {}).get("message_ts")
        answer_id = str(action.get("value") or "")
        try:
            up, down = responder.store.vote(answer_id, user, vote, channel, ts, fallback_answer=message.get("text", ""))
        except Exception:  # noqa: BLE001 - tell the user instead of failing silently
            logger.exception("storing a vote failed")
            respond(text="Sorry, your vote could not be saved.", response_type="ephemeral", replace_original=False)
            return
        blocks = message.get("blocks")
        if channel and ts and blocks:
            try:
                client.chat_update(channel=channel, ts=ts, text=message.get("text") or "Answer",
                                   blocks=with_thanks(blocks, user, vote, up, down))
                return
            except SlackApiError as exc:
                logger.warning("could not update the voted message: %s", exc.response.get("error"))
        respond(text="Thanks for the feedback!", response_type="ephemeral", replace_original=False)
