"""Reading a question once (bot/search/analysis.py): the acronyms that stand where a company stands."""

from __future__ import annotations

import pytest

from bot.search.analysis import acronyms_in


@pytest.mark.parametrize("question, found", [
    ("How long has IBM used Knative?", ["IBM"]),  # the subject of the question
    ("Does AWS run it in production?", ["AWS"]),
    ("How big is OPPO's CubeFS deployment?", ["OPPO"]),  # an owner
    ("How are KServe adopters approaching LLM serving?", []),  # a concept, and no acronym inside KServe
    ("How does the German ERP giant's runtime load models?", []),  # describes who, names no one
    ("What GPU types does Acme use?", []),
])
def test_acronyms_where_a_company_stands(question: str, found: list[str]) -> None:
    assert acronyms_in(question, set()) == found


def test_an_acronym_the_index_knows_as_a_name_is_not_listed() -> None:
    assert acronyms_in("How long has IBM used Knative?", {"ibm"}) == []
