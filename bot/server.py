"""`qabot serve`: run the HTTP app with uvicorn, optionally watching the corpus."""

from __future__ import annotations

import logging
import os
import sys

from bot.config import ConfigError, Settings

logger = logging.getLogger(__name__)


class ServeError(SystemExit):
    """`qabot serve` cannot start; the message says why."""


def _configure_logging(level: str) -> None:
    """Serve logs at INFO (or QABOT_LOG_LEVEL) to stderr, one line per request from bot.api."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    wanted = getattr(logging, level, logging.INFO)
    root.setLevel(min(root.level or wanted, wanted))  # keep DEBUG from `qabot -v serve`
    for noisy in ("sentence_transformers", "transformers", "httpx", "faiss", "watchfiles"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _limit_torch_threads(threads: int) -> None:
    """Give each request one torch thread: requests already run in parallel, and on a busy machine a
    multi-thread team stalls on descheduled workers (10x slower /ask, see BENCHMARKS.md "HTTP latency")."""
    if threads <= 0:
        return
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    else:  # not imported yet (questions go through ONNX): torch reads this if a rebuild imports it
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def _start_watching(settings: Settings, maintainer: object) -> object:
    """Start bot.watch (issue 6) if it is installed; exit with a clear message if it is not."""
    try:
        from bot import watch
    except ModuleNotFoundError as exc:
        if exc.name in {"bot.watch", "watchfiles"}:
            raise ServeError(f"qabot serve --watch is not available in this build ({exc.name} is missing)") from exc
        raise
    return watch.start_watching(settings, maintainer)


def run_server(settings: Settings, watch: bool = False) -> None:
    """Serve the API, the web page and Slack HTTP events on settings.host:settings.port until stopped."""
    import uvicorn

    from bot.api import create_app

    _configure_logging(settings.log_level)
    _limit_torch_threads(settings.torch_threads)
    try:
        app = create_app(settings)
    except ConfigError as exc:  # e.g. SLACK_SIGNING_SECRET without SLACK_BOT_TOKEN: name it, no traceback
        raise ServeError(f"qabot serve cannot start: {exc}") from exc
    watcher = _start_watching(settings, app.state.maintainer) if watch else None
    logger.info("qabot serving on http://%s:%d (corpus %s, index %s)", settings.host, settings.port,
                settings.corpus_dir, settings.index_dir)
    try:
        # bot.api logs one structured line per request, so uvicorn's access log would only repeat it.
        uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="info",
                    log_config=None)
    finally:
        stop = getattr(watcher, "stop", None)
        if callable(stop):
            stop()
