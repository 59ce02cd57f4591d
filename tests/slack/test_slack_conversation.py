"""Slack conversations end to end: signed events, the fake Web API serving the thread (conversations.replies) and
the DM (conversations.history); follow-ups reach the answerer with their earlier questions, oldest first."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.answer.answerer import Answerer
from bot.config import Settings
from bot.slack.blocks import answer_message
from tests.slack.test_slack_http import _make_app, _settings, mention, message, post_event, post_form
from tests.slack_fake import BOT_ID, BOT_USER_ID, FakeSlack, check_message, command_body

QUESTION = "why did Acme want scale to zero for batch workloads?"
DM = "D0ALICE"

Asked = list[tuple[str, list[str]]]


@pytest.fixture
def asked(fake_answerer: Answerer, monkeypatch: pytest.MonkeyPatch) -> Asked:
    """Every question the answerer gets, with its history; a follow-up is "resolved" by naming its first turn."""
    calls: Asked = []
    real_ask = fake_answerer.ask

    def ask(question: str, top_k: int = 5, project: str | None = None, adopter: str | None = None,
            history: Any = ()) -> Any:
        calls.append((question, list(history)))
        answer = real_ask(question, top_k, project, adopter, history=history)
        if history:  # stands in for the resolver, which the answering core owns
            answer = dataclasses.replace(answer, resolved_question=f"{question} (about: {history[0]})")
        return answer

    monkeypatch.setattr(fake_answerer, "ask", ask)
    return calls


@pytest.fixture
def slack_settings(fake_settings: Settings, fake_slack: FakeSlack) -> Settings:
    return _settings(fake_settings, fake_slack)


@pytest.fixture
def client(slack_settings: Settings, fake_answerer: Answerer, asked: Asked) -> TestClient:
    return TestClient(_make_app(slack_settings, fake_answerer))


def _user(ts: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "user": "U0ALICE", "text": text, "ts": ts, **extra}


def _bot(ts: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "bot_id": BOT_ID, "user": BOT_USER_ID, "text": "an answer", "ts": ts, **extra}


def _follow_up(client: TestClient, fake: FakeSlack, root: str, ts: str, text: str, event_id: str,
               posts: int) -> dict[str, Any]:
    """Slack has the message in the thread before it sends the event; then the bot's answer joins the thread."""
    fake.replies[root].append(_user(ts, text, thread_ts=root))
    post_event(client, message(text, ts, thread_ts=root), event_id=event_id)
    post = fake.wait_for("chat.postMessage", posts)[posts - 1].params
    fake.replies[root].append(_bot(f"{ts}9", thread_ts=root))
    return post


