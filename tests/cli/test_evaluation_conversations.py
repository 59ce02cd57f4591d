"""`qabot eval` on conversation files (issue 16): every turn asked with the turns before it as history,
first turns and follow-ups reported apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.answer.answerer import Answerer
from bot.cli import main
from bot.eval_report import format_report
from bot.evaluation import FIRST_TURN, FOLLOW_UP, EvalError, evaluate, load_questions
from tests.fakes import FAKE_MODEL, FakeEmbedder
from bot.index.build import build

GLOBEX = "widgetd/widgetd-adopter-interview-globex.md"
ACME = "knative/knative-adopter-interview-acme.md"
CONVERSATION = {
    "id": "c1", "kind": "conversation", "notes": "ellipsis, then a pronoun, then a detail no one gives",
    "turns": [
        {"question": "How long has Acme Rockets used Knative?",
         "gold": [{"file": ACME, "quote": "Since 2021, first in staging and later in production."}]},
        {"question": "and Globex?", "standalone": "How long has Globex used Widgetd?",
         "gold": [{"file": GLOBEX, "quote": "Globex runs Widgetd on 1,200 nodes across three regions."}]},
        {"question": "what challenges did they face?", "standalone": "What challenges did Globex face with Widgetd?",
         "gold": [{"file": GLOBEX, "quote": "Upgrades were painful before version 2."}]},
        {"question": "How does Netflix use Widgetd?", "gold": []},
    ],
}


def _write(path: Path, *lines: object) -> Path:
    path.write_text("\n".join(json.dumps(d) for d in lines) + "\n")
    return path


def test_conversation_lines_become_turns_with_their_history(tmp_path: Path) -> None:
    single = {"id": "q1", "question": "How many nodes?", "kind": "fact", "gold": []}
    questions = load_questions(_write(tmp_path / "c.jsonl", single, CONVERSATION))
    assert [q.id for q in questions] == ["q1", "c1.1", "c1.2", "c1.3", "c1.4"]
    assert [q.kind for q in questions[1:]] == [FIRST_TURN, FOLLOW_UP, FOLLOW_UP, FOLLOW_UP]
    assert questions[3].history == ("How long has Acme Rockets used Knative?", "and Globex?")
    assert questions[2].standalone == "How long has Globex used Widgetd?" and questions[1].standalone is None
    assert not questions[4].answerable
    for bad, needle in [({"kind": "conversation", "turns": []}, "turns"),
                        ({"kind": "conversation", "turns": [{"question": " "}]}, "turn 1"),
                        ({"kind": "conversation", "turns": [{"question": "a?", "standalone": 3}]}, "standalone")]:
        with pytest.raises(EvalError, match=needle) as info:
            load_questions(_write(tmp_path / "bad.jsonl", single, bad))
        assert ":2" in str(info.value)


class Amnesiac:
    """The fixture Answerer with `history` ignored: what follow-ups scored before resolution existed."""

    def __init__(self, answerer: Answerer) -> None:
        self.answerer = answerer

    def search(self, *args, **kwargs):
        return self.answerer.search(*args, **kwargs)

    def ask(self, question, top_k=5, project=None, adopter=None, history=()):
        return self.answerer.ask(question, top_k, project, adopter)


def test_follow_ups_are_scored_apart_and_need_their_history(fake_answerer: Answerer, tmp_path: Path) -> None:
    questions = load_questions(_write(tmp_path / "c.jsonl", CONVERSATION))
    report = evaluate(fake_answerer, questions, corpus=fake_answerer.index.chunks)
    first, follow = report["by_kind"][FIRST_TURN], report["by_kind"][FOLLOW_UP]
    assert first["questions"] == 1 and first["answer_hit"] == 1.0
    assert follow["questions"] == 3 and follow["answerable"] == 2
    assert follow["answer_hit"] == 1.0 and follow["false_refusals"] == 0.0
    assert follow["unanswerable_flagged"] == 1.0
    assert follow["resolved_names"] == 1.0  # both resolved questions name Globex and Widgetd
    turns = {q["id"]: q for q in report["questions"]}
    assert turns["c1.2"]["resolved_question"] == "How long has Globex Corporation used Widgetd?"
    assert "follow-up targets: answer_hit 1.000" in format_report(report)
    # The same file scored by a system that ignores history: no follow-up names its adopter and project.
    blind = evaluate(Amnesiac(fake_answerer), questions, corpus=fake_answerer.index.chunks)
    assert blind["by_kind"][FOLLOW_UP]["resolved_names"] == 0.0
    assert {q["id"]: q for q in blind["questions"]}["c1.2"]["resolved_question"] == "and Globex?"


def test_eval_cli_reads_conversation_files(fake_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    monkeypatch.setenv("QABOT_INDEX_DIR", str(fake_settings.index_dir))
    monkeypatch.setenv("QABOT_MODEL", FAKE_MODEL)
    result = CliRunner().invoke(main, ["eval", str(_write(tmp_path / "c.jsonl", CONVERSATION)), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["by_kind"]) == {FIRST_TURN, FOLLOW_UP} and len(report["questions"]) == 4
