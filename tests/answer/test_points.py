"""The points an answer lists (bot/answer/points.py): an enumeration after a colon, else a passage's list."""

from __future__ import annotations

from bot.answer.points import answer_points

LIST = ("**A:**  \n- Dependency on Widgetd for scaling, which has its own challenges  \n"
        "- Limited number of *active* maintainers  \n1. Slow CI (long runs, flaky infrastructure)")


def test_an_enumeration_after_a_colon_in_the_quote() -> None:
    assert answer_points("Two main factors drew us to it: multi-tenancy and storage.", "") == \
        ("multi-tenancy", "storage")
    assert answer_points("We need three things: speed, cost and safety.", "") == ("speed", "cost", "safety")
    assert answer_points("We need three things: speed, cost, and safety.", "") == ("speed", "cost", "safety")
    # Commas part the points; an "and" inside one of them stays.
    assert answer_points("Two options: either porting the engine and adapting it, or buying one.", "") == \
        ("porting the engine and adapting it", "buying one")


def test_a_list_in_the_passage_when_the_quote_enumerates_nothing() -> None:
    assert answer_points("Limited number of active maintainers", LIST) == (
        "Dependency on Widgetd for scaling, which has its own challenges", "Limited number of active maintainers",
        "Slow CI (long runs, flaky infrastructure)")


def test_no_points_without_a_list() -> None:
    assert answer_points("We use Widgetd Serving. It is great.", "We use Widgetd Serving. It is great.") == ()
    assert answer_points("Note: this sentence happens to have a colon in it and it is not a list at all.", "") == ()
    assert answer_points("One item", "- One item") == ()  # one is not a list
    # Capitals stay (names, acronyms).
    assert answer_points("Used for: GPU jobs and Knative services.", "") == ("GPU jobs", "Knative services")
