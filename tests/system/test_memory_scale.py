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
from bot.embed.embedders import FakeEmbedder
from bot.index.build import build
from bot.index.keyword import KeywordIndex, Part, terms, token_ids, tokenize
from tests.conftest import FIXTURE_CORPUS, SHARED_CORPUS


def _fixture_lines() -> list[str]:
    return [line for path in sorted(FIXTURE_CORPUS.rglob("*.md")) for line in path.read_text().splitlines()]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcXYZ019 -'’.,sİé\n")), max_size=60))
def test_token_ids_are_the_ids_of_the_terms(text: str) -> None:
    assert [keyword._names[i] for i in token_ids(text)] == terms(text)
    fresh = tokenize([text, text + " scale"])
    cached = tokenize([text, text + " scale"], cache=True)
    again = tokenize([text, text + " scale"], cache=True)  # from the cache
    for got in (cached, again):
        assert np.array_equal(got.ids, fresh.ids) and np.array_equal(got.ptr, fresh.ptr)


def test_rows_made_of_parts_score_exactly_as_their_joined_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _fixture_lines() + ["", "the and of"]
    heads, tails = lines[::2], lines[1::2] + [""] * (len(lines) % 2)
    joined = KeywordIndex([f"{h}\n{t}" for h, t in zip(heads, tails)])
    # Each row: a head shared through `one_each` plus a group of tail texts (here one each, listed twice
    # for every other row to check that groups repeat texts as often as they are listed).
    head_tokens, tail_tokens = tokenize(heads), tokenize(tails)
    groups = [[i] for i in range(len(tails))]
    parts = KeywordIndex(parts=[Part.one_each(head_tokens, range(len(heads))), Part.groups(tail_tokens, groups)])
    monkeypatch.setattr(keyword, "_BLOCK_TOKENS", 7)  # many blocks, rows split across none of them
    blocks = KeywordIndex(parts=[Part(head_tokens), Part(tail_tokens)])
    doubled = KeywordIndex(parts=[Part.groups(tail_tokens, [[i, i] for i in range(len(tails))])])
    assert doubled.df == KeywordIndex([t for t in tails]).df
    for query in ("scale to zero", "serverless functions cost", "kubernetes cluster upgrade pain", "zzz"):
        want = joined.scores(query)
        assert np.array_equal(parts.scores(query), want) and np.array_equal(blocks.scores(query), want), query
    assert parts.df == joined.df == blocks.df and parts.size == joined.size
    with pytest.raises(ValueError):
        KeywordIndex(parts=[Part(head_tokens), Part(tokenize(heads[:-1]))])


