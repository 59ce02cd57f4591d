"""The bot out of the box: the shipped corpus/ (one Knative interview) answers with several passages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.answer.answerer import Answerer
from bot.config import Settings
from bot.index.build import build
from bot.ingest.text import normalize_space

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_default_corpus_answers_the_flagship_question(tmp_path: Path, real_embedder) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", state_dir=tmp_path / "var")
    build(settings.corpus_dir, settings.index_dir, real_embedder)
    answerer = Answerer(settings, embedder=real_embedder)
    answerer.reload()
    answer = answerer.ask("why do adopters value scale to zero?", top_k=5)
    assert answer.answered
    # One interview to draw on: it supplies several citations instead of the one-per-interview cap.
    assert len(answer.citations) >= 3
    assert sum("scale to zero" in c.quote.lower() for c in answer.citations) >= 3
    # A citation must carry the question's words (bot/answer/citations.py): the community passage does not.
    assert not any("engage with the community" in c.quote for c in answer.citations)
    # A short list item is quoted alone, not glued to the weaker item before it.
    assert any(c.quote == "Scale to zero is particularly useful." for c in answer.citations)
    assert not any(" * " in normalize_space(c.quote) for c in answer.citations)
    lines = (corpus / answer.citations[0].source).read_text(encoding="utf-8").splitlines()
    for c in answer.citations:
        assert normalize_space(c.quote) in normalize_space("\n".join(lines[c.line_start - 1 : c.line_end]))
