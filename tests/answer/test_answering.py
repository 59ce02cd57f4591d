"""Answers: verbatim quotes at exact lines, [n] markers matching citations, grouping, honest refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bot.answer.answerer import NOT_COVERED, Answer, Answerer
from bot.answer.citations import interview_order, spread_citations
from bot.ingest.chunking import Chunk
from bot.index.keyword import terms
from bot.answer.quotes import choose, pick_quote
from bot.search.query import normalize_name
from bot.search.retriever import Hit, Retrieval, Scores
from bot.ingest.text import Sentence, normalize_space, split_sentences
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
    assert choose(np.array([0.9, 0.2, 0.1]), sentences) == (0, 1)
    assert choose(np.array([0.1, 0.2, 0.9]), sentences, max_sentences=1) == (2, 2)


def test_a_quote_from_cached_sentence_terms_is_the_one_computed_afresh(fake_answerer: Answerer) -> None:
    retriever = fake_answerer._current()
    for row, chunk in enumerate(fake_answerer.index.chunks):
        sentences = retriever.sentences_of(row)
        cached = retriever.sentence_terms(row)
        assert cached == [frozenset(terms(s.text)) for s in sentences]
        assert retriever.sentence_terms(row) is cached
        for question_terms in (["long", "use"], ["memori", "tenant"], []):
            assert pick_quote(chunk, question_terms, sentences=sentences, sentence_terms=cached) == \
                pick_quote(chunk, question_terms)


def test_quotes_from_bullets_stay_verbatim(fake_answerer: Answerer, fake_settings) -> None:
    chunk = next(c for c in fake_answerer.index.chunks if "bullets" in c.text)
    quote = pick_quote(chunk, ["memori", "tenant"])
    assert "Memory usage grew" in quote.text
    lines = (fake_settings.corpus_dir / chunk.source).read_text().splitlines()
    assert normalize_space(quote.text) in normalize_space("\n".join(lines[quote.line_start - 1:quote.line_end]))


def test_a_quote_does_not_stop_on_a_colon_it_takes_what_it_introduces() -> None:
    text = ("We looked at several authorization engines before this one, including:\n- Axiomatics\n- Aserto\n"
            "- Building a custom solution in-house\n\nIn the end the open source option won.")
    chunk = Chunk("c", "p/a.md", "P", "A", "S", "Q?", ("Q?",), text, 10, 15, text)
    quote = pick_quote(chunk, ["authoriz", "engin"])
    # The best sentence is the list's introduction: the quote goes on into the list, verbatim, with its lines.
    assert quote.text == "We looked at several authorization engines before this one, including:\n- Axiomatics\n- Aserto"
    assert (quote.line_start, quote.line_end) == (10, 12)
    # Three sentences at most: an introduction that is the third gives up the first.
    first, last = choose(np.array([0.9, 0.9, 1.0, 0.1, 0.1]), [Sentence(t, i, i) for i, t in
                         enumerate(["One.", "Two.", "They are:", "x", "y"])])
    assert (first, last) == (1, 3)


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


def _hit(source: str, project: str, score: float, doc: int) -> Hit:
    chunk = Chunk(f"{source}#{score}", source, project, source.removesuffix(".md"), "s", "q?", ("q?",), "t", 1, 1, "t")
    return Hit(chunk, score, 0.5, doc=doc)


def _retrieval(hits: list[Hit], interview_kw: list[float] | None = None, projects: tuple[str, ...] = ()) -> Retrieval:
    zeros = np.zeros(len(hits))
    scores = Scores(zeros, zeros, zeros, zeros, None, zeros, projects=set(projects),
                    interview_kw=None if interview_kw is None else np.array(interview_kw))
    return Retrieval(sorted(hits, key=lambda h: -h.score), scores)


def test_spanning_questions_rank_interviews_by_their_whole_evidence() -> None:
    # a: one strong passage and a weak one; b: two good ones; c: one passage, far below; d: out of the margin.
    hits = [_hit("a.md", "P", 10.0, 0), _hit("a.md", "P", 2.0, 0), _hit("b.md", "Q", 9.5, 1),
            _hit("b.md", "Q", 9.0, 1), _hit("c.md", "R", 7.0, 2), _hit("d.md", "S", -1.0, 3)]
    retrieval = _retrieval(hits, interview_kw=[0.0, 0.0, 0.0, 0.0])
    order = lambda **kw: [h.chunk.source for h in interview_order(retrieval, **kw)]  # noqa: E731
    assert order(second=0.0, keyword=0.0, project_penalty=0.0) == ["a.md", "b.md", "c.md"]  # best passage only
    assert order(second=0.5, keyword=0.0, project_penalty=0.0) == ["b.md", "a.md", "c.md"]  # b's theme recurs
    # The question's words all over an interview lift it: c's whole interview matches best.
    keyword = _retrieval(hits, interview_kw=[0.0, 0.0, 3.0, 0.0])
    assert [h.chunk.source for h in interview_order(keyword, 0.5, 2.0, project_penalty=0.0)][0] == "c.md"
    assert all(h.score == max(x.score for x in hits if x.chunk.source == h.chunk.source)
               for h in interview_order(retrieval))  # each interview is cited by its best passage


def test_one_project_does_not_take_every_place_unless_the_question_names_it() -> None:
    hits = [_hit("p1.md", "P", 10.0, 0), _hit("p2.md", "P", 9.8, 1), _hit("p3.md", "P", 9.6, 2),
            _hit("q1.md", "Q", 9.0, 3)]
    general = [h.chunk.source for h in interview_order(_retrieval(hits), project_penalty=2.0)]
    assert general[:2] == ["p1.md", "q1.md"] and set(general) == {"p1.md", "p2.md", "p3.md", "q1.md"}
    named = [h.chunk.source for h in interview_order(_retrieval(hits, projects=("p",)), project_penalty=2.0)]
    assert named[:3] == ["p1.md", "p2.md", "p3.md"]


def test_spread_citations_take_one_per_interview_before_any_second() -> None:
    hits = [_hit("a.md", "P", s, 0) for s in (10.0, 9.0, 8.0)] + [_hit("b.md", "P", s, 1) for s in (9.5, 3.0, 1.0)]
    retrieval = _retrieval(hits)
    picked = spread_citations(retrieval, 5, per_interview=3, margin=8.0)
    assert [(h.chunk.source, h.score) for h in picked] == [("a.md", 10.0), ("b.md", 9.5), ("a.md", 9.0),
                                                           ("b.md", 3.0), ("a.md", 8.0)]
    assert len(spread_citations(retrieval, 5, per_interview=1)) == 2  # one each, even if fewer than asked
    assert [h.score for h in spread_citations(retrieval, 5, per_interview=3, margin=2.0)] == [10.0, 9.5, 9.0, 8.0]


def _fake_answerer_over(corpus: Path, tmp_path: Path) -> Answerer:
    """An Answerer over `corpus`, indexed with the fake embedder."""
    from bot.config import Settings
    from bot.index.build import build
    from tests.fakes import FAKE_MODEL, FakeEmbedder

    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", state_dir=tmp_path / "var",
                        model_name=FAKE_MODEL)
    embedder = FakeEmbedder()
    build(corpus, settings.index_dir, embedder)
    answerer = Answerer(settings, embedder=embedder)
    answerer.reload()
    return answerer


def test_a_named_questions_sentences_are_weighed_without_the_names_pull(tmp_path: Path) -> None:
    """The sentence cosines a named question's quote is picked by (and its interview's passages ranked by) are
    taken with the names' pull taken out (bot/search/signals.py): a sentence that only says "Acme Rockets ...
    Widgetd" loses its lead over the one that answers."""
    corpus = tmp_path / "corpus"
    (corpus / "widgetd").mkdir(parents=True)
    (corpus / "widgetd" / "widgetd-adopter-interview-acme.md").write_text(
        "# Widgetd Adopter Interview - Acme Rockets\n\n## Usage\n\n### How long has your organization used the "
        "project?\n\nAcme Rockets picked Widgetd early, and Acme Rockets runs Widgetd for Acme Rockets teams. "
        "We have used it in production for three years now, since its first stable release.\n\n"
        "### What challenges did you face?\n\nUpgrades were slow at first.\n", encoding="utf-8")
    (corpus / "widgetd" / "widgetd-adopter-interview-globex.md").write_text(
        "# Widgetd Adopter Interview - Globex\n\n## Usage\n\n### How long has your organization used the "
        "project?\n\nSince 2021.\n\n### What challenges did you face?\n\nMemory grew with tenants.\n", encoding="utf-8")
    answerer = _fake_answerer_over(corpus, tmp_path)
    retriever = answerer._current()
    question = "How long has Acme Rockets used Widgetd?"
    hit = retriever.search(question, 1)[0]
    assert hit.chunk.adopter == "Acme Rockets"
    rows = retriever.sentence_rows[hit.row]
    texts = [s.text for s in retriever.sentences_of(hit.row)]
    names, answers = texts.index(next(t for t in texts if t.startswith("Acme"))), \
        texts.index(next(t for t in texts if t.startswith("We have")))
    used = retriever.score(question).sentence_dense[rows.start:rows.stop]
    embedder = retriever.embedder
    full = retriever.aux.sentence_vectors[rows.start:rows.stop] @ embedder.embed_query(question)
    assert full[names] - full[answers] > used[names] - used[answers] + 0.05
    # A question naming no adopter is weighed as asked.
    plain = "How long has the team used it in production?"
    assert np.allclose(retriever.score(plain).sentence_dense[rows.start:rows.stop],
                       retriever.aux.sentence_vectors[rows.start:rows.stop] @ embedder.embed_query(plain), atol=1e-6)