def test_building_a_matrix_needs_little_more_memory_than_the_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    words = sorted({w for line in _fixture_lines() for w in line.split() if w.isalpha()})
    tokens = tokenize(" ".join(rng.choice(words, 40)) for _ in range(20_000))
    monkeypatch.setattr(keyword, "_BLOCK_TOKENS", 1 << 14)
    tracemalloc.start()
    try:
        index = KeywordIndex(parts=[Part(tokens)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # All (row, term) pairs at once would take ~10x the matrix (bytes per pair: 8 row, 8 id, 8 key, sorting...).
    assert peak < 1.5 * index.nbytes + (4 << 20), (peak, index.nbytes)


@pytest.mark.parametrize("block", [1 << 6, 1 << 10, 1 << 18])
def test_pairs_kept_between_the_passes_or_made_again_give_the_same_matrix(monkeypatch: pytest.MonkeyPatch,
                                                                          block: int) -> None:
    lines = _fixture_lines() + ["", "the and of", "again again again again"]
    parts = [Part(tokenize(lines)), Part.one_each(tokenize(["a question", "another question"]),
                                                  [i % 2 for i in range(len(lines))])]
    monkeypatch.setattr(keyword, "_BLOCK_TOKENS", block)
    kept = KeywordIndex(parts=parts)
    monkeypatch.setattr(keyword, "_PAIR_CACHE_BYTES", 2000)  # some blocks kept, the rest made again
    partly = KeywordIndex(parts=parts)
    monkeypatch.setattr(keyword, "_PAIR_CACHE_BYTES", 0)
    again = KeywordIndex(parts=parts)
    for other in (partly, again):
        for name in ("_rows", "_weights", "_indptr", "_terms"):
            assert np.array_equal(getattr(kept, name), getattr(other, name)), name
    assert kept.df == again.df and np.array_equal(kept.scores("question again"), again.scores("question again"))


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


def test_the_passage_token_cache_gives_the_ids_tokenizing_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    from bot.index import tokencache
    texts = _fixture_lines()[:200] + ["", "the and of", "Gojek's order-automation"]
    want = tokenize(texts)
    first = tokencache.passage_tokens(tmp_path, texts)
    assert (tmp_path / tokencache.CACHE_NAME).exists()
    calls: list[int] = []
    real = tokencache.tokenize
    monkeypatch.setattr(tokencache, "tokenize", lambda t: calls.append(len(t)) or real(t))
    second = tokencache.passage_tokens(tmp_path, texts)  # from the file
    more = ["A new passage about zebra functions.", "Another one."]
    third = tokencache.passage_tokens(tmp_path, texts[:150] + more)  # only the new texts are tokenized
    assert calls == [2]
    for got, expected in ((first, want), (second, want), (third, tokenize(texts[:150] + more))):
        assert np.array_equal(got.ids, expected.ids) and np.array_equal(got.ptr, expected.ptr)
    # One new text among many: tokenized, not worth rewriting the cache for.
    many = [f"passage {i} about scaling number {i}" for i in range(300)]
    tokencache.passage_tokens(tmp_path, many)
    written = (tmp_path / tokencache.CACHE_NAME).stat().st_mtime_ns
    got = tokencache.passage_tokens(tmp_path, many + ["one more"])
    assert (tmp_path / tokencache.CACHE_NAME).stat().st_mtime_ns == written and calls[-1] == 1
    assert np.array_equal(got.ids, tokenize(many + ["one more"]).ids)
    # Other tokenizer rules, a damaged file, a read-only folder: tokenized again, never an error.
    monkeypatch.setattr(tokencache, "fingerprint", lambda: "other rules")
    assert np.array_equal(tokencache.passage_tokens(tmp_path, texts).ids, want.ids) and calls[-1] == len(texts)
    (tmp_path / tokencache.CACHE_NAME).write_bytes(b"not a cache")
    assert np.array_equal(tokencache.passage_tokens(tmp_path, texts).ids, want.ids)
    (tmp_path / tokencache.CACHE_NAME).unlink()
    monkeypatch.setattr(tokencache.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("read-only")))
    assert np.array_equal(tokencache.passage_tokens(tmp_path, texts).ids, want.ids)
    assert "cannot write passage token cache" in caplog.text and not list(tmp_path.glob(".*tmp"))


def test_a_large_index_reads_its_passage_tokens_from_its_generation(shared_index,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    emb = FakeEmbedder()
    monkeypatch.setattr(state, "passage_tokens", lambda *a: pytest.fail("passages tokenized or cached"))
    stored = _large(shared_index, emb, monkeypatch, sample=100, candidates=60)
    monkeypatch.undo()
    monkeypatch.setattr(shared_index, "text_tokens", lambda: None)  # a generation written before format 3
    tokenized = _large(shared_index, emb, monkeypatch, sample=100, candidates=60)
    for query in QUESTIONS[:4]:
        assert np.array_equal(stored.score(query).fused, tokenized.score(query).fused)
    (shared_index.path.parent / "passage-tokens.npz").unlink()  # other tests of the module start without it


def test_a_large_index_of_an_older_format_keeps_its_passage_tokens_beside_it(shared_index,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.index import tokencache
    emb = FakeEmbedder()
    monkeypatch.setattr(shared_index, "text_tokens", lambda: None)  # a generation written before format 3
    first = _large(shared_index, emb, monkeypatch, sample=100, candidates=60)
    assert (shared_index.path.parent / tokencache.CACHE_NAME).exists()
    monkeypatch.setattr(tokencache, "tokenize", lambda t: pytest.fail(f"{len(t)} texts tokenized again"))
    again = retrieval.Retriever(shared_index, emb)
    for query in QUESTIONS[:4]:
        assert np.array_equal(first.score(query).fused, again.score(query).fused)
    (shared_index.path.parent / tokencache.CACHE_NAME).unlink()  # other tests of the module start without it


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
