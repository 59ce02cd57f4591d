"""Keyword terms: stemmed content words, the same however often a word has been seen before."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.index import keyword
from bot.index import bm25
from bot.index.bm25 import KeywordMatrix
from bot.index.keyword import terms


def test_terms_drop_stop_words_split_compounds_and_cut_possessives() -> None:
    assert terms("Why did Gojek's team choose order-automation?") == ["gojek", "team", "choos", "order", "autom"]
    assert terms("It’s what they don’t say") == []
    assert terms("3 pods, 2x faster, a b c") == ["3", "pod", "2x", "faster"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcXYZ019 -'’.,sİé")), max_size=60))
def test_cached_terms_equal_fresh_terms(text: str) -> None:
    first = terms(text)
    keyword._word_terms.clear()
    assert terms(text) == first  # computed again without the word cache
    assert terms(text) == first  # and from it


def test_scores_rank_the_text_with_the_rare_term_first() -> None:
    index = KeywordMatrix.of_rows([terms(t) for t in ["scale to zero saves money", "autoscaling on Kubernetes",
                                                      "money money money"]])
    scores = index.scores("scale to zero")
    assert scores.argmax() == 0 and scores[1] == 0


def _formula(rows: list[list[str]], query: list[str]) -> np.ndarray:
    """BM25 (Lucene, k1 1.2, b 0.75) as the own code of format 5 computed it: float64 weights kept as float32,
    summed in float64."""
    rows = [r or [keyword.EMPTY] for r in rows]
    n, lengths = len(rows), np.array([len(r) for r in rows], dtype=np.float64)
    norm = 1.2 * (0.25 + 0.75 * lengths / lengths.mean())
    total = np.zeros(n, dtype=np.float64)
    for t in dict.fromkeys(query):
        tf = np.array([r.count(t) for r in rows], dtype=np.float64)
        df = int((tf > 0).sum())
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        total += np.where(tf > 0, (idf * tf / (norm + tf)).astype(np.float32), 0.0)
    return total.astype(np.float32)


@pytest.mark.parametrize("mapped", [True, False])
def test_scores_equal_bm25s_and_the_former_formula_on_the_fixture_corpus(tmp_path, monkeypatch, mapped) -> None:
    import bm25s
    from conftest import FIXTURE_CORPUS

    texts = [line for path in sorted(FIXTURE_CORPUS.rglob("*.md"))
             for line in path.read_text(encoding="utf-8").splitlines()]
    texts += ["", "the and of"]  # texts without content words count as one token
    rows = [terms(t) for t in texts]
    bm25.build(rows).save(str(tmp_path / bm25.FOLDER / "body"), show_progress=False)
    monkeypatch.setattr(bm25, "MMAP_MIN_BYTES", 0 if mapped else 1 << 40)
    index = KeywordMatrix.load(tmp_path, "body")  # memory-mapped as serve loads a large index, or read
    assert isinstance(index._data, np.memmap) is mapped
    reference = bm25s.BM25(k1=1.2, b=0.75)
    reference.index([r or [keyword.EMPTY] for r in rows], show_progress=False)
    for query in ("scale to zero", "serverless functions cost", "kubernetes cluster upgrade pain", "zzz"):
        known = [t for t in dict.fromkeys(terms(query)) if t in index.vocab]
        expected = reference.get_scores(known) if known else np.zeros(len(texts))
        assert np.allclose(index.scores(query), expected, atol=1e-5), query
        assert np.array_equal(index.scores(query), _formula(rows, known)), query  # bit for bit
    assert keyword.EMPTY not in index.df and "" not in index.df
    assert sum(1 for r in rows if "scale" in r) == index.df.get("scale", 0)