def test_a_question_naming_one_adopter_is_answered_from_its_interview_only(tmp_path: Path) -> None:
    """Another adopter's passage that says the asked words answers for someone else: a count of tuples asked of
    Acme is not answered by Globex's count (Acme's interview gives none, so the answer is a refusal)."""
    corpus = tmp_path / "corpus"
    (corpus / "widgetd").mkdir(parents=True)
    (corpus / "widgetd" / "widgetd-adopter-interview-acme.md").write_text(
        "# Widgetd Adopter Interview - Acme Rockets\n\n## Usage\n\n### What is the current level of usage?\n\n"
        "Acme Rockets stores its relationship tuples in Widgetd for every tenant.\n\n### What challenges did you "
        "face?\n\nUpgrades were slow at first.\n", encoding="utf-8")
    (corpus / "widgetd" / "widgetd-adopter-interview-globex.md").write_text(
        "# Widgetd Adopter Interview - Globex\n\n## Usage\n\n### What is the current level of usage?\n\n"
        "We store 30 million relationship tuples in Widgetd.\n\n### What challenges did you face?\n\n"
        "Memory grew with tenants.\n", encoding="utf-8")
    answerer = _fake_answerer_over(corpus, tmp_path)
    counted = answerer.ask("How many relationship tuples does Acme Rockets store in Widgetd?", 5)
    assert not counted.answered and all(p.adopter == "Acme Rockets" for p in counted.related)
    # Asked without the name, the count is Globex's.
    plain = answerer.ask("How many relationship tuples are stored in Widgetd?", 5)
    assert plain.answered and plain.citations[0].adopter == "Globex"
    # Asked of Acme something its interview says, only Acme's passages are cited.
    stored = answerer.ask("What does Acme Rockets store in Widgetd?", 5)
    assert stored.answered and {c.adopter for c in stored.citations} == {"Acme Rockets"}
