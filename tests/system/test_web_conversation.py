"""The chat page's conversation in real headless Chromium: earlier questions sent as `history`, "Understood as",
New conversation, a reload keeping it (localStorage), and the cap of 20 turns."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from bot.answer.answerer import Answerer
from bot.serve.app import create_app
from tests.live import LiveServer
from tests.system.test_web import browser  # noqa: F401 - the module's headless Chromium fixture

pytestmark = pytest.mark.browser
QUESTION = "why did Acme want scale to zero for batch workloads?"
FOLLOW_UP = "what key features do they use?"

Asked = list[tuple[str, list[str]]]


@pytest.fixture
def asked(fake_answerer: Answerer, monkeypatch: pytest.MonkeyPatch) -> Asked:
    """Every question the server answers, with its history; a follow-up is "resolved" by naming its first turn."""
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


def _ask(page: Any, question: str, turn: int) -> Any:
    page.fill("#question", question)
    page.keyboard.press("Enter")
    page.wait_for_selector(f".turn:nth-of-type({turn}) .meta:has-text('ms')")
    return page.locator(".turn").nth(turn - 1)


def test_follow_up_is_sent_with_its_history_and_shown_as_understood(browser, fake_settings,  # noqa: F811
                                                                    fake_answerer, asked: Asked) -> None:
    with LiveServer(create_app(fake_settings, fake_answerer, poll_seconds=0)) as live:
        page = browser.new_page()
        sent: list[dict[str, Any]] = []
        page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/ask") else None)
        page.goto(live.url)
        page.wait_for_selector("#status:has-text('interviews indexed')")

        first = _ask(page, QUESTION, 1)
        assert first.locator(".understood").count() == 0  # a first question stands alone
        second = _ask(page, FOLLOW_UP, 2)
        assert second.locator(".understood").inner_text() == f"Understood as: {FOLLOW_UP} (about: {QUESTION})"
        assert second.locator(".answer button.cite").count() >= 1
        assert [s["history"] for s in sent] == [[], [QUESTION]]
        assert asked == [(QUESTION, []), (FOLLOW_UP, [QUESTION])]

        page.reload()  # the conversation survives a reload, and goes on from where it was
        page.wait_for_selector(".turn:nth-of-type(2) .understood")
        assert page.locator(".turn").count() == 2
        _ask(page, "how long have they used it?", 3)
        assert sent[-1]["history"] == [QUESTION, FOLLOW_UP]

        page.click("#new-conversation")
        assert page.locator(".turn").count() == 0
        assert page.evaluate("localStorage.getItem('qabot.conversation.v1')") is None
        assert "New conversation" in page.locator("#empty").inner_text()
        fresh = _ask(page, "how long have they used it?", 1)
        assert sent[-1]["history"] == [] and fresh.locator(".understood").count() == 0
        page.reload()
        page.wait_for_selector(".turn .meta:has-text('ms')")
        assert page.locator(".turn").count() == 1
        page.close()


def test_conversation_is_capped_at_twenty_turns(browser, fake_settings, fake_answerer) -> None:  # noqa: F811
    old = [{"question": f"old question {i}", "data": {
        "question": f"old question {i}", "resolved_question": f"old question {i}", "answer": "An old answer.",
        "answered": False, "citations": [], "related": [], "took_ms": 1.0}} for i in range(25)]
    with LiveServer(create_app(fake_settings, fake_answerer, poll_seconds=0)) as live:
        page = browser.new_page()
        sent: list[dict[str, Any]] = []
        page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/ask") else None)
        page.goto(live.url)
        page.evaluate("(turns) => localStorage.setItem('qabot.conversation.v1', turns)", json.dumps(old))
        page.reload()
        page.wait_for_selector("#status:has-text('interviews indexed')")
        assert page.locator(".turn").count() == 20  # the 20 newest
        assert page.locator(".turn .q").first.inner_text() == "old question 5"
        _ask(page, QUESTION, 21)
        assert sent[-1]["history"] == [f"old question {i}" for i in range(5, 25)]
        stored = json.loads(page.evaluate("localStorage.getItem('qabot.conversation.v1')"))
        assert len(stored) == 20 and stored[-1]["question"] == QUESTION
        page.close()
