"""`qabot slack`: the bot over Socket Mode (no public URL needed), with the same listeners as HTTP mode."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from bot.answer.answerer import Answerer
from bot.config import Settings
from bot.slack.app import SlackConfigError, create_slack_app, require

logger = logging.getLogger(__name__)


def start_socket_mode(settings: Settings, answerer: Answerer) -> Any:
    """Connect to Slack over Socket Mode and return the (already connected) handler; `.close()` ends it."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    # auth.test at startup: a wrong or revoked bot token stops here, not at the first question
    app = create_slack_app(settings, answerer, socket_mode=True, token_verification=True)
    handler = SocketModeHandler(app, app_token=settings.slack_app_token)
    handler.connect()
    return handler


def _configure_logging(level: str) -> None:
    """INFO lines (connections, answers) for a long-running bot, unless `qabot -v` asked for more."""
    root = logging.getLogger()
    wanted = getattr(logging, level, logging.INFO)
    if root.level > wanted:
        root.setLevel(wanted)
    for noisy in ("sentence_transformers", "transformers", "faiss", "slack_sdk"):
        logging.getLogger(noisy).setLevel(max(wanted, logging.WARNING))


def run_socket_mode(settings: Settings, watch: bool = False) -> None:
    """Run until interrupted (Ctrl+C or SIGTERM): load the index, keep it fresh, answer over Socket Mode."""
    import click
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    from bot.serve.maintainer import IndexMaintainer
    from bot.index.store import StoreError

    try:
        require(settings, "slack_bot_token", "slack_app_token")
    except SlackConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    _configure_logging(settings.log_level)
    answerer = Answerer(settings)
    try:
        answerer.reload()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    warm_up = getattr(answerer.embedder, "warm_up", None)
    if callable(warm_up):
        warm_up()  # load the model now, not on the first question
    maintainer = IndexMaintainer(answerer)
    maintainer.start()
    watcher = None
    if watch:
        try:
            from bot.serve.watch import start_watching
        except ImportError as exc:
            maintainer.stop()
            raise click.ClickException(f"--watch is not available in this installation ({exc})") from exc
        watcher = start_watching(settings, maintainer)
    stop = threading.Event()
    handler = None
    try:
        try:
            handler = start_socket_mode(settings, answerer)
        except (BoltError, SlackApiError) as exc:
            raise click.ClickException(f"cannot connect to Slack: {exc}") from exc
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        logger.info("connected to Slack over Socket Mode (index generation %s)", answerer.index.generation)
        click.echo("qabot is connected to Slack (Socket Mode). Press Ctrl+C to stop.", err=True)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        if handler is not None:
            handler.close()
        if watcher is not None:
            watcher.stop()
        maintainer.stop()
