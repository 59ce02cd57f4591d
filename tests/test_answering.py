"""Answers: verbatim quotes at exact lines, [n] markers matching citations, grouping, honest refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bot.answering import NOT_COVERED, Answer, Answerer
from bot.quotes import choose, pick_quote
from bot.retrieval import normalize_name
from bot.text import normalize_space, split_sentences
from tests.conftest import DEV_SET

WORDS = ["scale", "zero", "cache", "tenant", "Knative", "Globex", "Acme", "Widgetd", "upgrades", "memory",
         "community", "Slack", "nodes", "regions", "dashboard", "why", "how", "the", "did", "use", "documentation"]


def check_answer(answer: Answer, corpus: Path) -> None:
    """The contract every answer keeps: verbatim quotes at their lines, markers and citations 1:1."""
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)]
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert sorted(markers) == numbers  # every marker has a citation, every citation is used once
    if not answer.answered:
        assert answer.citations == [] and answer.answer == NOT_COVERED
        return
    assert answer.citations and answer.answer.startswith("Found in ")
    for c in answer.citations:
        lines = (corpus / c.source).read_text(encoding="utf-8").splitlines()
        assert 1 <= c.line_start <= c.line_end <= len(lines)
        span = normalize_space("\n".join(lines[c.line_start - 1:c.line_end]))
        quote = normalize_space(c.quote)
        assert quote and quote in span, (c.quote, c.line_start, c.line_end)
        assert quote in normalize_space(c.text)
        assert len(split_sentences(c.quote.split("\n"), c.line_start)) <= 3
        assert f"“{quote}” [{c.n}]" in answer.answer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=9), top_k=st.integers(1, 8),
       project=st.sampled_from([None, "Knative", "Widgetd"]))
def test_every_answer_keeps_the_quote_and_marker_contract(fake_answerer: Answerer, fake_settings, words: list[str],
                                                          top_k: int, project: str | None) -> None:
    answer = fake_answerer.ask(" ".join(words) + "?", top_k, project)
    check_answer(answer, fake_settings.corpus_dir)
    assert len(answer.citations) <= top_k
    assert all(normalize_name(c.project) == normalize_name(project) for c in answer.citations if project)
    assert json.loads(json.dumps(answer.to_dict()))["answered"] is answer.answered


def test_answer_groups_by_adopter_with_a_lead_line(fake_answerer: Answerer, fake_settings) -> None:
    answer = fake_answerer.ask("What do adopters say about the community, scale and upgrades?", 5)
    check_answer(answer, fake_settings.corpus_dir)
    bullets = [line for line in answer.answer.splitlines() if line.startswith("- ")]
    assert len(bullets) == len({(c.project, c.adopter) for c in answer.citations})
    projects = {c.project for c in answer.citations}
    assert all(p in answer.answer.splitlines()[0] for p in projects)


def test_a_company_not_interviewed_is_not_answered(fake_answerer: Answerer) -> None:
    answer = fake_answerer.ask("How does Netflix use Widgetd caching?")
    assert answer.answered is False and answer.citations == [] and answer.answer == NOT_COVERED
    assert answer.related  # the closest passages are still offered
    gibberish = fake_answerer.ask("zzqx vvrp kkwy")
    assert gibberish.answered is False
    assert fake_answerer.ask("why?").answered is False  # nothing to look for
    assert fake_answerer.ask("Tell me about Globex?").answered is True  # a name alone is enough


def test_a_short_best_sentence_takes_the_next_one_along(fake_answerer: Answerer) -> None:
    chunk = next(c for c in fake_answerer.index.chunks if c.question.startswith("How long"))
    quote = pick_quote(chunk, ["long", "use"])
    assert normalize_space(quote.text) == normalize_space(chunk.text)  # "Since 2021, ..." is one sentence
    sentences = split_sentences(["5+ years. Platform development started at the end of 2019 or the beginning of 2020 with a small team of engineers. We love it."], 1)
    import numpy as np

    assert choose(np.array([0.9, 0.2, 0.1]), sentences) == (0, 1)
    assert choose(np.array([0.1, 0.2, 0.9]), sentences, max_sentences=1) == (2, 2)


def test_quotes_from_bullets_stay_verbatim(fake_answerer: Answerer, fake_settings) -> None:
    chunk = next(c for c in fake_answerer.index.chunks if "bullets" in c.text)
    quote = pick_quote(chunk, ["memori", "tenant"])
    assert "Memory usage grew" in quote.text
    lines = (fake_settings.corpus_dir / chunk.source).read_text().splitlines()
    assert normalize_space(quote.text) in normalize_space("\n".join(lines[quote.line_start - 1:quote.line_end]))


@pytest.mark.slow
def test_real_answers_keep_the_contract_and_refuse_unknown_companies(real_answerer: Answerer, shared_corpus) -> None:
    questions = [json.loads(line)["question"] for line in DEV_SET.read_text().splitlines() if line.strip()]
    questions += ["Why do adopters value scale to zero?", "What did SVA say about Kafka?", "tekton upgrades"]
    for question in questions:
        check_answer(real_answerer.ask(question, 5), shared_corpus)
    for question in ("How does Netflix use Knative in production?", "Which OpenFGA adopter runs it on Oracle?"):
        answer = real_answerer.ask(question)
        assert answer.answered is False and answer.related
    thematic = real_answerer.ask("Why do adopters value scale to zero?", 5)
    assert len({c.source for c in thematic.citations}) == len(thematic.citations) >= 3  # one per interview
    # One adopter described, not named: several passages of its interview may be cited.
    single = real_answerer.ask("What did the European cash-flow fintech say about the authorization engine?", 5)
    sources = [c.source for c in single.citations]
    assert max(sources.count(s) for s in sources) >= 2
