"""Hybrid retrieval: keyword terms, names steering, filters, diversity, sentence vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bot.index import store
from bot.answer.answerer import Answerer
from tests.fakes import FakeEmbedder
from bot.index.build import build
from bot.index.bm25 import KeywordMatrix
from bot.index.keyword import terms
from bot.search.signals import _z, _z_reference
from bot.search.query import (without_names, excluded_names, descriptions, embedding_query, matches, name_key, names_in, place_variants,
                              scoped_projects, spans_adopters)
from bot.search.retriever import Retriever
from bot.index.textvectors import cache_path, text_vectors

WORDS = ["scale", "zero", "cache", "tenant", "Knative", "Globex", "Acme", "Widgetd", "upgrades", "memory",
         "community", "Slack", "nodes", "regions", "dashboard", "why", "how", "the", "did", "use"]


def test_terms_stem_drop_stop_words_and_split_compounds() -> None:
    assert terms("How are the Upgrades going?") == ["upgrad", "go"]
    assert terms("order-automation startup's") == ["order", "autom", "startup"]
    assert terms("the of and") == []


def test_keyword_index_ranks_the_text_with_the_words() -> None:
    index = KeywordMatrix.of_rows([terms(t) for t in ["scale to zero saves money", "the cache is flushed nightly",
                                                       "nothing relevant"]])
    scores = index.scores("Why flush the cache?")
    assert int(np.argmax(scores)) == 1
    assert not index.scores("zzqx").any() and not index.scores("").any()
    assert index.idf("zzqx") > index.idf("cach")


def test_names_are_found_as_words_in_any_case_and_possessive() -> None:
    names = [name_key(n) for n in ("Gojek", "Y Meadows", "CyberAgent, Inc.", "JD.com", "Adopter 3", "in-toto")]
    assert names_in("what did y meadows change", names) == {"ymeadows"}
    assert names_in("How many GPUs are in CyberAgent's cluster?", names) == {"cyberagent"}
    assert names_in("Does JD.com cache?", names) == {"jdcom"}
    assert names_in("Tekton Adopter 3 pods", names) == {"adopter3"}
    assert names_in("How does GitHub use in-toto?", names) == {"intoto"}
    assert names_in("a gojekian word", names) == set()


def test_generic_adopters_are_embedded_as_organizations_but_names_stay() -> None:
    assert embedding_query("Which adopters give talks?") == "Which organizations give talks?"
    assert embedding_query("What did Adopter 3 say? The adopter") == "What did Adopter 3 say? The organization"


def test_questions_say_whether_they_span_adopters_and_which_project_they_scope() -> None:
    assert spans_adopters("Which adopters give talks?") and spans_adopters("Do teams upgrade often?")
    assert not spans_adopters("What did the German integrator say about docs?")
    assert not spans_adopters("How long has the adopter used it?")
    assert scoped_projects("How do KServe adopters feel about Knative?", {"kserve", "knative"}) == {"kserve"}
    assert scoped_projects("Why do Knative users like KServe?", {"kserve", "knative"}) == {"knative"}
    assert scoped_projects("Does KServe depend on Knative?", {"kserve", "knative"}) == set()
    # Each project of a list before "adopters" is scoped, not only the last.
    projects = {"kserve", "knative", "openfga", "tekton"}
    assert scoped_projects("Among KServe and OpenFGA adopters, who upgrades for CVEs?", projects) == {"kserve", "openfga"}
    assert scoped_projects("Which Tekton, KServe or Knative users run GPUs?", projects) == {"tekton", "kserve", "knative"}
    assert scoped_projects("Is KServe better for OpenFGA adopters?", projects) == {"openfga"}


def test_names_set_apart_by_besides_other_than_outside_are_found() -> None:
    names = {"readai", "gojek", "ibm", "sap", "bloomberg"}
    assert excluded_names("Besides Read AI's numbers, what request rates do adopters report?", names) == {"readai"}
    assert excluded_names("Other than Gojek and IBM, who runs Knative?", names) == {"gojek", "ibm"}
    assert excluded_names("apart from gojek, ibm or sap, who?", names) == {"gojek", "ibm", "sap"}
    assert excluded_names("Besides Gojek, what did SAP say?", names) == {"gojek"}  # the list ends at the comma
    assert excluded_names("How long has Gojek used Knative?", names) == set()
    assert excluded_names("Besides the docs, what did SAP like?", names) == set()


def test_an_adopter_set_apart_is_left_out_of_the_answer(fake_answerer: Answerer) -> None:
    retriever = fake_answerer._current()
    alone = {h.chunk.adopter for h in retriever.search("What challenges did Globex Corporation face?", 5)}
    assert "Globex Corporation" in alone
    besides = retriever.search("Besides Globex Corporation, what challenges did adopters face?", 10)
    assert besides and all(h.chunk.adopter != "Globex Corporation" for h in besides)
    analysis = retriever.analyze("Besides Globex Corporation, what challenges did adopters face?")
    assert analysis.excluded == {"globex"} and not analysis.adopters  # the name key the index knows it by


def test_the_question_without_its_names_keeps_what_it_asks() -> None:
    assert without_names("How long has Adopter 3 (Tekton) been on Tekton?", {"3"}, {"tekton"}) == \
        "How long has Adopter been on?"
    assert without_names("Why did Gojek and IBM pick Knative?", {"gojek", "ibm"}, {"knativ"}) == "Why did and pick?"
    # Words that only share a stem with nothing named stay.
    assert without_names("How do the Knative maintainers respond?", {"gojek"}, set()) == \
        "How do the Knative maintainers respond?"


def test_described_adopters_are_found_but_named_ones_and_the_project_are_not() -> None:
    assert descriptions("What trouble did the German integrator face?") == ["German integrator"]
    assert descriptions("According to the business-operations AI startup, do apps need it?") == [
        "business-operations AI startup"]
    assert descriptions("What did the Indonesian super-app's platform team build?") == ["Indonesian super-app"]
    assert descriptions("How does the project handle the platform?") == []
    assert descriptions("What did Gojek say about the serverless project?") == []
    assert {"germany"} <= place_variants("German") and {"japan", "china"} & place_variants("Japanese") == {"japan"}
    assert {"indonesia", "europe", "italy"} <= place_variants("Indonesian") | place_variants("European") \
        | place_variants("Italian")


def test_a_named_adopter_comes_first_without_a_filter(fake_answerer: Answerer) -> None:
    hits = fake_answerer._current().search("What did Globex say about documentation?", 5)
    assert hits[0].chunk.adopter.startswith("Globex")


def test_diversity_spreads_a_broad_question_across_interviews(fake_answerer: Answerer) -> None:
    retriever = fake_answerer._current()
    spread = retriever.retrieve("What challenges and improvements do adopters mention?", 3, repeat_penalty=100.0)
    assert len({h.chunk.source for h in spread.hits}) == len(spread.hits) == 3
    # One named adopter: its passages stay together whatever the penalty.
    named = retriever.retrieve("What challenges did Globex face and what should improve?", 3, repeat_penalty=100.0)
    assert {h.chunk.adopter for h in named.hits[:2]} == {"Globex Corporation"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=8),
       project=st.sampled_from([None, "Knative", "knative", "Widgetd", "KNATIVE", "nope"]),
       adopter=st.sampled_from([None, "Globex", "acme rockets", "Acme", "nobody"]))
def test_filters_never_return_another_project_or_adopter(fake_answerer: Answerer, words: list[str],
                                                         project: str | None, adopter: str | None) -> None:
    hits = fake_answerer._current().search(" ".join(words), 10, project, adopter)
    assert all(matches(h.chunk, project, adopter) for h in hits)
    if project and adopter is None and project.lower() in ("knative", "widgetd"):
        assert hits  # a real project always has passages
    scores = [h.score for h in hits]
    assert len({h.chunk.chunk_id for h in hits}) == len(hits)
    assert all(np.isfinite(scores))


def test_text_vectors_are_cached_and_only_new_texts_are_embedded(fake_settings, tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    build(fake_settings.corpus_dir, fake_settings.index_dir, embedder)
    assert cache_path(fake_settings.index_dir, embedder.name).exists()  # precomputed by the build
    index = store.load(fake_settings.index_dir, embedder.name)
    calls = embedder.calls
    aux = text_vectors(fake_settings.index_dir, index.chunks, embedder)
    assert embedder.calls == calls  # everything came from the cache
    retriever = Retriever(index, embedder, aux=aux)
    assert retriever.aux is not None and len(aux.sentence_owner) == retriever.sentence_count
    assert len(aux.heading_vectors) == len(index.chunks)
    # A damaged cache is rebuilt, not fatal.
    cache_path(fake_settings.index_dir, embedder.name).write_bytes(b"garbage")
    again = text_vectors(fake_settings.index_dir, index.chunks, embedder)
    assert np.allclose(again.sentence_vectors, aux.sentence_vectors)


@pytest.mark.slow
def test_real_names_steer_and_filters_hold(real_answerer: Answerer) -> None:
    retriever = real_answerer._current()
    assert retriever.aux is not None  # sentence vectors were precomputed by the build
    hits = retriever.search("How long has Gojek used Knative?", 5)
    assert hits[0].chunk.adopter == "Gojek"
    kserve = retriever.search("are the maintainers responsive", 10, project="KServe")
    assert kserve and all(h.chunk.project == "KServe" for h in kserve)
    broad = retriever.search("Why do adopters value scale to zero?", 5)
    assert len({h.chunk.source for h in broad}) >= 3  # spread across interviews
    # Described, not named: the description alone finds the interview from who the interviewee is.
    described = retriever.search("What did the order-automation startup say about the serverless project?", 3)
    assert described[0].chunk.adopter == "Y Meadows"
    # "<project> adopters" scopes the question even when another project is its topic.
    scoped = retriever.search("How do KServe adopters feel about Knative's autoscaling?", 5)
    assert sum(h.chunk.project == "KServe" for h in scoped) >= 4


@pytest.mark.slow
def test_real_descriptions_worded_unlike_the_intro_are_found_by_meaning(real_answerer: Answerer) -> None:
    """The description alone is embedded and matched with the sentences that say who each interviewee is."""
    retriever = real_answerer._current()
    cases = [("What did the meeting-notes AI company say about the docs?", "Read AI"),
             ("What did the online gaming company say about the file system?", "NetEase"),
             ("How did the Chinese e-commerce giant adopt the storage project?", "JD.com")]
    keyword_only = retriever.with_params(described_dense=0.0, described_query=0.0, described_local=0.0,
                                         described_boost=0.0)
    for question, adopter in cases:
        assert retriever.search(question, 1)[0].chunk.adopter == adopter, question
    # By the profiles' words alone at least one of them goes to another interview.
    assert any(keyword_only.search(q, 1)[0].chunk.adopter != a for q, a in cases)


@pytest.mark.slow
def test_real_another_project_named_beside_an_adopter_is_its_topic(real_answerer: Answerer) -> None:
    """"How does Cloudera use Knative?": Cloudera (a KServe adopter) is who, Knative what; the Knative interviews
    get no project boost from it (bot/search/handset.py)."""
    retriever = real_answerer._current()
    assert retriever.search("How does Cloudera use Knative?", 1)[0].chunk.adopter == "Cloudera"
    answer = real_answerer.ask("How does Cloudera use Knative?", 5)
    assert answer.answered and {c.adopter for c in answer.citations} == {"Cloudera"}
    # A project asked about as "<P> adopters" still steers.
    assert retriever.search("How do Knative adopters compare with Cloudera?", 1)[0].chunk.project == "Knative"


def _named_template_firsts(retriever: Retriever, templates: list[tuple[str, str]]) -> list[bool]:
    """For every adopter and template whose interview question has `key`: is that passage first?"""
    chunks = retriever.index.chunks
    firsts = []
    for adopter, project in sorted({(c.adopter, c.project) for c in chunks}):
        for template, key in templates:
            if any(c.adopter == adopter and key in c.question.lower() for c in chunks):
                top = retriever.search(template.format(a=adopter, p=project), 1)[0].chunk
                firsts.append(top.adopter == adopter and key in top.question.lower())
    return firsts


@pytest.mark.slow
def test_real_named_template_questions_find_the_passage_that_answers(real_answerer: Answerer) -> None:
    """Questions naming an adopter, asked like the interview template, rank that template's passage first."""
    retriever = real_answerer._current()
    templates = [("How long has {a} used {p}?", "how long"),
                 ("What version of {p} does {a} run, and how often do they upgrade?", "version"),
                 ("How is {a} participating in the {p} community?", "participat"),
                 ("What could {p} do better, according to {a}?", "do better")]
    chunks = retriever.index.chunks
    firsts = _named_template_firsts(retriever, templates)
    assert len(firsts) >= 60
    # 0.96 measured (0.79 before within-interview standard scores, 0.93 before the cosines without the names)
    assert sum(firsts) / len(firsts) >= 0.85
    # The same with the adopter as a filter instead of a name in the question.
    unnamed = [("How long have they used {p}?", "how long"),
               ("What version of {p} do they run, and how often do they upgrade?", "version"),
               ("How are they participating in the {p} community?", "participat"),
               ("What could {p} do better?", "do better"), ("What are the strengths of {p}?", "strengths")]
    filtered = []
    for adopter, project in sorted({(c.adopter, c.project) for c in chunks}):
        for template, key in unnamed:
            if any(c.adopter == adopter and key in c.question.lower() for c in chunks):
                top = retriever.search(template.format(p=project), 1, adopter=adopter)[0].chunk
                filtered.append(key in top.question.lower())
    assert sum(filtered) / len(filtered) >= 0.86  # 0.92 measured (0.82 before)



