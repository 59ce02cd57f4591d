"""Serve memory at scale: keyword matrices built block by block from texts tokenized once, and the best-sentence
BM25 of large indexes from candidate passages and a sample (bot/search/sentence_keywords.py) instead of a matrix of every
sentence. Small indexes must rank exactly as before; large ones like the exact path."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.serve_bench import QUESTIONS
from bot.index import keyword
from bot.ingest import chunking
from bot.search import query as query_analysis
from bot.search import retriever as retrieval
from bot.search import state
from bot.search import sentence_keywords as sentencekw
from bot.index import store
from tests.fakes import FakeEmbedder
from bot.index.build import build
from bot.index.keyword import terms, token_ids, tokenize
from tests.conftest import FIXTURE_CORPUS, SHARED_CORPUS


def _fixture_lines() -> list[str]:
    return [line for path in sorted(FIXTURE_CORPUS.rglob("*.md")) for line in path.read_text().splitlines()]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcXYZ019 -'’.,sİé\n")), max_size=60))
def test_token_ids_are_the_ids_of_the_terms(text: str) -> None:
    assert [keyword._names[i] for i in token_ids(text)] == terms(text)


def test_rows_of_a_vector_file_are_read_as_indexing_would(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).random((500, 8), dtype=np.float32)
    np.save(tmp_path / "v.npy", vectors)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    rows = np.array([0, 3, 250, 499])
    assert np.array_equal(state._read_rows(mapped, rows), vectors[rows])
    assert np.array_equal(state._read_rows(vectors, rows), vectors[rows])  # in memory: plain indexing


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory: pytest.TempPathFactory) -> store.LoadedIndex:
    """../shared/corpus indexed with the fake embedder (426 passages)."""
    index_dir = tmp_path_factory.mktemp("shared") / "index"
    build(SHARED_CORPUS, index_dir, FakeEmbedder())
    return store.load(index_dir, "fake")


def _large(index: store.LoadedIndex, embedder, monkeypatch: pytest.MonkeyPatch, sample: int,
           candidates: int) -> retrieval.Retriever:
    monkeypatch.setattr(state, "SENTENCE_KW_THRESHOLD", 10)
    monkeypatch.setattr(sentencekw, "SAMPLE", sample)
    monkeypatch.setattr(sentencekw, "CANDIDATES", candidates)
    return retrieval.Retriever(index, embedder)


def _best_kw(exact: retrieval.Retriever, qterms: list[str]) -> np.ndarray:
    best = np.zeros(len(exact.index.chunks), dtype=np.float32)
    np.maximum.at(best, exact._sentence_owner, exact._sentence_kw.scores(qterms))
    return best


def test_with_every_passage_sampled_and_scored_a_large_index_ranks_exactly(shared_index, monkeypatch) -> None:
    emb = FakeEmbedder()
    exact = retrieval.Retriever(shared_index, emb)
    large = _large(shared_index, emb, monkeypatch, sample=10**6, candidates=10**6)
    assert large._sentence_kw is None and exact._sampled_kw is None
    assert large.sentence_count is None and large.sentence_rows[5] == range(0)
    assert len(large.sentence_rows) == len(shared_index.chunks)
    for query in QUESTIONS:
        s = large.score(query)
        values, mean, sd = large._sampled_kw.scores(s.query_terms, s.body, s.fused)
        want = _best_kw(exact, s.query_terms)
        assert np.allclose(values, want, rtol=1e-5, atol=1e-6), query
        assert abs(mean - float(want.mean())) < 1e-4 and abs(sd - float(want.std())) < 1e-4
        assert np.allclose(s.fused, exact.score(query).fused, atol=1e-4)
        assert [h.row for h in large.retrieve(query, 10).hits] == [h.row for h in exact.retrieve(query, 10).hits]
        assert len(s.sentence_kw) == 0  # no sentence numbering in a large index


def test_sampled_sentence_statistics_count_the_sample_bodies_as_tokenizing_them_would(shared_index,
                                                                                      monkeypatch) -> None:
    kw = _large(shared_index, FakeEmbedder(), monkeypatch, sample=100, candidates=60)._sampled_kw
    chunks, n = shared_index.chunks, len(shared_index.chunks)
    # The estimate as first written: the sample passages' bodies tokenized again.
    bodies = tokenize(f"{chunks[r].question}\n{chunks[r].text}" for r in kw.sample_rows.tolist())
    in_bodies = np.bincount(sentencekw._pairs(bodies)[1], minlength=len(kw._df)).astype(np.float64)
    in_sentences = np.bincount(sentencekw._pairs(kw._sample)[1], minlength=len(kw._df)).astype(np.float64)
    body = retrieval.Retriever(shared_index, FakeEmbedder())._body
    df = np.zeros(len(kw._df), dtype=np.float64)
    df[body.term_ids] = body.term_df
    average = in_sentences.sum() / max(in_bodies.sum(), 1.0)
    estimate = df * (in_sentences + sentencekw.SMOOTHING * average) / (in_bodies + sentencekw.SMOOTHING)
    assert len(kw.sample_rows) < n and np.array_equal(kw._df, np.minimum(estimate, kw.sentence_count))


def test_a_sampled_large_index_ranks_like_the_exact_path(shared_index, monkeypatch) -> None:
    emb = FakeEmbedder()
    exact = retrieval.Retriever(shared_index, emb)
    large = _large(shared_index, emb, monkeypatch, sample=100, candidates=60)
    assert len(large._sampled_kw.sample_rows) == 100
    overlap = []
    for query in QUESTIONS:
        s = large.score(query)
        values, _, _ = large._sampled_kw.scores(s.query_terms, s.body, s.fused)
        assert np.all(values[s.body == 0] == 0)  # no keyword match: no sentence matches either
        got = [h.row for h in large.retrieve(query, 5).hits]
        want = [h.row for h in exact.retrieve(query, 5).hits]
        overlap.append(len(set(got) & set(want)) / 5)
    assert np.mean(overlap) >= 0.95, overlap
    # Filters still find their passages when those are not the best candidates overall.
    hits = large.retrieve("How do teams upgrade to new versions?", 5, project="Tekton").hits
    assert hits and all(h.chunk.project == "Tekton" for h in hits)


def test_answers_from_a_large_index_cite_and_quote(fake_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.answer import answerer as answering
    monkeypatch.setattr(answering, "MAX_CHUNKS", 0)  # no sentence vectors, as for any large index
    monkeypatch.setattr(state, "SENTENCE_KW_THRESHOLD", 1)
    emb = FakeEmbedder()
    build(fake_settings.corpus_dir, fake_settings.index_dir, emb)
    answerer = answering.Answerer(fake_settings, embedder=emb)
    answerer.reload()
    assert answerer._retriever._sampled_kw is not None
    answer = answerer.ask("Why did Acme Rockets choose scale to zero?")
    assert answer.answered and answer.citations
    assert all(c.quote for c in answer.citations)


@pytest.mark.slow
def test_a_large_index_ranks_like_the_exact_path_with_the_real_model(real_settings, real_embedder,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    index = store.load(real_settings.index_dir, real_embedder.name)
    exact = retrieval.Retriever(index, real_embedder)
    large = _large(index, real_embedder, monkeypatch, sample=150, candidates=60)
    overlap = []
    for query in QUESTIONS:
        qv = real_embedder.embed_query(query_analysis.embedding_query(query))
        got = large.score(query, query_vector=qv).fused
        want = exact.score(query, query_vector=qv).fused
        top_got, top_want = np.argsort(-got)[:5], np.argsort(-want)[:5]
        overlap.append(len(set(top_got.tolist()) & set(top_want.tolist())) / 5)
    assert np.mean(overlap) >= 0.95, overlap


@pytest.mark.parametrize("size,m,levels", [(20_000, 60, 5), (20_000, 60, 100_000), (5000, 1, 2), (300, 60, 3)])
def test_top_positions_are_a_stable_sort_cut(size: int, m: int, levels: int) -> None:
    x = np.random.default_rng(size + m).integers(0, levels, size).astype(np.float32)  # many ties at the cut
    assert retrieval._top(x, m).tolist() == np.argsort(-x, kind="stable")[:m].tolist()


def test_the_passage_term_cache_is_bounded(shared_index, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "PASSAGE_TERMS_CACHE", 10)
    r = retrieval.Retriever(shared_index, FakeEmbedder())
    first = r.passage_terms(0)
    for row in range(1, 40):
        assert r.passage_terms(row) == frozenset(terms(" ".join(
            (r.index.chunks[row].project, r.index.chunks[row].adopter, *r.index.chunks[row].heading_path,
             r.index.chunks[row].text))))
        assert len(r._passage_terms) <= 10
    assert r.passage_terms(0) == first


def test_the_quoted_sentences_cache_is_bounded(shared_index, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "PASSAGE_TERMS_CACHE", 10)
    r = retrieval.Retriever(shared_index, FakeEmbedder())
    for row in range(40):
        assert r.sentences_of(row) == chunking.chunk_sentences(r.index.chunks[row])
        assert len(r._sentences) <= 10
    assert r.sentences_of(39) is r.sentences_of(39)  # cached


def test_reload_pauses_the_cyclic_collector_and_restores_it(fake_answerer, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from bot.index import memory
    from bot.index import store as store_module
    seen = []
    load = store_module.load

    def watching_load(*args, **kwargs):
        seen.append(gc.isenabled())
        return load(*args, **kwargs)

    monkeypatch.setattr(store_module, "load", watching_load)
    fake_answerer._retriever = None
    assert gc.isenabled() and fake_answerer.reload()
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(RuntimeError), memory.gc_paused():
            raise RuntimeError("a failed load")
        assert not gc.isenabled()  # a collector switched off by someone else stays off
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), memory.gc_paused():
        raise RuntimeError("a failed load")
    assert gc.isenabled()
