"""`POST /ask` with `history` (issue 16): follow-ups answered as their standalone question, and the field
validated like the rest of the body (422 naming it)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bot.answer.answerer import Answerer
from bot.config import Settings
from bot.serve.app import create_app
from bot.serve.schemas import MAX_HISTORY

FIRST = "How long has Acme Rockets used Knative?"


@pytest.fixture
def client(fake_settings: Settings, fake_answerer: Answerer):
    """A TestClient over the fixture index, with a 100-character question limit."""
    app = create_app(fake_settings.replace(max_question_chars=100), fake_answerer, poll_seconds=0)
    with TestClient(app) as c:
        yield c


def test_a_follow_up_is_answered_as_its_standalone_question(client: TestClient) -> None:
    alone = client.post("/ask", json={"question": FIRST, "top_k": 3}).json()
    assert alone["resolved_question"] == FIRST
    r = client.post("/ask", json={"question": "and Globex?", "top_k": 3, "history": [FIRST]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["question"] == "and Globex?"
    assert body["resolved_question"] == "How long has Globex Corporation used Widgetd?"
    assert body["answered"] and {c["adopter"] for c in body["citations"]} == {"Globex Corporation"}
    # Without the history the same words are answered as asked.
    bare = client.post("/ask", json={"question": "and Globex?", "top_k": 3}).json()
    assert bare["resolved_question"] == "and Globex?"
    # An empty history is the same as none.
    assert client.post("/ask", json={"question": FIRST, "history": []}).json()["resolved_question"] == FIRST


def test_history_of_the_maximum_size_is_accepted(client: TestClient) -> None:
    history = [FIRST] * MAX_HISTORY
    history[-1] = "x" * 100
    r = client.post("/ask", json={"question": "and Globex?", "history": history})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("history, needle", [
    ([FIRST] * (MAX_HISTORY + 1), f"history: List should have at most {MAX_HISTORY} items"),
    ([FIRST, "y" * 101], "history.1: String should have at most 100 characters"),
    ("How long?", "history: Input should be a valid list"),
    ([FIRST, 3], "history.1: Input should be a valid string"),
    ({"q": FIRST}, "history: Input should be a valid list"),
    ([None], "history.0: Input should be a valid string"),
])
def test_bad_history_is_a_422_naming_the_field(client: TestClient, history: object, needle: str) -> None:
    r = client.post("/ask", json={"question": "and Globex?", "history": history})
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    assert any(e["loc"][:2] == ["body", "history"] for e in r.json()["errors"])


def test_openapi_documents_history_and_resolved_question(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ask = spec["components"]["schemas"]["AskRequest"]["properties"]["history"]
    assert ask["type"] == "array" and ask["maxItems"] == MAX_HISTORY and ask["items"]["maxLength"] == 100
    assert "resolved_question" in spec["components"]["schemas"]["AskResponse"]["required"]