@pytest.mark.slow
def test_real_named_questions_worded_unlike_the_template_rank_by_what_they_ask(real_answerer: Answerer) -> None:
    """Inside a named interview, passages that say the adopter's or project's name don't win on the name:
    the question without the names decides (bot/search/signals.py)."""
    retriever = real_answerer._current()
    templates = [("For how many years has {a} been using {p}?", "how long"),
                 ("Which release of {p} is {a} on, and how often does it move to a newer one?", "version"),
                 ("In what ways does {a} take part in the {p} community?", "participat"),
                 ("Where should {p} improve, in the view of {a}?", "do better"),
                 ("What does {a} like most about {p}?", "strength")]
    firsts = _named_template_firsts(retriever, templates)
    assert len(firsts) >= 100
    assert sum(firsts) / len(firsts) >= 0.52  # 0.56 measured; 0.46 with the names in every cosine


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 3000), scale=st.floats(1e-6, 1e3), shift=st.floats(-1e3, 1e3), sparse=st.booleans(),
       wide=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_standard_scores_equal_numpys_bit_for_bit(n: int, scale: float, shift: float, sparse: bool, wide: bool,
                                                  seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * scale + shift).astype(np.float64 if wide else np.float32)
    if sparse:  # BM25-like: mostly zeros
        x = np.abs(x) * (rng.random(n) < 0.05)
    fast, reference = _z(x), _z_reference(x)
    assert fast.dtype == reference.dtype
    assert np.array_equal(fast, reference)
    constant = np.full(n, shift, dtype=x.dtype)  # its float sum may not be exact: both must round alike
    assert np.array_equal(_z(constant), _z_reference(constant))
    assert not _z(np.full(n, 0.5, dtype=x.dtype)).any()
