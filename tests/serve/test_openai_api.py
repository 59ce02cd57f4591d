"""The OpenAI-compatible API in-process (FastAPI TestClient) over the fixture corpus and the fake embedder:
request and response shapes, SSE framing, and every error in OpenAI's shape."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from bot.answer.answerer import Answer, Answerer, Citation, Passage
from bot.config import Settings
from bot.serve import openai_api
from bot.serve.app import create_app
from bot.serve.openai_api import chat_content, pieces

KEY = "sk-qabot-test"
ANSWERED_Q = "What drew you to the project? scale to zero for batch workloads"


def _chat(question: str = ANSWERED_Q, **extra: object) -> dict:
    return {"model": "qabot", "messages": [{"role": "user", "content": question}], **extra}


@pytest.fixture
def client(fake_settings: Settings, fake_answerer: Answerer):
    """The app over the fixture index with no API key configured (open, as on loopback)."""
    with TestClient(create_app(fake_settings, fake_answerer, poll_seconds=0)) as c:
        yield c


@pytest.fixture
def keyed(fake_settings: Settings, fake_answerer: Answerer):
    """The app with QABOT_API_KEYS set to two keys."""
    settings = fake_settings.replace(api_keys=("other-key", KEY))
    with TestClient(create_app(settings, fake_answerer, poll_seconds=0)) as c:
        yield c


def _error(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def test_models_list_qabot_and_one_model_per_project(client: TestClient, fake_answerer: Answerer) -> None:
    body = client.get("/v1/models").json()
    ids = [m["id"] for m in body["data"]]
    assert body["object"] == "list" and ids == ["qabot", "qabot:knative", "qabot:widgetd"]
    assert all(m["object"] == "model" and m["owned_by"] == "qabot" and m["created"] > 0 for m in body["data"])
    assert client.get("/v1/models/qabot:knative").json()["id"] == "qabot:knative"
    _error(client.get("/v1/models/gpt-4o"), 404, "model_not_found")


def test_completion_is_the_answer_then_its_sources(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json=_chat(
        messages=[{"role": "system", "content": "You are terse."},
                  {"role": "user", "content": [{"type": "text", "text": ANSWERED_Q}]}]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == "qabot"
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content, extra = choice["message"]["content"], body["qabot"]
    assert extra["answered"] is True and extra["citations"]
    answer, sources = content.split("\n\nSources:\n")
    assert {int(n) for n in re.findall(r"\[(\d+)\]", answer)} == {c["n"] for c in extra["citations"]}
    for line, c in zip(sources.splitlines(), extra["citations"], strict=True):
        assert line.startswith(f"- [{c['n']}] {c['project']} · {c['adopter']} · {c['question']} ({c['source']}:")
    assert extra["resolved_question"] == ANSWERED_Q
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}  # the fake model


def test_stream_is_sse_chunks_ending_with_done(client: TestClient) -> None:
    whole = client.post("/v1/chat/completions", json=_chat()).json()
    with client.stream("POST", "/v1/chat/completions",
                       json=_chat(stream=True, stream_options={"include_usage": True})) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    chunks = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["qabot"]["citations"] == whole["qabot"]["citations"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 0


def test_project_model_filters_and_earlier_user_messages_are_history(client: TestClient, fake_answerer: Answerer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple] = []
    ask = fake_answerer.ask

    def spy(question, top_k=5, project=None, adopter=None, history=()):
        seen.append((question, project, list(history)))
        return ask(question, top_k, project, adopter, history=history)

    monkeypatch.setattr(fake_answerer, "ask", spy)
    r = client.post("/v1/chat/completions", json={"model": "qabot:knative", "messages": [
        {"role": "system", "content": "ignored"}, {"role": "user", "content": "How long has Acme used Knative?"},
        {"role": "assistant", "content": "Since 2021 [1]"}, {"role": "user", "content": "  "},
        {"role": "user", "content": ANSWERED_Q}]})
    assert r.status_code == 200, r.text
    assert seen == [(ANSWERED_Q, "Knative", ["How long has Acme used Knative?"])]
    assert {c["project"] for c in r.json()["qabot"]["citations"]} == {"Knative"}


@pytest.mark.parametrize("body,status,param", [
    ({"model": "qabot", "messages": []}, 400, "messages"),
    ({"model": "qabot"}, 400, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}]}, 400, "model"),
    ({"model": "qabot", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role"),
    ({"model": "qabot", "messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n"),
    ({"model": "qabot", "messages": [{"role": "user", "content": "x" * 2001}]}, 400, "messages"),
    ({"model": "qabot", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}]},
     422, "messages"),
    ({"model": "qabot", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 422, "messages"),
    ({"model": "qabot:nope", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
])
def test_bad_requests_get_openai_errors(client: TestClient, body: dict, status: int, param: str) -> None:
    assert _error(client.post("/v1/chat/completions", json=body), status)["param"] == param


def test_malformed_and_non_json_bodies_are_400(client: TestClient) -> None:
    assert _error(client.post("/v1/chat/completions", content=b'{"model": ',
                              headers={"content-type": "application/json"}), 400)["type"] == "invalid_request_error"
    _error(client.post("/v1/chat/completions", content=b"hello", headers={"content-type": "text/plain"}), 400)
    _error(client.get("/v1/completions"), 404, "unknown_url")


def test_api_keys_guard_v1_but_not_the_rest(keyed: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": "Basic " + KEY}):
        r = keyed.post("/v1/chat/completions", json=_chat(), headers=headers)
        _error(r, 401, "invalid_api_key")
        assert r.headers["www-authenticate"] == "Bearer"
        _error(keyed.get("/v1/models", headers=headers), 401, "invalid_api_key")
    # The key is checked before the body is read: a stranger learns nothing about the request format.
    _error(keyed.post("/v1/chat/completions", content=b"{", headers={"content-type": "application/json"}), 401)
    ok = {"Authorization": f"Bearer {KEY}"}
    assert keyed.post("/v1/chat/completions", json=_chat(), headers=ok).status_code == 200
    assert keyed.get("/v1/models", headers={"Authorization": "Bearer other-key"}).status_code == 200
    assert keyed.post("/ask", json={"question": ANSWERED_Q}).status_code == 200  # /ask keeps its own rules


def test_not_ready_is_503_and_too_many_waiting_is_429(fake_settings: Settings, fake_answerer: Answerer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    c = TestClient(create_app(fake_settings, Answerer(fake_settings, embedder=fake_answerer.embedder),
                              poll_seconds=0))  # no `with`: the lifespan has not run, no index is loaded
    r = c.post("/v1/chat/completions", json=_chat())
    _error(r, 503, "not_ready")
    assert r.headers["retry-after"] == "2"
    _error(c.post("/v1/chat/completions", json={**_chat(), "model": "qabot:knative"}), 503, "not_ready")
    assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["qabot"]
    monkeypatch.setattr(openai_api, "MAX_WAITING_PER_THREAD", 0)
    with TestClient(create_app(fake_settings, fake_answerer, poll_seconds=0)) as c:
        r = c.post("/v1/chat/completions", json=_chat())
        _error(r, 429, "rate_limit_exceeded")
        assert r.headers["retry-after"] == "1"


def test_chat_content_of_an_unanswered_question_lists_the_closest_passages() -> None:
    related = Passage("id1", "k/a.md", "Knative", "Acme", "Usage", "How long?", "Since 2021.", 30, 30, 1.0)
    answer = Answer("q", "The interviews don't cover this.", False, [], 1.0, [related])
    assert chat_content(answer) == ("The interviews don't cover this.\n\nClosest passages (related, not an answer):\n"
                                    "- Knative · Acme · How long? (k/a.md:30)")
    cited = Citation(1, "id1", "k/a.md", "Knative", "Acme", "Usage", "How long?", "Since 2021.", "Since 2021.", 30, 31,
                     1.0)
    assert chat_content(Answer("q", "Found. “Since 2021.” [1]", True, [cited], 1.0)).endswith(
        "Sources:\n- [1] Knative · Acme · How long? (k/a.md:30-31)")


@pytest.mark.parametrize("text", ["", "one", "  leading and trailing  ", "a\nb\n\n- c [1]\n" * 30])
def test_pieces_join_back_to_the_content(text: str) -> None:
    assert "".join(pieces(text)) == text


def test_api_keys_setting_and_the_key_rule() -> None:
    from bot.serve.api_keys import is_loopback, key_allowed

    assert Settings.from_env({"QABOT_API_KEYS": " k1, k2 ,,"}).api_keys == ("k1", "k2")
    assert Settings.from_env({}).api_keys == ()
    assert key_allowed((), None) and key_allowed((), "Bearer anything")
    assert key_allowed(("k1", "k2"), "Bearer k2") and key_allowed(("k1",), "bearer  k1 ")
    assert not any(key_allowed(("k1",), h) for h in (None, "", "Bearer", "Bearer k", "k1", "Basic k1", "Bearer k1x"))
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("example.org")


def test_open_endpoints_beyond_loopback_are_logged(fake_settings: Settings, fake_answerer: Answerer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    create_app(fake_settings.replace(host="0.0.0.0"), fake_answerer, poll_seconds=0)
    assert "set QABOT_API_KEYS" in caplog.text
    caplog.clear()
    create_app(fake_settings.replace(host="0.0.0.0", api_keys=(KEY,)), fake_answerer, poll_seconds=0)
    create_app(fake_settings, fake_answerer, poll_seconds=0)  # loopback
    assert "QABOT_API_KEYS" not in caplog.text
