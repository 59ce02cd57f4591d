"""What kind of number a question asks for, and whether a passage states one of that kind (bot/search/quantity.py)."""

from __future__ import annotations

import pytest

from bot.search.quantity import Measure, asked_measure, states


@pytest.mark.parametrize("question, kind", [
    ("What p99 latency does Acme see on its endpoints?", "duration"),
    ("By what percentage did Acme cut its cloud bill?", "percent"),
    ("What uptime does Acme get from the platform?", "percent"),
    ("Which Postgres version does Acme run?", "version"),
    ("How much money per year has Acme saved?", "money"),
    ("How much faster did Acme's builds get?", "ratio"),
    ("How many requests per second does Acme serve?", "rate"),
    ("how many builds a day does Acme push?", "rate"),
    ("How many clusters does Acme run?", "count"),
    ("How long has Acme used the project?", "number"),
    ("How much storage and how many clients does Acme run?", "number"),  # two asks: either answers
    ("When did Acme's service reach general availability?", "number"),  # a milestone, not uptime
])
def test_the_asked_kind(question: str, kind: str) -> None:
    assert asked_measure(question).kind == kind


@pytest.mark.parametrize("question, stated, not_stated", [
    ("What p99 latency does Acme see?", "p99 is about 20 ms at peak", "Acme serves 150 RPS at peak"),
    ("By what percentage did Acme cut costs?", "costs fell by 40%", "costs fell a lot, on 3 clusters"),
    ("Which Postgres version does Acme run?", "we run Postgres 14.2", "we upgrade every quarter"),
    ("How many requests per second does Acme serve?", "about **250 RPS in production**", "250 customers use it"),
    ("how many builds a day does Acme push?", "tens of thousands of image builds per day", "10 teams build images"),
    ("How many clusters does Acme run?", "we run 40 member clusters", "dozens of workloads per cluster owner"),
    ("How many customers does Acme have?", "over 8,000 active customers", "dozens of workloads per customer"),
    ("How many people work on it at Acme?", "3 other members of our team contribute", "our engineers like it; it runs 2 services"),
    ("How long has Acme used the project?", "since 2020", "for a while now"),
])
def test_a_passage_states_the_asked_kind_or_not(question: str, stated: str, not_stated: str) -> None:
    measure = asked_measure(question)
    assert states(measure, stated), (measure, stated)
    assert not states(measure, not_stated), (measure, not_stated)


def test_counted_things_are_stems_of_the_question_words() -> None:
    assert asked_measure("How many regions does Acme deploy to?") == Measure("count", frozenset({"region"}))


def test_a_possessive_is_read_as_part_of_the_counted_thing() -> None:
    # Before, the apostrophe ended the phrase and the question read as asking for any number at all.
    measure = asked_measure("how many of Acme's people are involved?")
    assert measure.kind == "count" and "peopl" in measure.things
    assert states(measure, "We have three reviewers and five to six active contributors.")
    assert not states(measure, "We started in 2021 with a small pilot.")


def test_what_a_question_is_about_names_no_measurement() -> None:
    # "say about throughput and latency" asks for what was said (a follow-up's point), not for a rate or a duration.
    assert asked_measure("What does Acme say about throughput and latency for metrics?").kind == "number"
    assert asked_measure("What p99 latency does Acme see?").kind == "duration"
    assert asked_measure("How many requests per second does Acme run?").kind == "rate"
