"""`qabot serve`: run the HTTP app with uvicorn, optionally watching the corpus."""

from __future__ import annotations

import logging
import os
import sys

from bot.config import ConfigError, Settings
from bot.serve.limits import http_limits

logger = logging.getLogger(__name__)


class ServeError(SystemExit):
    """`qabot serve` cannot start; the message says why."""


def _needs_build(settings: Settings) -> bool:
    """True when the index folder has no generation CURRENT can name (missing, or CURRENT itself is bad)."""
    from bot.index import generations

    try:
        return generations.current_generation(settings.index_dir) is None
    except generations.StoreError:
        return True


def _configure_logging(level: str) -> None:
    """Serve logs at INFO (or QABOT_LOG_LEVEL) to stderr, one line per request from bot.serve.app."""
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
    """Start bot.serve.watch (issue 6) if it is installed; exit with a clear message if it is not."""
    try:
        from bot.serve import watch
    except ModuleNotFoundError as exc:
        if exc.name in {"bot.serve.watch", "watchfiles"}:
            raise ServeError(f"qabot serve --watch is not available in this build ({exc.name} is missing)") from exc
        raise
    return watch.start_watching(settings, maintainer)


def worker_app() -> object:
    """The app of one `qabot serve --workers N` process, from the settings the parent put in the environment.

    It loads its index during startup, so uvicorn has it accept connections only once it can answer."""
    from bot.serve.app import create_app
    from bot.config import get_settings

    settings = get_settings()
    _configure_logging(settings.log_level)
    _limit_torch_threads(settings.torch_threads)
    try:
        return create_app(settings, load_before_serving=True)
    except ConfigError as exc:  # checked by the parent already; uvicorn's supervisor stops on this exit code
        from uvicorn.config import STARTUP_FAILURE

        logger.error("qabot serve cannot start: %s", exc)
        sys.exit(STARTUP_FAILURE)


def _run_workers(settings: Settings, watch: bool) -> None:
    """N uvicorn worker processes accept on one port, each with its own copy of the index (and its own GIL).

    uvicorn's supervisor replaces a worker that dies and stops when one cannot start its app. Workers never write
    the index: with --watch this (parent) process watches the corpus and builds new generations, and every worker
    picks each one up through its index poll (QABOT_INDEX_POLL_MS)."""
    import uvicorn

    from bot.answer.answerer import Answerer
    from bot.embed.embedders import settings_embedder
    from bot.index.build import build, prepare_query_encoder
    from bot.serve.app import create_app
    from bot.serve.maintainer import IndexMaintainer

    try:  # e.g. SLACK_SIGNING_SECRET without SLACK_BOT_TOKEN: say so once here, not once per worker
        create_app(settings)
    except ConfigError as exc:
        raise ServeError(f"qabot serve cannot start: {exc}") from exc
    # Spawned workers read their settings from the environment: pass on what the command line changed.
    os.environ.update(QABOT_HOST=settings.host, QABOT_PORT=str(settings.port), QABOT_LOG_LEVEL=settings.log_level,
                      QABOT_CORPUS_DIR=str(settings.corpus_dir), QABOT_INDEX_DIR=str(settings.index_dir),
                      QABOT_WORKERS="1")
    # One question at a time per process: with a process per core, more only contend (BENCHMARKS.md).
    os.environ.setdefault("QABOT_ANSWER_THREADS", "1")
    watcher = None
    # The index must exist before the workers start, or each would try to build it.
    if watch:
        os.environ["QABOT_INDEX_POLL_MS"] = str(min(settings.index_poll_ms, 500))
        maintainer = IndexMaintainer(Answerer(settings), poll_seconds=0)
        watcher = _start_watching(settings, maintainer)
        wait_ready = getattr(watcher, "wait_ready", None)
        if callable(wait_ready):
            wait_ready(timeout=600)
    elif _needs_build(settings):
        # A plain build also repairs a bad CURRENT or a damaged generation (bot/index/build.py).
        logger.info("no usable index in %s; building it from %s", settings.index_dir, settings.corpus_dir)
        build(settings.corpus_dir, settings.index_dir, settings_embedder(settings))
    else:  # an index made before the ONNX export existed: export once here, not once per worker (each with torch)
        prepare_query_encoder(settings_embedder(settings))
    logger.info("qabot serving on http://%s:%d with %d worker processes (corpus %s, index %s)", settings.host,
                settings.port, settings.workers, settings.corpus_dir, settings.index_dir)
    try:
        uvicorn.run("bot.serve.server:worker_app", factory=True, workers=settings.workers, host=settings.host,
                    port=settings.port, access_log=False, log_level="info", log_config=None, **http_limits(settings))
    finally:
        stop = getattr(watcher, "stop", None)
        if callable(stop):
            stop()


def run_server(settings: Settings, watch: bool = False) -> None:
    """Serve the API, the web page and Slack HTTP events on settings.host:settings.port until stopped."""
    import uvicorn

    from bot.serve.app import create_app

    _configure_logging(settings.log_level)
    _limit_torch_threads(settings.torch_threads)
    if settings.workers > 1:
        _run_workers(settings, watch)
        return
    try:
        app = create_app(settings)
    except ConfigError as exc:  # e.g. SLACK_SIGNING_SECRET without SLACK_BOT_TOKEN: name it, no traceback
        raise ServeError(f"qabot serve cannot start: {exc}") from exc
    watcher = _start_watching(settings, app.state.maintainer) if watch else None
    logger.info("qabot serving on http://%s:%d (corpus %s, index %s)", settings.host, settings.port,
                settings.corpus_dir, settings.index_dir)
    try:
        # bot.serve.app logs one structured line per request, so uvicorn's access log would only repeat it.
        uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="info",
                    log_config=None, **http_limits(settings))
    finally:
        stop = getattr(watcher, "stop", None)
        if callable(stop):
            stop()
