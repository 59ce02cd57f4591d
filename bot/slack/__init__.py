"""Slack transport (slack-bolt): listeners, Block Kit rendering, feedback store; HTTP mode and Socket Mode."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


def mount(app: Any, settings: Any, answerer: Any) -> bool:
    """Add `POST /slack/events` to a FastAPI/Starlette app when Slack HTTP mode is configured; True if mounted.

    Off (False) without SLACK_SIGNING_SECRET; with the secret but no SLACK_BOT_TOKEN it raises SlackConfigError
    naming the missing variable, so a half-configured HTTP mode stops startup instead of failing silently."""
    if not settings.slack_signing_secret:
        if settings.slack_bot_token:
            logger.info("Slack HTTP events are off: SLACK_SIGNING_SECRET is not set (Socket Mode: `qabot slack`)")
        return False

    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response

    from bot.slack.app import create_slack_app

    bolt_app = create_slack_app(settings, answerer)

    async def slack_events(request: Request) -> Response:
        """Slack's HTTP mode: events, slash commands and interactivity, signature-verified by Bolt."""
        body = await request.body()
        # dispatch verifies, acks and hands the work to Bolt's thread pool; keep it off the event loop
        bolt_response = await run_in_threadpool(bolt_app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    app.add_route(EVENTS_PATH, slack_events, methods=["POST"], include_in_schema=False)
    app.state.slack_app = bolt_app
    return True
