"""Limits on each HTTP request that uvicorn does not set itself: head size, and time for the head and body."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from bot.config import Settings

logger = logging.getLogger(__name__)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request head over the limit."""


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol with two limits on each request head (request line and headers).

    uvicorn 0.55 has neither for httptools, the protocol it picks (qabot depends on uvicorn[standard], which
    brings httptools): its `h11_max_incomplete_event_size` applies to h11 only, so a 32 MB header was read in
    full and answered 200; and `timeout_keep_alive` runs only between requests, so a connection that opens and
    sends nothing, or part of a head, stays open for good (slowloris). Here:

    - size: a head over `max_header_bytes` is answered 431 and the connection closed. Counted twice: the bytes
      received while a head is incomplete (so an endless head stops being read early; only when a head begins
      in the middle of a read does the rest of that read, at most 256 KB, go uncounted), and the request line
      and header fields as parsed (so a big head that arrives all in one read is caught too).
    - time: `header_timeout` seconds to send a whole head, counted from the connection (first request) or from
      the first byte of the request (later ones); then the connection is closed.
    - body time: `body_timeout` seconds, from the end of the head, to send the whole body (bodies are at most
      64 KiB, observe.MAX_BODY_BYTES); then the connection is closed and the app sees a disconnect. uvicorn
      waits for a body that stops half way for good (a slow POST held a connection open past 100 s).
    """

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, max_header_bytes: int = 64 * 1024,
                 max_header_count: int = 100,
                 header_timeout: float = 10.0, body_timeout: float = 30.0) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count
        self._head_fields = 0  # header fields of the current head
        self.header_timeout = header_timeout
        self._head_deadline: asyncio.TimerHandle | None = None
        self.body_timeout = body_timeout
        self._body_deadline: asyncio.TimerHandle | None = None
        self._head_received: int | None = 0  # bytes received since the current head began; None between heads
        self._head_parsed = 0  # bytes of the current head's request line and header fields
        self._head_too_large = False
        self._refused = False  # a head was refused: read nothing more from this connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._clear_head_deadline()
        self._clear_body_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._head_received is not None:
            self._head_received += len(data)
        super().data_received(data)
        # Still inside a head after parsing: every byte since it began is part of it.
        if (self._head_received is not None and self._head_received > self.max_header_bytes
                and not self._refused and not self.transport.is_closing()):
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_received is None:
            self._head_received = 0
        self._head_parsed = 0
        self._head_fields = 0
        self._arm_head_deadline()

    def on_url(self, url: bytes) -> None:
        self._count_parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        if self._head_fields > self.max_header_count:
            # Many tiny headers cost more per byte than one big one (a dict entry and a tuple each).
            self._head_too_large = True
            raise _HeadTooLarge
        self._count_parsed(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._clear_head_deadline()
        self._head_received = None
        super().on_headers_complete()
        # Cleared by on_message_complete, which httptools calls at once for a request without a body.
        self._clear_body_deadline()
        self._body_deadline = self.loop.call_later(self.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._clear_body_deadline()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers 400 to every parser error; the one _count_parsed raised is a 431."""
        if self._head_too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _count_parsed(self, size: int) -> None:
        self._head_parsed += size
        if self._head_parsed > self.max_header_bytes:
            self._head_too_large = True
            raise _HeadTooLarge  # httptools stops parsing; uvicorn then calls send_400_response

    def _response_pending(self) -> bool:
        """A response (to this request or one pipelined before it) is still to be sent."""
        return self.cycle is not None and not self.cycle.response_complete

    def _refuse_head(self) -> None:
        """Answer 431 and close; behind a pipelined response still to be sent, close once it is sent instead
        (a 431 now would come before that response)."""
        self._refused = True
        if self._response_pending():
            self.cycle.keep_alive = False
            return
        logger.info("refused a request head over %d bytes from %s", self.max_header_bytes, self.client)
        body = (f"Request header fields too large (over {self.max_header_bytes} bytes or "
                f"{self.max_header_count} fields)").encode()
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"content-type: text/plain; charset=utf-8\r\n",
                        b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n",
                        b"\r\n", body])
        self.transport.write(b"".join(content))
        self.transport.close()

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _clear_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if self._response_pending():
            self.cycle.keep_alive = False  # a late head pipelined behind a response: close once that is sent
            return
        logger.debug("closed a connection from %s: no complete request head within %.1f s", self.client,
                     self.header_timeout)
        self.transport.close()


    def _clear_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _body_timed_out(self) -> None:
        self._body_deadline = None
        if self.transport.is_closing():
            return
        if self.pipeline:  # the body waits behind a pipelined request's response (reading is paused): not late
            self._body_deadline = self.loop.call_later(self.body_timeout, self._body_timed_out)
            return
        logger.info("closed a connection from %s: request body not complete within %.1f s", self.client,
                    self.body_timeout)
        self.transport.close()


def http_limits(settings: Settings) -> dict[str, Any]:
    """The uvicorn.Config arguments that put the settings' limits on every request (head and body).

    uvicorn calls `http` to make each connection's protocol; a partial carries the limits and, unlike a
    class made on the fly, pickles by name into `--workers` processes."""
    return {"http": functools.partial(HeadLimitedProtocol, max_header_bytes=settings.max_header_bytes,
                                      max_header_count=settings.max_header_count,
                                      header_timeout=settings.header_timeout_s,
                                      body_timeout=settings.body_timeout_s)}
