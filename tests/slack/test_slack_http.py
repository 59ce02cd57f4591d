"""Slack HTTP mode end to end: signed requests to the real /slack/events route, a fake Slack Web API."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from bot.answer.answerer import Answerer
from bot.config import Settings
from bot.slack.blocks import THANKS_BLOCK, VOTE_DOWN, VOTE_UP
from bot.slack.feedback import FeedbackStore
from tests.slack_fake import (BOT_ID, BOT_USER_ID, FakeSlack, action_body, check_message, command_body, event_body,
                              sign)

SECRET = "test-signing-secret"
PUBLIC_URL = "https://qabot.example.com"
CHANNEL = "C0GENERAL"
QUESTION = "why did Acme want scale to zero for batch workloads?"

INJECTION = """# Widgetd Adopter Interview - Initech

## Operations

### How do you announce widgetd outages?

We post <!channel> and <!here> alerts & ping <@U0BOSS> with <https://evil.example|a link> for every widgetd outage.
"""



def _settings(base: Settings, fake: FakeSlack) -> Settings:
    return base.replace(slack_bot_token="xoxb-test-token", slack_signing_secret=SECRET,
                        slack_api_url=fake.url, public_url=PUBLIC_URL)


def _make_app(settings: Settings, answerer: Answerer) -> Any:
    from bot.serve.app import create_app

    return create_app(settings, answerer)


@pytest.fixture
def slack_settings(fake_settings: Settings, fake_slack: FakeSlack) -> Settings:
    """Fixture-corpus settings with Slack HTTP mode configured against the fake Web API."""
    return _settings(fake_settings, fake_slack)


@pytest.fixture
def client(slack_settings: Settings, fake_answerer: Answerer) -> TestClient:
    """The real FastAPI app (create_app) with /slack/events mounted."""
    return TestClient(_make_app(slack_settings, fake_answerer))


def post_event(client: TestClient, event: dict[str, Any], event_id: str = "Ev001",
               headers: dict[str, str] | None = None, secret: str = SECRET, timestamp: int | None = None) -> Any:
    """POST a signed events API callback."""
    body = event_body(event, event_id)
    return client.post("/slack/events", content=body, headers={
        "Content-Type": "application/json", **sign(secret, body, timestamp), **(headers or {})})


def post_form(client: TestClient, body: str) -> Any:
    """POST a signed form-encoded request (slash commands, interactivity)."""
    return client.post("/slack/events", content=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body)})


def mention(text: str, ts: str = "1699999999.000100", **extra: Any) -> dict[str, Any]:
    """An app_mention event by a user in CHANNEL."""
    return {"type": "app_mention", "user": "U0ALICE", "text": f"<@{BOT_USER_ID}> {text}", "ts": ts,
            "channel": CHANNEL, "event_ts": ts, **extra}


def message(text: str, ts: str, channel: str = CHANNEL, channel_type: str = "channel", **extra: Any) -> dict[str, Any]:
    """A message event."""
    return {"type": "message", "user": "U0ALICE", "text": text, "ts": ts, "channel": channel,
            "channel_type": channel_type, "event_ts": ts, **extra}


def assert_valid_message(params: dict[str, Any]) -> None:
    """Slack's limits: fallback text set, ≤ 50 blocks, ≤ 3000 characters per section, valid buttons."""
    check_message(params)


def all_text(params: dict[str, Any]) -> str:
    """Everything a user could see in a posted message."""
    return json.dumps(params, ensure_ascii=False)


