"""Slack Socket Mode end to end: a local WebSocket server stands in for Slack's, the fake Web API for the rest."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from bot.answer.answerer import Answerer
from bot.config import Settings, get_settings
from bot.slack.socket import start_socket_mode
from tests.conftest import ROOT
from tests.fakes import FAKE_MODEL
from tests.slack_fake import BOT_USER_ID, TEAM_ID, FakeSlack, event_body


class FakeSocketServer:
    """A WebSocket server in a thread: sends queued envelopes to the client and records what it sends back."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.connections = 0
        self._outbox: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future[None] | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="fake-slack-ws", daemon=True)

    def start(self) -> "FakeSocketServer":
        """Run the server on a free loopback port."""
        self._thread.start()
        assert self._ready.wait(10), "the fake WebSocket server did not start"
        return self

    def stop(self) -> None:
        """Stop the server and its loop."""
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(5)

    def send(self, envelope: dict[str, Any]) -> None:
        """Queue an envelope for the connected client."""
        self._outbox.append(envelope)

    @property
    def url(self) -> str:
        """What apps.connections.open returns."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket=test"

    def _run(self) -> None:
        from websockets.asyncio.server import serve

        async def handler(ws: Any) -> None:
            self.connections += 1
            await ws.send(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A0QABOT"}}))

            async def pump() -> None:
                while True:
                    while self._outbox:
                        await ws.send(json.dumps(self._outbox.pop(0)))
                    await asyncio.sleep(0.02)

            sender = asyncio.ensure_future(pump())
            try:
                async for raw in ws:
                    self.received.append(json.loads(raw))
            except Exception:  # noqa: BLE001 - the client closing is the normal end
                pass
            finally:
                sender.cancel()

        async def main() -> None:
            self._stop = self._loop.create_future()
            async with serve(handler, "127.0.0.1", 0) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._ready.set()
                await self._stop

        self._loop.run_until_complete(main())

    def wait_for_ack(self, envelope_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """Poll until the client acked `envelope_id`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in list(self.received):
                if message.get("envelope_id") == envelope_id:
                    return message
            time.sleep(0.02)
        raise AssertionError(f"no ack for {envelope_id}; received {self.received}")



@pytest.fixture
def socket_server(fake_slack: FakeSlack) -> Iterator[FakeSocketServer]:
    """The fake Socket Mode endpoint, returned by the fake apps.connections.open."""
    server = FakeSocketServer().start()
    fake_slack.ws_url = server.url
    yield server
    server.stop()


@pytest.fixture
def socket_settings(fake_settings: Settings, fake_slack: FakeSlack) -> Settings:
    """Socket Mode settings (no signing secret) against the fakes."""
    return fake_settings.replace(slack_bot_token="xoxb-test-token", slack_app_token="xapp-1-test-token",
                                 slack_api_url=fake_slack.url)


def test_socket_mode_acks_the_envelope_and_posts_the_answer(socket_settings: Settings, fake_answerer: Answerer,
                                                            fake_slack: FakeSlack,
                                                            socket_server: FakeSocketServer) -> None:
    handler = start_socket_mode(socket_settings, fake_answerer)
    try:
        opened = fake_slack.wait_for("apps.connections.open")[0]
        assert opened.token == "xapp-1-test-token"
        event = {"type": "app_mention", "user": "U0ALICE", "channel": "C0GENERAL", "ts": "1699999999.000100",
                 "event_ts": "1699999999.000100",
                 "text": f"<@{BOT_USER_ID}> why did Acme want scale to zero for batch workloads?"}
        socket_server.send({"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": False,
                            "retry_attempt": 0, "retry_reason": "", "payload": json.loads(event_body(event, "EvS1"))})
        socket_server.wait_for_ack("env-1")
        post = fake_slack.wait_for("chat.postMessage")[0]
        assert post.token == "xoxb-test-token"
        assert post.params["thread_ts"] == "1699999999.000100"
        assert "Acme Rockets" in json.dumps(post.params)
        # the same slash-command listener as HTTP mode: usage help comes back in the ack payload
        socket_server.send({"envelope_id": "env-2", "type": "slash_commands", "accepts_response_payload": True,
                            "payload": {"command": "/ask", "text": "", "user_id": "U0ALICE", "team_id": TEAM_ID,
                                        "channel_id": "C0GENERAL", "response_url": fake_slack.response_url}})
        ack = socket_server.wait_for_ack("env-2")
        assert ack["payload"]["response_type"] == "ephemeral" and "/ask" in ack["payload"]["text"]
    finally:
        handler.close()


def test_socket_mode_needs_both_tokens(fake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import main

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    result = CliRunner().invoke(main, ["slack"])
    assert result.exit_code != 0
    assert "SLACK_APP_TOKEN" in result.output
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-test")
    get_settings.cache_clear()
    result = CliRunner().invoke(main, ["slack"])
    assert result.exit_code != 0 and "SLACK_BOT_TOKEN" in result.output


def test_socket_mode_with_a_rejected_token_stops_with_a_message(
        fake_settings: Settings, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import main
    from tests.fakes import FakeEmbedder
    from bot.index.build import build

    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    fake_slack.errors["auth.test"] = "invalid_auth"
    for name, value in {"SLACK_BOT_TOKEN": "xoxb-revoked", "SLACK_APP_TOKEN": "xapp-1-test",
                        "SLACK_API_URL": fake_slack.url, "QABOT_MODEL": FAKE_MODEL,
                        "QABOT_CORPUS_DIR": str(fake_settings.corpus_dir),
                        "QABOT_INDEX_DIR": str(fake_settings.index_dir)}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["slack"])
    assert result.exit_code != 0
    assert "cannot connect to Slack" in result.output and "invalid_auth" in result.output


def test_qabot_slack_process_answers_and_stops_on_sigterm(fake_settings: Settings, fake_answerer: Answerer,
                                                          fake_slack: FakeSlack,
                                                          socket_server: FakeSocketServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_"))}
    env.update({"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_APP_TOKEN": "xapp-1-test-token",
                "SLACK_API_URL": fake_slack.url, "QABOT_MODEL": FAKE_MODEL, "HF_HUB_OFFLINE": "1",
                "QABOT_CORPUS_DIR": str(fake_settings.corpus_dir), "QABOT_INDEX_DIR": str(fake_settings.index_dir),
                "QABOT_STATE_DIR": str(fake_settings.state_dir)})
    proc = subprocess.Popen([sys.executable, "-m", "bot", "slack", "--watch"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        fake_slack.wait_for("apps.connections.open", timeout=60)
        event = {"type": "app_mention", "user": "U0ALICE", "channel": "C0GENERAL", "ts": "1699999999.000200",
                 "text": f"<@{BOT_USER_ID}> what key features does Acme use?"}
        socket_server.send({"envelope_id": "env-p1", "type": "events_api", "accepts_response_payload": False,
                            "payload": json.loads(event_body(event, "EvP1"))})
        socket_server.wait_for_ack("env-p1", timeout=30)
        post = fake_slack.wait_for("chat.postMessage", timeout=30)[0]
        assert post.params["thread_ts"] == "1699999999.000200" and "Acme Rockets" in json.dumps(post.params)
        fake_slack.wait_for("reactions.remove")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "connected to Slack" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
