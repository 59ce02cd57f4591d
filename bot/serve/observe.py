"""Per-request plumbing of the HTTP API: body size limit, Prometheus metrics, one log line per request, HEAD as
GET, and the security headers of every response."""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.answer.answerer import Answerer

logger = logging.getLogger("bot.serve.app")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 64 * 1024
# On every response: no MIME sniffing (a JSON error must never run as HTML), and no URL leaks to other sites.
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """Prometheus metrics of one app, in a registry of its own so several apps can coexist."""

    def __init__(self, answerer: Answerer) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("qabot_http_requests", "HTTP requests by route, method, status and answered.",
                                ["route", "method", "status", "answered"], registry=self.registry)
        self.latency = Histogram("qabot_http_request_duration_seconds", "HTTP request latency by route.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.answers = Counter("qabot_answers", "Answers given over HTTP, answered or not.", ["answered"],
                               registry=self.registry)

        def from_index(read: Callable[[Any], float]) -> Callable[[], float]:
            def value() -> float:
                return float(read(answerer.index)) if answerer.ready else 0.0
            return value

        Gauge("qabot_index_ready", "1 when an index is loaded.",
              registry=self.registry).set_function(lambda: 1.0 if answerer.ready else 0.0)
        Gauge("qabot_index_generation", "Generation number of the loaded index (0: none).",
              registry=self.registry).set_function(from_index(lambda ix: ix.generation))
        Gauge("qabot_index_chunks", "Passages in the loaded index.",
              registry=self.registry).set_function(from_index(lambda ix: len(ix.chunks)))
        Gauge("qabot_index_interviews", "Interviews in the loaded index.",
              registry=self.registry).set_function(from_index(lambda ix: len(ix.manifest.files)))

    def observe(self, route: str, method: str, status: int, seconds: float, answered: bool | None) -> None:
        """Count one finished request."""
        label = "n/a" if answered is None else str(answered).lower()
        self.requests.labels(route, method, str(status), label).inc()
        self.latency.labels(route).observe(seconds)
        if answered is not None:
            self.answers.labels(label).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


async def _send_error(send: Send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class ObserveRequests:
    """ASGI middleware: refuse bodies over the limit with 413, then time, count and log every request."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, log_questions: bool = False,
                 max_body: int = MAX_BODY_BYTES, known_paths: Callable[[], set[str]] | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.log_questions = log_questions
        self.max_body = max_body
        self.known_paths = known_paths or (lambda: set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        state = scope.setdefault("state", {})

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            replay = await self._read_body(scope, receive)
            if replay is None:
                await _send_error(send_observed, 413, f"request body is larger than {self.max_body} bytes")
            else:
                await self.app(scope, replay, send_observed)
        finally:
            self._finish(scope, state, status["code"], time.perf_counter() - started)

    async def _read_body(self, scope: Scope, receive: Receive) -> Receive | None:
        """Buffer the body (small by contract) and return a receive that replays it; None if too large."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > self.max_body:
                        return None
                except ValueError:
                    return None
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break  # disconnected; let the app see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if path is not None:
            return path
        return scope["path"] if scope["path"] in self.known_paths() else "unmatched"

    def _finish(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        route = self._route(scope)
        answered = state.get("answered")
        self.metrics.observe(route, scope["method"], status, seconds, answered)
        fields = {"route": route, "method": scope["method"], "status": status,
                  "latency_ms": round(seconds * 1000, 1), "answered": answered}
        if self.log_questions and state.get("question") is not None:
            fields["question"] = state["question"]
            logger.info("request route=%s method=%s status=%s latency_ms=%.1f answered=%s question=%r",
                        route, scope["method"], status, fields["latency_ms"], answered, state["question"],
                        extra=fields)
        else:
            logger.info("request route=%s method=%s status=%s latency_ms=%.1f answered=%s",
                        route, scope["method"], status, fields["latency_ms"], answered, extra=fields)


class HeadAsGet:
    """ASGI middleware: answer HEAD as GET would, without the body.

    FastAPI's routes list GET only (HEAD gets 405) and load balancers probe with HEAD. Status and headers,
    Content-Length included, are GET's; a path without GET still answers 405."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # A copy: the server holds the original scope, and must still see HEAD there (uvicorn then writes no body
        # and counts none against Content-Length).
        inner = {**scope, "method": "GET"}

        async def send_head(message: Message) -> None:
            if message["type"] in {"http.response.body", "http.response.pathsend"}:
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        try:
            await self.app(inner, receive, send_head)
        finally:
            if "route" in inner:  # the router set it on the copy; ObserveRequests labels metrics with it
                scope.setdefault("route", inner["route"])


class SecurityHeaders:
    """ASGI middleware: add SECURITY_HEADERS to every response that does not set them itself."""

    def __init__(self, app: ASGIApp, headers: tuple[tuple[bytes, bytes], ...] = SECURITY_HEADERS) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.headers if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secured)
