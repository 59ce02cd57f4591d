"""`qabot chat` through a pseudo-terminal (pexpect), the Chat loop in-process, and `qabot ask --history-file`;
over the fixture corpus indexed with the fake embedder."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from click.testing import CliRunner

from bot.answer.answerer import Answerer
from bot.chat import HISTORY_FILE, MAX_TURNS, Chat
from bot.cli import main
from bot.config import Settings, get_settings
from tests.fakes import FAKE_MODEL

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "why did Acme want scale to zero for batch workloads?"

Asked = list[tuple[str, list[str]]]


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> Asked:
    """Every Answerer.ask call with its history; a follow-up is "resolved" by naming the first question."""
    calls: Asked = []
    real_ask = Answerer.ask

    def ask(self: Answerer, question: str, top_k: int = 5, project: str | None = None,
            adopter: str | None = None, history: Any = ()) -> Any:
        calls.append((question, list(history)))
        answer = real_ask(self, question, top_k, project, adopter, history=history)
        if history:  # stands in for the resolver, which the answering core owns
            answer = dataclasses.replace(answer, resolved_question=f"{question} (about: {history[0]})")
        return answer

    monkeypatch.setattr(Answerer, "ask", ask)
    return calls


def test_chat_sends_the_conversation_and_starts_over_on_new(fake_answerer: Answerer, asked: Asked) -> None:
    out: list[str] = []
    chat = Chat(fake_answerer, top_k=3, echo=out.append)
    for line in (QUESTION, "  what key   features do they use? ", "/new", "how long have they used it?"):
        assert chat.handle(line)
    assert asked == [(QUESTION, []), ("what key features do they use?", [QUESTION]),
                     ("how long have they used it?", [])]
    text = "\n".join(out)
    assert f"Understood as: what key features do they use? (about: {QUESTION})" in text
    assert text.count("Understood as") == 1 and "New conversation." in text
    assert not chat.handle("/quit")


def test_chat_keeps_the_last_twenty_questions(fake_answerer: Answerer, asked: Asked) -> None:
    chat = Chat(fake_answerer, top_k=1, echo=lambda _: None)
    for i in range(MAX_TURNS + 3):
        chat.handle(f"question number {i} about scale to zero")
    assert len(asked[-1][1]) == MAX_TURNS and asked[-1][1][-1] == f"question number {MAX_TURNS + 1} about scale to zero"


def test_sources_command_shows_the_passage(fake_answerer: Answerer) -> None:
    out: list[str] = []
    chat = Chat(fake_answerer, top_k=3, echo=out.append)
    chat.handle("/sources 1")
    assert out[-1] == "No answer yet: ask a question first."
    chat.handle(QUESTION)
    first = chat.last.citations[0]
    out.clear()
    chat.handle("/sources 1")
    text = "\n".join(out)
    assert text.startswith("[1] Knative · Acme Rockets") and first.text.strip() in text and "Quote: “" in text
    out.clear()
    chat.handle("/sources 99")
    assert out[-1].startswith("No source 99")
    chat.handle("/bogus")
    assert out[-1].startswith("Unknown command /bogus")


def _run(args: list[str], settings: Settings) -> Any:
    get_settings.cache_clear()
    return CliRunner().invoke(main, args, env={"QABOT_INDEX_DIR": str(settings.index_dir), "QABOT_MODEL": FAKE_MODEL,
                                               "QABOT_CORPUS_DIR": str(settings.corpus_dir)})


def test_ask_history_file_for_scripts(fake_settings: Settings, fake_answerer: Answerer, asked: Asked,
                                      tmp_path: Path) -> None:
    history = tmp_path / "history.txt"
    history.write_text(f"{QUESTION}\n\n  what key features do they use?\n", encoding="utf-8")
    result = _run(["ask", "how long have they used it?", "--history-file", str(history), "--json"], fake_settings)
    assert result.exit_code == 0, result.output
    assert asked == [("how long have they used it?", [QUESTION, "what key features do they use?"])]
    body = json.loads(result.stdout)
    assert body["question"] == "how long have they used it?" and body["resolved_question"].endswith(f"{QUESTION})")
    text = _run(["ask", "how long have they used it?", "--history-file", str(history)], fake_settings)
    assert text.stdout.startswith("Understood as: how long have they used it? (about:")

    history.write_text("".join(f"question {i}\n" for i in range(MAX_TURNS + 1)), encoding="utf-8")
    too_many = _run(["ask", "and Globex?", "--history-file", str(history)], fake_settings)
    assert too_many.exit_code == 2 and "at most 20" in too_many.output


def _spawn(settings: Settings, tmp_path: Path) -> pexpect.spawn:
    """`python -m bot chat` in a pseudo-terminal, at its first prompt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_"))}
    env.update(QABOT_INDEX_DIR=str(settings.index_dir), QABOT_MODEL=FAKE_MODEL, QABOT_STATE_DIR=str(tmp_path / "var"),
               HF_HUB_OFFLINE="1", TERM="xterm", PYTHONPATH=str(ROOT))
    child = pexpect.spawn(sys.executable, ["-m", "bot", "chat"], env=env, cwd=str(tmp_path), encoding="utf-8",
                          timeout=60, dimensions=(40, 200))
    child.expect_exact("qabot> ")
    return child


def test_chat_in_a_terminal(fake_settings: Settings, fake_answerer: Answerer, tmp_path: Path) -> None:
    child = _spawn(fake_settings, tmp_path)
    child.sendline(QUESTION)
    child.expect_exact("Sources:")
    child.expect_exact("[1] Knative · Acme Rockets")
    child.expect_exact("qabot> ")
    child.sendline("/sources 1")
    child.expect_exact("Quote: “")
    child.expect_exact("qabot> ")
    child.send("\x1b[A\x1b[A")  # readline: up arrow twice recalls the question
    child.expect_exact(QUESTION)
    child.sendline("")
    child.expect_exact("Sources:")
    child.expect_exact("qabot> ")
    child.sendline("/new")
    child.expect_exact("New conversation.")
    child.expect_exact("qabot> ")
    child.sendeof()  # Ctrl-D
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    saved = (tmp_path / "var" / HISTORY_FILE).read_text(encoding="utf-8")
    assert QUESTION in saved and "/new" in saved  # the next session's up arrow finds them

    again = _spawn(fake_settings, tmp_path)
    again.send("\x1b[A")
    again.expect_exact("/new")
    again.sendintr()  # Ctrl-C leaves cleanly too
    again.expect(pexpect.EOF)
    again.close()
    assert again.exitstatus == 0 and "Traceback" not in (again.before or "")

