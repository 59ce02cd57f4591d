"""The answered / not answered decision: names the corpus lacks, no known word, details one interview lacks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.answer.answerer import Answerer
from bot.answer.coverage import CoverageThresholds, Evidence, is_answered


def _evidence(**changes: object) -> Evidence:
    base = Evidence(top_sentence=0.6, top_dense=0.5, term_coverage=0.8, missing=(), unknown=(), n_terms=5,
                    named=True, foreign_names=(), single=True)
    return replace(base, **changes)


def test_a_detail_the_one_adopters_interview_lacks_is_not_answered() -> None:
    detail = _evidence(term_coverage=0.1, top_sentence=0.33, missing=("maximum", "retain"))
    assert is_answered(detail) is False
    # Any one of the conditions missing keeps the answer: close best sentence, several adopters, enough
    # words covered, or too few words to judge coverage by.
    assert is_answered(replace(detail, top_sentence=0.5)) is True
    assert is_answered(replace(detail, single=False)) is True
    assert is_answered(replace(detail, term_coverage=0.4)) is True
    assert is_answered(replace(detail, n_terms=2)) is True
    assert is_answered(detail, CoverageThresholds(min_single_coverage=0.0)) is True


def test_other_refusals_still_hold() -> None:
    assert is_answered(_evidence(foreign_names=("Netflix",))) is False
    assert is_answered(_evidence(n_terms=2, unknown=("zzqx", "vvrp"), missing=("zzqx", "vvrp"))) is False
    assert is_answered(_evidence(single=False, top_dense=0.05)) is False
    assert is_answered(_evidence(n_terms=0, named=True)) is True


def test_a_number_one_adopter_never_states_is_not_answered() -> None:
    asks = _evidence(asks_quantity=True, quantity_stated=False)
    assert is_answered(asks) is False
    assert is_answered(replace(asks, quantity_stated=True)) is True  # a passage states a number
    assert is_answered(replace(asks, single=False)) is True  # across adopters: some may state it
    assert is_answered(replace(asks, asks_quantity=False)) is True


@pytest.mark.slow
def test_real_one_adopter_questions_are_answered_unless_the_detail_is_missing(real_answerer: Answerer) -> None:
    assert real_answerer.ask("What is the parking fee at Grafana's headquarters?").answered is False
    # Paraphrased questions about one adopter cover few of their words but have a close sentence.
    for question in ("Is Chainguard worried about in-toto being abandoned?",
                     "What surprised Docker when rolling out OpenFGA?",
                     "What pain did Shipwright hit with Tekton upgrades?",
                     "Would Grafana recommend OpenFGA to others?"):
        assert real_answerer.ask(question).answered is True, question
    # A company named by an acronym that no interview mentions is not an adopter; one that is, is.
    assert real_answerer.ask("How big is ZTE's CubeFS deployment?").answered is False
    assert real_answerer.ask("How long has IBM used Knative?").answered is True
    # The same with the adopter as a filter.
    assert real_answerer.ask("How long have they used Knative?", adopter="Gojek").answered is True


def test_an_acronym_company_the_corpus_never_mentions_is_not_answered(fake_answerer: Answerer) -> None:
    assert fake_answerer.ask("How long has IBM used Knative?").answered is False
    assert fake_answerer.ask("How long has Acme Rockets used Knative?").answered is True
