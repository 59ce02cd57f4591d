"""A tiny ASGI app for tests/test_workers.py: of the workers started, the first is not ready for a few seconds.

Each worker process makes its own app; the first to create READY_APP_MARKER is the slow one. `/` answers 200
with the worker's pid once that worker is ready, 503 before (as qabot's own /ask does before its index loads)."""

from __future__ import annotations

import os
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.serve.workers import READY_KEY, WORKERS_READY_KEY


def make_app() -> Starlette:
    """The app of one worker."""
    try:
        os.close(os.open(os.environ["READY_APP_MARKER"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        delay = float(os.environ.get("READY_APP_DELAY", "5"))
    except FileExistsError:
        delay = 0.0
    ready_at = time.monotonic() + delay

    def ready() -> bool:
        return time.monotonic() >= ready_at

    async def whoami(request: Request) -> JSONResponse:
        counted = request.scope["state"].get(WORKERS_READY_KEY)
        return JSONResponse({"pid": os.getpid(), "workers_ready": counted()[0] if counted else None},
                            status_code=200 if ready() else 503)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {READY_KEY: ready}

    return Starlette(routes=[Route("/", whoami), Route("/healthz", whoami)], lifespan=lifespan)
