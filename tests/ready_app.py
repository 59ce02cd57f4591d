"""A tiny ASGI app for tests/serve/test_workers.py: of the workers started, the first takes a few seconds to start.

Each worker process makes its own app; the first to create READY_APP_MARKER is the slow one. Its lifespan
startup sleeps READY_APP_DELAY seconds first, as qabot's own startup does while it loads the index
(`create_app(load_before_serving=True)`). `/` answers 200 with the worker's pid."""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def make_app() -> Starlette:
    """The app of one worker."""
    try:
        os.close(os.open(os.environ["READY_APP_MARKER"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        delay = float(os.environ.get("READY_APP_DELAY", "5"))
    except FileExistsError:
        delay = 0.0

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"pid": os.getpid()})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.sleep(delay)
        yield

    return Starlette(routes=[Route("/", whoami), Route("/healthz", whoami)], lifespan=lifespan)