def test_thread_follow_ups_carry_the_earlier_questions(client: TestClient, fake_slack: FakeSlack,
                                                       asked: Asked) -> None:
    root = "1699999999.100000"
    fake_slack.replies[root] = [_user(root, f"<@{BOT_USER_ID}> {QUESTION}")]
    post_event(client, mention(QUESTION, ts=root), event_id="EvC1")
    first = fake_slack.wait_for("chat.postMessage")[0].params
    assert "Understood as" not in json.dumps(first)  # a first question stands alone
    fake_slack.replies[root].append(_bot("1699999999.100001", thread_ts=root))

    second = _follow_up(client, fake_slack, root, "1699999999.100002", "what key features do they use?", "EvC2", 2)
    assert second["thread_ts"] == root
    # Slack retries the event; then the question is edited (message_changed): neither is a new turn
    post_event(client, message("what key features do they use?", "1699999999.100002", thread_ts=root),
               event_id="EvC2", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    fake_slack.replies[root][2]["text"] = "what key features do they use today?"
    post_event(client, {**message("what key features do they use today?", "1699999999.100003", thread_ts=root),
                        "subtype": "message_changed"}, event_id="EvC3")
    fake_slack.settle()
    assert len(fake_slack.calls_to("chat.postMessage")) == 2

    third = _follow_up(client, fake_slack, root, "1699999999.100004", "how long have they used it?", "EvC4", 3)
    assert asked == [
        (QUESTION, []),
        ("what key features do they use?", [QUESTION]),
        ("how long have they used it?", [QUESTION, "what key features do they use today?"]),
    ]
    check_message(third)
    contexts = [e["text"] for b in third["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert f"_Understood as: how long have they used it? (about: {QUESTION})_" in contexts
    answer_at = next(i for i, b in enumerate(third["blocks"]) if b.get("block_id", "").startswith("qabot_answer"))
    assert "Understood as" in json.dumps(third["blocks"][answer_at + 1])  # right under the answer


def test_chatter_before_the_mention_is_not_part_of_the_conversation(client: TestClient, fake_slack: FakeSlack,
                                                                     asked: Asked) -> None:
    root = "1699999999.200000"
    fake_slack.replies[root] = [_user(root, "anyone know about Acme?"), _user("1699999999.200001", "no idea",
                                                                               thread_ts=root)]
    ts = "1699999999.200002"
    fake_slack.replies[root].append(_user(ts, f"<@{BOT_USER_ID}> {QUESTION}", thread_ts=root))
    post_event(client, {**mention(QUESTION, ts=ts), "thread_ts": root}, event_id="EvP1")
    fake_slack.wait_for("chat.postMessage")
    fake_slack.replies[root].append(_bot("1699999999.200003", thread_ts=root))
    _follow_up(client, fake_slack, root, "1699999999.200004", "what key features do they use?", "EvP2", 2)
    assert asked == [(QUESTION, []), ("what key features do they use?", [QUESTION])]


def test_thread_under_a_slash_command_answer_starts_from_its_question(client: TestClient, fake_slack: FakeSlack,
                                                                      asked: Asked) -> None:
    post_form(client, command_body(QUESTION, fake_slack.response_url))
    fake_slack.wait_for("chat.postMessage")
    root = "1700000000.000001"  # the fake's ts of the bot's answer, which the follow-up replies under
    fake_slack.replies[root] = [_bot(root)]
    _follow_up(client, fake_slack, root, "1700000001.000001", "what key features do they use?", "EvS1", 2)
    assert asked[-1] == ("what key features do they use?", [QUESTION])


def test_dm_without_a_thread_uses_the_last_minutes(client: TestClient, fake_slack: FakeSlack, asked: Asked,
                                                   slack_settings: Settings) -> None:
    now = int(time.time())
    window = int(slack_settings.slack_dm_window_s)
    assert window == 600
    fake_slack.history[DM] = [_user(f"{now - window - 60}.000100", "a question from an hour ago"),
                              _bot(f"{now - window - 59}.000100"),
                              _user(f"{now - 120}.000100", QUESTION), _bot(f"{now - 119}.000100"),
                              _user(f"{now - 60}.000100", "what key features do they use?"),
                              _bot(f"{now - 59}.000100")]
    post_event(client, message("how long have they used it?", f"{now}.000100", channel=DM, channel_type="im"),
               event_id="EvD1")
    post = fake_slack.wait_for("chat.postMessage")[0].params
    assert post["channel"] == DM and not post.get("thread_ts")
    assert asked == [("how long have they used it?", [QUESTION, "what key features do they use?"])]
    assert "Understood as" in json.dumps(post)


def test_dm_window_is_configurable(fake_settings: Settings, fake_slack: FakeSlack, fake_answerer: Answerer,
                                   asked: Asked) -> None:
    settings = _settings(fake_settings, fake_slack).replace(slack_dm_window_s=30)
    client = TestClient(_make_app(settings, fake_answerer))
    now = int(time.time())
    fake_slack.history[DM] = [_user(f"{now - 60}.000100", QUESTION), _user(f"{now - 10}.000100", "and Globex?")]
    post_event(client, message("how long have they used it?", f"{now}.000100", channel=DM, channel_type="im"),
               event_id="EvW1")
    fake_slack.wait_for("chat.postMessage")
    assert asked == [("how long have they used it?", ["and Globex?"])]


def test_dm_thread_is_its_own_conversation(client: TestClient, fake_slack: FakeSlack, asked: Asked) -> None:
    now = int(time.time())
    fake_slack.history[DM] = [_user(f"{now - 30}.000100", "what is widgetd?")]  # not in the thread: left out
    post_event(client, message(QUESTION, f"{now}.000100", channel=DM, channel_type="im"), event_id="EvT1")
    fake_slack.wait_for("chat.postMessage")
    root = "1700000000.000001"  # the bot's answer in the DM; the user replies in its thread
    fake_slack.replies[root] = [_bot(root)]
    ts = f"{now + 1}.000100"
    fake_slack.replies[root].append(_user(ts, "what key features do they use?", thread_ts=root))
    post_event(client, message("what key features do they use?", ts, channel=DM, channel_type="im", thread_ts=root),
               event_id="EvT2")
    assert fake_slack.wait_for("chat.postMessage", 2)[1].params["thread_ts"] == root
    assert asked == [(QUESTION, ["what is widgetd?"]), ("what key features do they use?", [QUESTION])]


def test_unreadable_thread_is_answered_as_asked(client: TestClient, fake_slack: FakeSlack, asked: Asked,
                                                caplog: pytest.LogCaptureFixture) -> None:
    root = "1699999999.300000"
    post_event(client, mention(QUESTION, ts=root), event_id="EvU1")
    fake_slack.wait_for("chat.postMessage")
    fake_slack.errors["conversations.replies"] = "ratelimited"
    post_event(client, message("what key features do they use?", "1699999999.300002", thread_ts=root),
               event_id="EvU2")
    fake_slack.wait_for("chat.postMessage", 2)
    assert asked[-1] == ("what key features do they use?", [])
    assert any("could not read the conversation" in r.getMessage() for r in caplog.records)


def test_understood_as_is_shown_only_when_the_reading_differs(fake_answerer: Answerer) -> None:
    answer = fake_answerer.ask(QUESTION)
    _, same = answer_message(dataclasses.replace(answer, resolved_question=QUESTION), "a1")
    assert "Understood as" not in json.dumps(same)
    _, differs = answer_message(dataclasses.replace(answer, question="and <Globex>?",
                                                    resolved_question="Why did <Globex> want scale to zero?"), "a2")
    check_message({"text": "x", "blocks": differs})
    assert "_Understood as: Why did &lt;Globex&gt; want scale to zero?_" in json.dumps(differs)


@pytest.mark.slow
def test_real_follow_ups_in_a_thread_are_answered_about_the_right_adopters(
        real_settings: Settings, real_answerer: Answerer, fake_slack: FakeSlack, tmp_path: Path) -> None:
    """A mention, then two follow-ups without one: the second is about IBM, the third about IBM's reasons."""
    settings = _settings(real_settings, fake_slack).replace(state_dir=tmp_path / "var")
    client = TestClient(_make_app(settings, real_answerer))
    root = "1699999999.400000"
    first = "How long has Gojek used Knative?"
    fake_slack.replies[root] = [_user(root, f"<@{BOT_USER_ID}> {first}")]
    post_event(client, mention(first, ts=root), event_id="EvR1")
    fake_slack.wait_for("chat.postMessage", timeout=60)
    fake_slack.replies[root].append(_bot("1699999999.400001", thread_ts=root))
    posts = [fake_slack.calls_to("chat.postMessage")[0].params]
    for i, text in enumerate(("and IBM?", "why did they pick it?"), start=2):
        posts.append(_follow_up(client, fake_slack, root, f"1699999999.40000{2 * i}", text, f"EvR{i}", i))

    def cited(post: dict[str, Any]) -> set[str]:
        sources = [b["text"]["text"] for b in post["blocks"] if b["type"] == "section"
                   and b["text"]["text"].startswith("*[")]
        return {s.split(" · ")[1].split("\n")[0] for s in sources}

    assert cited(posts[0]) == {"Gojek"}
    assert cited(posts[1]) == {"IBM"}, posts[1]["text"]
    assert cited(posts[2]) == {"IBM"}, posts[2]["text"]
    assert "Understood as" in json.dumps(posts[1]) and "IBM" in json.dumps(posts[2]).split("Understood as")[1]
