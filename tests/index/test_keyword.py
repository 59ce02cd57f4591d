"""Keyword terms: stemmed content words, the same however often a word has been seen before."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.index import keyword
from bot.index.keyword import KeywordIndex, terms


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
    index = KeywordIndex(["scale to zero saves money", "autoscaling on Kubernetes", "money money money"])
    scores = index.scores("scale to zero")
    assert scores.argmax() == 0 and scores[1] == 0


def test_scores_equal_bm25s_on_the_fixture_corpus() -> None:
    import bm25s
    from conftest import FIXTURE_CORPUS

    texts = [line for path in sorted(FIXTURE_CORPUS.rglob("*.md"))
             for line in path.read_text(encoding="utf-8").splitlines()]
    texts += ["", "the and of"]  # texts without content words count as one token, as before
    index = KeywordIndex(texts)
    reference = bm25s.BM25(k1=1.2, b=0.75)
    reference.index([terms(t) or [keyword.EMPTY] for t in texts], show_progress=False)
    for query in ("scale to zero", "serverless functions cost", "kubernetes cluster upgrade pain", "zzz"):
        known = [t for t in dict.fromkeys(terms(query)) if t in index.vocab]
        expected = reference.get_scores(known) if known else np.zeros(len(texts))
        assert np.allclose(index.scores(query), expected, atol=1e-5), query
    assert index.df == {t: d for t, d in index.df.items() if t != keyword.EMPTY}
    assert sum(1 for t in texts if "scale" in terms(t)) == index.df.get("scale", 0)
