"""A local fake of Slack's Web API (and response_url endpoint) that records every call, plus request signing."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

BOT_USER_ID = "UQABOT01"
BOT_ID = "BQABOT01"
TEAM_ID = "T0TEAM01"


@dataclass
class Call:
    """One recorded request: the API method and its parameters (JSON or form, decoded)."""

    method: str
    params: dict[str, Any]
    token: str | None = None


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass
class FakeSlack:
    """Serves /api/<method> on 127.0.0.1 like Slack would (the subset qabot uses) and records the calls."""

    ws_url: str | None = None  # what apps.connections.open returns
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # thread_ts -> messages
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> top-level messages
    errors: dict[str, str] = field(default_factory=dict)  # method -> Slack error to return
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ts = 0
        self._server: ThreadingHTTPServer | None = None

    # -- server lifecycle
    def start(self) -> "FakeSlack":
        """Listen on a free loopback port in a background thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or "{}")
                else:
                    params = {k: _decode(v) for k, v in parse_qsl(raw, keep_blank_values=True)}
                auth = self.headers.get("Authorization") or ""
                token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("token")
                method = self.path.split("?")[0]
                method = method[len("/api/"):] if method.startswith("/api/") else "response_url" + method
                body = fake._respond(Call(method, params, token))
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True).start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        """Base URL to use as SLACK_API_URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    @property
    def response_url(self) -> str:
        """A response_url (slash commands, actions) that this server records as method `response_url/...`."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/response"

    # -- Slack behaviour
    def _next_ts(self) -> str:
        self._ts += 1
        return f"1700000000.{self._ts:06d}"

    def _respond(self, call: Call) -> dict[str, Any]:
        with self._lock:
            self.calls.append(call)
            if call.method in self.errors:
                return {"ok": False, "error": self.errors[call.method]}
            p = call.params
            if call.method == "auth.test":
                return {"ok": True, "url": "https://qabot-test.slack.com/", "team": "Test", "user": "qabot",
                        "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}
            if call.method == "chat.postMessage":
                ts = self._next_ts()
                return {"ok": True, "channel": p.get("channel"), "ts": ts,
                        "message": {"ts": ts, "text": p.get("text"), "bot_id": BOT_ID, "user": BOT_USER_ID}}
            if call.method == "chat.update":
                return {"ok": True, "channel": p.get("channel"), "ts": p.get("ts"), "text": p.get("text")}
            if call.method == "chat.postEphemeral":
                return {"ok": True, "message_ts": self._next_ts()}
            if call.method == "conversations.replies":
                return {"ok": True, "messages": self.replies.get(str(p.get("ts")), []), "has_more": False}
            if call.method == "conversations.history":
                oldest, latest = float(p.get("oldest") or 0), float(p.get("latest") or "inf")
                shown = [m for m in self.history.get(str(p.get("channel")), []) if oldest < float(m["ts"]) < latest]
                return {"ok": True, "messages": sorted(shown, key=lambda m: float(m["ts"]), reverse=True),
                        "has_more": False}
            if call.method == "apps.connections.open":
                return {"ok": True, "url": self.ws_url}
            return {"ok": True}

    # -- assertions
    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method, oldest first."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 15.0,
                 where: Callable[[Call], bool] | None = None) -> list[Call]:
        """Poll until at least `count` calls of `method` (matching `where`) arrived; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(method) if where is None or where(c)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = [c.method for c in self.calls]
                raise AssertionError(f"expected {count} {method} call(s) within {timeout}s; got {len(found)}; "
                                     f"calls so far: {seen}")
            time.sleep(0.02)

    def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until no new call has arrived for `quiet` seconds (to check that nothing more is posted)."""
        deadline = time.monotonic() + timeout
        last = -1
        since = time.monotonic()
        while time.monotonic() < deadline:
            with self._lock:
                n = len(self.calls)
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.02)


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends with a request: X-Slack-Request-Timestamp and the v0 HMAC-SHA256 signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def event_body(event: dict[str, Any], event_id: str) -> str:
    """An events API callback (JSON) wrapping `event`."""
    return json.dumps({"token": "legacy", "team_id": TEAM_ID, "api_app_id": "A0QABOT", "type": "event_callback",
                       "event_id": event_id, "event_time": int(time.time()), "event": event,
                       "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}]})


def command_body(text: str, response_url: str, command: str = "/ask", channel: str = "C0GENERAL") -> str:
    """A slash command request (form-encoded)."""
    return urlencode({"token": "legacy", "team_id": TEAM_ID, "channel_id": channel, "channel_name": "general",
                      "user_id": "U0ALICE", "user_name": "alice", "command": command, "text": text,
                      "api_app_id": "A0QABOT", "response_url": response_url, "trigger_id": "1.2.3"})


def action_body(payload: dict[str, Any]) -> str:
    """An interactivity request (form-encoded `payload=` JSON)."""
    return urlencode({"payload": json.dumps(payload)})


BLOCK_TYPES = {"section", "context", "divider", "actions", "header"}


def check_message(params: dict[str, Any]) -> None:
    """Assert Slack's Block Kit rules for a posted message: fallback text, ≤ 50 blocks, section and context
    texts 1-3000 characters, unique block ids, buttons with short labels and values."""
    assert params.get("text"), "the plain-text fallback must always be set"
    blocks = params.get("blocks") or []
    assert 0 < len(blocks) <= 50, f"{len(blocks)} blocks"
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(ids) == len(set(ids)), f"duplicate block ids {ids}"
    for b in blocks:
        assert b["type"] in BLOCK_TYPES, b["type"]
        if b["type"] == "section":
            assert b["text"]["type"] == "mrkdwn" and 0 < len(b["text"]["text"]) <= 3000
        elif b["type"] == "context":
            assert 0 < len(b["elements"]) <= 10
            assert all(0 < len(e["text"]) <= 3000 for e in b["elements"])
        elif b["type"] == "actions":
            assert 0 < len(b["elements"]) <= 25
            for e in b["elements"]:
                assert e["type"] == "button" and len(e["text"]["text"]) <= 75 and len(e["value"]) <= 2000
                assert len(e["action_id"]) <= 255