def test_mention_is_answered_in_thread_with_citations(client: TestClient, fake_slack: FakeSlack) -> None:
    started = time.monotonic()
    response = post_event(client, mention(QUESTION))
    assert response.status_code == 200
    assert time.monotonic() - started < 3.0
    post = fake_slack.wait_for("chat.postMessage")[0].params
    assert post["channel"] == CHANNEL
    assert post["thread_ts"] == "1699999999.000100"
    assert_valid_message(post)
    text = all_text(post)
    assert "*[1]* Knative · Acme Rockets" in text
    assert "scale to zero" in text
    assert f"{PUBLIC_URL}/#source=" in text
    actions = [b for b in post["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [VOTE_UP, VOTE_DOWN]
    eyes = fake_slack.wait_for("reactions.add")[0].params
    assert {k: eyes[k] for k in ("channel", "timestamp", "name")} == {
        "channel": CHANNEL, "timestamp": "1699999999.000100", "name": "eyes"}
    fake_slack.wait_for("reactions.remove")
    assert all(c.token == "xoxb-test-token" for c in fake_slack.calls_to("chat.postMessage"))


def test_ack_is_sent_before_the_answer_is_ready(client: TestClient, fake_slack: FakeSlack,
                                                fake_answerer: Answerer, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real_ask = fake_answerer.ask

    def slow_ask(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return real_ask(*args, **kwargs)

    monkeypatch.setattr(fake_answerer, "ask", slow_ask)
    response = post_event(client, mention(QUESTION))
    assert response.status_code == 200  # acked while the answer is still being worked out
    assert fake_slack.calls_to("chat.postMessage") == []
    release.set()
    fake_slack.wait_for("chat.postMessage")


def test_direct_message_is_answered_in_the_dm(client: TestClient, fake_slack: FakeSlack) -> None:
    post_event(client, message(QUESTION, "1699999999.000200", channel="D0ALICE", channel_type="im"))
    post = fake_slack.wait_for("chat.postMessage")[0].params
    assert post["channel"] == "D0ALICE"
    assert "thread_ts" not in post or post["thread_ts"] is None
    assert "Acme Rockets" in all_text(post)


def test_thread_follow_up_answered_only_in_the_bots_threads(client: TestClient, fake_slack: FakeSlack) -> None:
    root = "1699999999.000300"
    post_event(client, mention(QUESTION, ts=root), event_id="Ev1")
    fake_slack.wait_for("chat.postMessage")
    post_event(client, message("what key features do they use?", "1699999999.000301", thread_ts=root),
               event_id="Ev2")
    follow_up = fake_slack.wait_for("chat.postMessage", 2)[1].params
    assert follow_up["thread_ts"] == root
    assert_valid_message(follow_up)
    # a thread the bot never took part in: looked up, then ignored
    post_event(client, message("what key features do they use?", "1699999999.000401",
                               thread_ts="1699999999.000400"), event_id="Ev3")
    fake_slack.wait_for("conversations.replies")
    fake_slack.settle()
    assert len(fake_slack.calls_to("chat.postMessage")) == 2
    # a top-level channel message without a mention: ignored
    post_event(client, message(QUESTION, "1699999999.000500"), event_id="Ev4")
    fake_slack.settle()
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


def test_a_mention_brings_the_bot_into_a_thread_it_ignored(client: TestClient, fake_slack: FakeSlack) -> None:
    root = "1699999999.001000"
    for i, event_id in ((1, "EvT1"), (2, "EvT2")):
        post_event(client, message("people talking", f"1699999999.00100{i}", thread_ts=root), event_id=event_id)
    fake_slack.settle()
    assert len(fake_slack.calls_to("conversations.replies")) == 1  # "not ours" is remembered
    assert fake_slack.calls_to("chat.postMessage") == []
    post_event(client, {**mention(QUESTION, ts="1699999999.001003"), "thread_ts": root}, event_id="EvT3")
    fake_slack.wait_for("chat.postMessage")
    post_event(client, message("what key features do they use?", "1699999999.001004", thread_ts=root),
               event_id="EvT4")
    assert fake_slack.wait_for("chat.postMessage", 2)[1].params["thread_ts"] == root


def test_thread_known_from_slack_history_after_a_restart(client: TestClient, fake_slack: FakeSlack) -> None:
    root = "1699999999.000600"
    fake_slack.replies[root] = [{"ts": root, "user": "U0ALICE", "text": "question"},
                                {"ts": "1699999999.000601", "bot_id": BOT_ID, "user": BOT_USER_ID, "text": "answer"}]
    post_event(client, message("what key features do they use?", "1699999999.000602", thread_ts=root))
    post = fake_slack.wait_for("chat.postMessage")[0].params
    assert post["thread_ts"] == root


def test_mention_in_thread_arriving_also_as_message_is_answered_once(client: TestClient,
                                                                     fake_slack: FakeSlack) -> None:
    root, ts = "1699999999.000700", "1699999999.000701"
    post_event(client, mention(QUESTION, ts=root), event_id="EvA")
    fake_slack.wait_for("chat.postMessage")
    text = f"<@{BOT_USER_ID}> what key features do they use?"
    post_event(client, message(text, ts, thread_ts=root), event_id="EvB")
    post_event(client, {**mention("what key features do they use?", ts=ts), "thread_ts": root}, event_id="EvC")
    fake_slack.wait_for("chat.postMessage", 2)
    fake_slack.settle()
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


def test_slack_retry_never_produces_a_second_answer(client: TestClient, fake_slack: FakeSlack,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="bot.slack.app")
    first = post_event(client, mention(QUESTION), event_id="EvRetry")
    retry = post_event(client, mention(QUESTION), event_id="EvRetry",
                       headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert first.status_code == retry.status_code == 200
    fake_slack.wait_for("chat.postMessage")
    fake_slack.settle()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert any("EvRetry already handled; retry 1 ignored" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("event", [
    message(QUESTION, "1699999999.000801", channel="D0ALICE", channel_type="im", bot_id="B0OTHER"),
    message(QUESTION, "1699999999.000802", channel="D0ALICE", channel_type="im", bot_id=BOT_ID,
            user=BOT_USER_ID),
    {**message(QUESTION, "1699999999.000803", channel="D0ALICE", channel_type="im"), "subtype": "message_changed"},
    {**message(QUESTION, "1699999999.000804", channel="D0ALICE", channel_type="im"), "subtype": "message_deleted"},
    {**message("<@U0ALICE> has joined the channel", "1699999999.000805"), "subtype": "channel_join"},
    {**mention(QUESTION, ts="1699999999.000806"), "bot_id": "B0OTHER"},
], ids=["other-bot", "itself", "edit", "delete", "join", "bot-mention"])
def test_bot_messages_edits_deletions_and_joins_are_ignored(client: TestClient, fake_slack: FakeSlack,
                                                           event: dict[str, Any]) -> None:
    assert post_event(client, event).status_code == 200
    fake_slack.settle()
    assert fake_slack.calls_to("chat.postMessage") == []
    assert fake_slack.calls_to("reactions.add") == []


@pytest.mark.parametrize("how", ["forged", "stale", "unsigned"])
def test_bad_signatures_are_rejected(client: TestClient, fake_slack: FakeSlack, how: str) -> None:
    body = event_body(mention(QUESTION), "EvBad")
    if how == "forged":
        headers = sign("not-the-secret", body)
    elif how == "stale":
        headers = sign(SECRET, body, timestamp=int(time.time()) - 6 * 60)
    else:
        headers = {}
    response = client.post("/slack/events", content=body, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 401
    fake_slack.settle()
    assert fake_slack.calls_to("chat.postMessage") == []


def test_url_verification_challenge(client: TestClient) -> None:
    body = json.dumps({"token": "legacy", "challenge": "abc123", "type": "url_verification"})
    response = client.post("/slack/events", content=body,
                           headers={"Content-Type": "application/json", **sign(SECRET, body)})
    assert response.status_code == 200
    assert response.json()["challenge"] == "abc123"


def test_slash_command_without_text_gets_private_usage_help(client: TestClient, fake_slack: FakeSlack) -> None:
    response = post_form(client, command_body("   ", fake_slack.response_url))
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert "/ask" in body["text"]
    fake_slack.settle()
    assert fake_slack.calls_to("chat.postMessage") == []


def test_slash_command_acks_then_posts_the_answer(client: TestClient, fake_slack: FakeSlack) -> None:
    response = post_form(client, command_body(QUESTION, fake_slack.response_url))
    assert response.status_code == 200
    assert response.json()["response_type"] == "ephemeral"
    assert "Searching the interviews" in response.json()["text"]
    post = fake_slack.wait_for("chat.postMessage")[0].params
    assert post["channel"] == CHANNEL
    assert_valid_message(post)
    assert "<@U0ALICE> asked" in all_text(post)
    assert "*[1]*" in all_text(post)


def test_slash_command_in_a_channel_the_bot_is_not_in_answers_via_response_url(
        client: TestClient, fake_slack: FakeSlack) -> None:
    fake_slack.errors["chat.postMessage"] = "not_in_channel"
    post_form(client, command_body(QUESTION, fake_slack.response_url))
    hook = fake_slack.wait_for("response_url/hooks/response")[0].params
    assert hook["response_type"] == "in_channel"
    assert_valid_message(hook)


def _vote_payload(post: dict[str, Any], action_id: str, user: str, response_url: str) -> dict[str, Any]:
    answer_id = next(b for b in post["blocks"] if b["type"] == "actions")["elements"][0]["value"]
    return {"type": "block_actions", "user": {"id": user, "name": user.lower()}, "api_app_id": "A0QABOT",
            "team": {"id": "T0TEAM01"}, "channel": {"id": CHANNEL}, "container": {
                "type": "message", "message_ts": "1700000000.000001", "channel_id": CHANNEL},
            "message": {"ts": "1700000000.000001", "text": post["text"], "blocks": post["blocks"]},
            "response_url": response_url, "trigger_id": "1.2.3",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "qabot_feedback", "value": answer_id,
                         "action_ts": "1700000001.0"}]}


def test_feedback_vote_is_stored_once_and_can_be_changed(client: TestClient, fake_slack: FakeSlack,
                                                         slack_settings: Settings) -> None:
    post_event(client, mention(QUESTION))
    post = fake_slack.wait_for("chat.postMessage")[0].params
    assert post_form(client, action_body(_vote_payload(post, VOTE_UP, "U0BOB", fake_slack.response_url))
                     ).status_code == 200
    update = fake_slack.wait_for("chat.update")[0].params
    assert update["ts"] == "1700000000.000001" and update["channel"] == CHANNEL
    assert_valid_message(update)
    thanks = [b for b in update["blocks"] if b.get("block_id") == THANKS_BLOCK]
    assert len(thanks) == 1 and "<@U0BOB>" in json.dumps(thanks) and "👍 1 · 👎 0" in json.dumps(thanks,
                                                                                               ensure_ascii=False)
    # a second click changes the vote, it does not add one
    post_form(client, action_body(_vote_payload(update, VOTE_DOWN, "U0BOB", fake_slack.response_url)))
    second = fake_slack.wait_for("chat.update", 2)[1].params
    assert len([b for b in second["blocks"] if b.get("block_id") == THANKS_BLOCK]) == 1
    votes = FeedbackStore.for_settings(slack_settings).votes()
    assert [(v.user, v.vote) for v in votes] == [("U0BOB", "down")]
    assert votes[0].question == QUESTION
    assert votes[0].citations and votes[0].citations[0]["adopter"] == "Acme Rockets"
    assert votes[0].channel == CHANNEL


def test_failing_answer_posts_an_apology_in_the_thread(client: TestClient, fake_slack: FakeSlack,
                                                      fake_answerer: Answerer, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("index exploded")

    monkeypatch.setattr(fake_answerer, "ask", broken)
    post_event(client, mention(QUESTION))
    post = fake_slack.wait_for("chat.postMessage")[0].params
    assert post["thread_ts"] == "1699999999.000100"
    assert "Sorry" in post["text"]
    assert any("index exploded" in (r.exc_text or "") or "failed" in r.getMessage() for r in caplog.records)
    # the process keeps answering
    monkeypatch.undo()
    post_event(client, mention(QUESTION, ts="1699999999.000900"), event_id="Ev900")
    assert "Acme" in all_text(fake_slack.wait_for("chat.postMessage", 2)[1].params)


def test_empty_mention_gets_usage_help_in_thread(client: TestClient, fake_slack: FakeSlack) -> None:
    post_event(client, mention(""))
    post = fake_slack.wait_for("chat.postMessage")[0].params
    assert post["thread_ts"] == "1699999999.000100"
    assert "/ask" in post["text"]


def test_index_not_loaded_yet_says_so(fake_settings: Settings, fake_slack: FakeSlack) -> None:
    from tests.fakes import FakeEmbedder

    client = TestClient(_make_app(_settings(fake_settings, fake_slack), Answerer(fake_settings, FakeEmbedder())))
    post_event(client, mention(QUESTION))
    post = fake_slack.wait_for("chat.postMessage")[0].params
    assert post["thread_ts"] == "1699999999.000100" and "isn't loaded yet" in post["text"]


def test_overlong_question_is_refused_politely(client: TestClient, fake_slack: FakeSlack,
                                               slack_settings: Settings) -> None:
    post_event(client, mention("why " * slack_settings.max_question_chars))
    post = fake_slack.wait_for("chat.postMessage")[0].params
    assert f"under {slack_settings.max_question_chars}" in post["text"]
    assert "blocks" in post and all(b["type"] != "actions" for b in post["blocks"])


def test_corpus_text_cannot_ping_the_channel(fake_settings: Settings, fake_slack: FakeSlack) -> None:
    from tests.fakes import FakeEmbedder
    from bot.index.build import build

    (Path(fake_settings.corpus_dir) / "widgetd" / "widgetd-adopter-interview-initech.md").write_text(INJECTION)
    embedder = FakeEmbedder()
    build(fake_settings.corpus_dir, fake_settings.index_dir, embedder)
    answerer = Answerer(fake_settings, embedder=embedder)
    answerer.reload()
    client = TestClient(_make_app(_settings(fake_settings, fake_slack), answerer))
    post_event(client, mention("how do you announce widgetd outages alerts?"))
    post = fake_slack.wait_for("chat.postMessage")[0].params
    text = all_text(post)
    assert "Initech" in text
    assert "&lt;!channel&gt;" in text and "&lt;!here&gt;" in text and "&lt;@U0BOSS&gt;" in text
    assert "alerts &amp; ping" in text
    for raw in ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil.example"):
        assert raw not in text


def test_mount_is_off_without_a_signing_secret(fake_settings: Settings, fake_answerer: Answerer) -> None:
    client = TestClient(_make_app(fake_settings.replace(slack_bot_token="xoxb-only"), fake_answerer))
    assert client.post("/slack/events", content="{}").status_code in (404, 405)


def test_mount_with_a_secret_but_no_bot_token_stops_startup(fake_settings: Settings,
                                                            fake_answerer: Answerer) -> None:
    from bot.slack.app import SlackConfigError

    with pytest.raises(SlackConfigError, match="SLACK_BOT_TOKEN"):
        _make_app(fake_settings.replace(slack_signing_secret=SECRET), fake_answerer)


@contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    """Serve `app` with a real uvicorn on a free loopback port; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.slow
def test_real_model_answer_through_http_mode(real_settings: Settings, real_answerer: Answerer,
                                             fake_slack: FakeSlack, tmp_path: Path) -> None:
    """The real model and index behind a real uvicorn, Slack posting signed events over TCP."""
    import httpx

    settings = _settings(real_settings, fake_slack).replace(state_dir=tmp_path / "var")
    with uvicorn_server(_make_app(settings, real_answerer)) as base:
        body = event_body(mention("why do adopters value scale to zero?"), "EvReal1")
        started = time.monotonic()
        response = httpx.post(f"{base}/slack/events", content=body,
                              headers={"Content-Type": "application/json", **sign(SECRET, body)}, timeout=10)
        ack_seconds = time.monotonic() - started
        assert response.status_code == 200 and ack_seconds < 3.0
        post = fake_slack.wait_for("chat.postMessage", timeout=60)[0].params
        fake_slack.wait_for("reactions.remove")
        forged = httpx.post(f"{base}/slack/events", content=body,
                            headers={"Content-Type": "application/json", **sign("wrong", body)}, timeout=10)
        assert forged.status_code == 401
    assert_valid_message(post)
    text = all_text(post)
    expected = real_answerer.ask("why do adopters value scale to zero?", settings.top_k)
    assert expected.answered and "Sources" in text
    for c in expected.citations:  # every citation of the core's answer, rendered with its link
        assert f"*[{c.n}]* {c.project} · {c.adopter}" in text
        assert f"{PUBLIC_URL}/#source={c.chunk_id}" in text
