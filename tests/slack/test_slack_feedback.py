"""The feedback store (one vote per user per answer) and `qabot feedback`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.answer.answerer import Answer, Citation
from bot.cli import main
from bot.config import Settings
from bot.slack.feedback import FeedbackStore


def _answer(question: str) -> Answer:
    c = Citation(1, "c1", "knative/acme.md", "Knative", "Acme", "Motivation", "What drew you?", "text",
                 "We wanted scale to zero.", 10, 10, 0.9)
    return Answer(question, "Found in 1 Knative interview.\n- Knative · Acme: “We wanted scale to zero.” [1]",
                  True, [c], 5.0)


def test_one_vote_per_user_per_answer_and_a_second_click_changes_it(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "var" / "feedback.sqlite3")
    store.record_answer("a1", _answer("why scale to zero?"), "C1", "1.1", "1.0", "U0ASKER")
    assert store.vote("a1", "U0ANN", "up", "C1", "1.1") == (1, 0)
    assert store.vote("a1", "U0BOB", "up", "C1", "1.1") == (2, 0)
    assert store.vote("a1", "U0ANN", "down", "C1", "1.1") == (1, 1)
    votes = store.votes()
    assert sorted((v.user, v.vote) for v in votes) == [("U0ANN", "down"), ("U0BOB", "up")]
    assert votes[0].user == "U0ANN"  # newest first: the changed vote
    assert votes[0].question == "why scale to zero?"
    assert votes[0].citations[0]["quote"] == "We wanted scale to zero."
    assert store.answer_thread("C1", "1.0") and not store.answer_thread("C1", "9.9")


def test_bad_votes_are_refused(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    with pytest.raises(ValueError):
        store.vote("a1", "U0ANN", "maybe")
    with pytest.raises(ValueError):
        store.vote("", "U0ANN", "up")


def test_vote_on_an_unknown_answer_keeps_the_message_text(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    store.vote("gone", "U0ANN", "down", fallback_answer="an old answer")
    assert store.votes()[0].answer == "an old answer"


def test_qabot_feedback_lists_votes_newest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("QABOT_STATE_DIR", str(state))
    runner = CliRunner()
    empty = runner.invoke(main, ["feedback"])
    assert empty.exit_code == 0 and "No votes yet" in empty.output
    assert json.loads(runner.invoke(main, ["feedback", "--json"]).output) == []

    store = FeedbackStore.for_settings(Settings(state_dir=state))
    store.record_answer("a1", _answer("first question"), "C1", "1.1", "1.0")
    store.record_answer("a2", _answer("second question"), "C1", "2.1", "2.0")
    store.vote("a1", "U0ANN", "up")
    store.vote("a2", "U0BOB", "down")
    text = runner.invoke(main, ["feedback"])
    assert text.exit_code == 0
    lines = text.output.splitlines()
    assert "2 votes" in lines[0]
    assert "second question" in lines[1] and "👎" in lines[1] and "first question" in lines[2]
    data = json.loads(runner.invoke(main, ["feedback", "--json"]).output)
    assert [(v["user"], v["vote"], v["question"]) for v in data] == [
        ("U0BOB", "down", "second question"), ("U0ANN", "up", "first question")]
    assert data[0]["updated"].endswith("Z") and data[0]["citations"][0]["adopter"] == "Acme"


def test_two_messages_of_one_unknown_thread_at_once_ask_slack_once(tmp_path: Path) -> None:
    """Events are handled concurrently: the second lookup of a thread waits for the first's answer."""
    import threading
    import time

    from bot.slack.state import ThreadRegistry

    calls: list[str] = []

    class SlowClient:
        def conversations_replies(self, channel: str, ts: str, limit: int) -> dict:
            calls.append(ts)
            time.sleep(0.2)
            return {"messages": [{"user": "U0HUMAN", "text": "people talking"}]}

    registry = ThreadRegistry(FeedbackStore(tmp_path / "feedback.sqlite3"))
    answers: list[bool] = []
    threads = [threading.Thread(target=lambda: answers.append(
        registry.is_ours(SlowClient(), "C1", "1.0", "U0BOT", "B0BOT"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [False, False, False] and calls == ["1.0"]
    assert registry.is_ours(SlowClient(), "C1", "1.0", "U0BOT", "B0BOT") is False and calls == ["1.0"]  # remembered
