"""The Bolt app shared by both transports: tokens from Settings, retry dedupe, listeners."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient

from bot.answer.answerer import Answerer
from bot.config import ConfigError, Settings
from bot.slack.feedback import FeedbackStore
from bot.slack.listeners import register_all
from bot.slack.responder import Responder
from bot.slack.state import RecentKeys, ThreadRegistry

logger = logging.getLogger(__name__)

WORKERS = 4  # answers run here after the ack; each takes tens of milliseconds


class SlackConfigError(ConfigError):
    """A Slack token or secret is missing or malformed."""


def require(settings: Settings, *names: str) -> None:
    """Raise SlackConfigError naming each required Slack setting that is not set."""
    env = {"slack_bot_token": "SLACK_BOT_TOKEN", "slack_signing_secret": "SLACK_SIGNING_SECRET",
           "slack_app_token": "SLACK_APP_TOKEN"}
    missing = [env[n] for n in names if not getattr(settings, n)]
    if missing:
        raise SlackConfigError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
                               "see README.md, 'Add qabot to Slack'")
    if not settings.slack_bot_token.startswith("xoxb-"):
        raise SlackConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
    if "slack_app_token" in names and not settings.slack_app_token.startswith("xapp-"):
        raise SlackConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")


def _drop_retried_events(handled: RecentKeys) -> Callable[..., Any]:
    """Middleware: an event already received (Slack retries it when an ack is slow) is acked and dropped."""

    def drop_retried_events(body: dict[str, Any], request: Any, next: Callable[[], None]) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not handled.claim(f"event:{event_id}"):
            retry = (request.headers.get("x-slack-retry-num") or ["?"])[0] if request is not None else "?"
            logger.info("event %s already handled; retry %s ignored", event_id, retry)
            return BoltResponse(status=200, body="")
        return next()

    return drop_retried_events


def create_slack_app(settings: Settings, answerer: Answerer, *, socket_mode: bool = False,
                     store: FeedbackStore | None = None, token_verification: bool = False) -> App:
    """The Bolt app with every listener; HTTP mode needs the signing secret, Socket Mode does not."""
    require(settings, "slack_bot_token", "slack_app_token" if socket_mode else "slack_signing_secret")
    # urljoin semantics: without the trailing slash, ".../api" + "chat.postMessage" would drop "api"
    base_url = settings.slack_api_url.rstrip("/") + "/"
    client = WebClient(token=settings.slack_bot_token, base_url=base_url, timeout=10)
    app = App(
        client=client,
        # An explicit value, never None: Bolt would otherwise read SLACK_SIGNING_SECRET from the environment.
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=not socket_mode,
        token_verification_enabled=token_verification,
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="qabot-slack"),
        name="qabot",
        logger=logging.getLogger("bot.slack.bolt"),
    )
    if app.oauth_flow is not None:
        # Bolt switches to multi-workspace OAuth by itself when these are in the environment, ignoring our token.
        raise SlackConfigError("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set, which makes Bolt ignore "
                               "SLACK_BOT_TOKEN; qabot installs in one workspace with a bot token: unset them")
    store = store or FeedbackStore.for_settings(settings)
    handled = RecentKeys()
    responder = Responder(settings, answerer, store, ThreadRegistry(store), handled)
    app.use(_drop_retried_events(handled))
    register_all(app, responder)
    return app
