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


def test_a_named_adopters_question_is_also_read_without_the_names() -> None:
    from bot.search.analysis import KnownNames, analyze

    names = KnownNames(frozenset({"gojek", "sap"}), frozenset({"knative", "kserve"}),
                       {"gojek": {"gojek"}, "sap": {"sap"}}, {"knative": {"knativ"}, "kserve": {"kserv"}}, (),
                       ("gojek", "sap", "knative", "kserve"))
    a = analyze("How long has Gojek used Knative?", names)
    assert a.adopters == {"gojek"} and a.unnamed_text == "How long has used?"
    assert analyze("How long have KServe adopters used it?", names).unnamed_text == ""  # no adopter named


def test_names_asked_about_are_capitalised_or_mixed_case_words_not_acronyms() -> None:
    from bot.search.analysis import name_candidates

    # Plural acronyms are concepts like their singulars; a mixed-case word is spelled like a product.
    assert name_candidates("Do any adopters track CVEs or GPUs with the vLLM runtime?", set()) == ["vLLM"]
    assert name_candidates("does the team run eBPF probes at Contoso?", set()) == ["eBPF", "Contoso"]
    assert name_candidates("Does the team at Contoso use KServe for serving?", {"kserve"}) == ["Contoso"]


def test_a_project_asked_about_beside_p_adopters_is_a_topic() -> None:
    from bot.search.analysis import KnownNames, analyze

    names = KnownNames(frozenset({"gojek"}), frozenset({"knative", "kserve"}), {"gojek": {"gojek"}},
                       {"knative": {"knativ"}, "kserve": {"kserv"}}, (), ("gojek", "knative", "kserve"))
    scoped = analyze("Which KServe adopter uses Knative?", names)
    assert scoped.scoped == {"kserve"} and "knativ" in scoped.topic_terms and "kserv" not in scoped.topic_terms
    # A project named alone, or beside one adopter, is in every sentence of its interviews: no topic word.
    assert "knativ" not in analyze("How does Gojek use Knative in production?", names).topic_terms
