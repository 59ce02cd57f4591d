"""Follow-up resolution (bot/answer/followup.py): each kind of follow-up, questions that stand alone inside a
conversation, follow-ups with nothing to refer to; over a hand-made catalog, the fixture corpus and the real one."""

from __future__ import annotations

import pytest

from bot.answer.answerer import Answerer
from bot.answer.followup import (ELLIPSIS, MORE, ORDINAL, PRONOUN, STANDALONE, SUBSET, UNRESOLVED, Recall,
                                 Resolver)
from bot.answer.recall import FollowUps, recall_of
from bot.search.mentions import Catalog, Who

PAIRS = [("Knative", "Gojek"), ("Knative", "IBM"), ("Knative", "Y Meadows"), ("KServe", "Cloudera"),
         ("KServe", "SAP"), ("KServe", "CyberAgent, Inc."), ("Tekton", "Adopter 3"), ("Buildpacks", "Adopter 3"),
         ("OpenFGA", "Grafana")]
# What the fake "answers" cite, per resolved question (everything else: nothing, as a refusal).
CITED = {
    "Which Knative adopter runs on spot instances?": (Who("Knative", "Y Meadows"), Who("Knative", "IBM")),
    "Which Tekton adopter uses the Matrix feature?": (Who("Tekton", "Adopter 3"),),
    "Which KServe adopters contribute upstream?": (Who("KServe", "SAP"), Who("KServe", "Cloudera"),
                                                   Who("KServe", "CyberAgent, Inc.")),
}

# What the fake answers' first citations list (bot/answer/points.py).
POINTS = {"What drew Grafana to OpenFGA?": ("multi-tenancy", "storage")}


class Replays:
    """A fake `recall` that counts how often a turn is replayed."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, question: str, exclude: frozenset[str]) -> Recall:
        self.calls.append(question)
        return Recall(CITED.get(question, ()), frozenset({f"chunk-of:{question}"}), POINTS.get(question, ()))


def resolve(history: list[str], question: str, replays: Replays | None = None) -> tuple[str, str]:
    r = Resolver(Catalog(PAIRS), replays or Replays()).resolve(history, question)
    return r.question, r.kind


def test_ellipsis_puts_the_new_adopter_or_scope_into_the_previous_question() -> None:
    assert resolve(["How long has Gojek used Knative?"], "and IBM?") == ("How long has IBM used Knative?", ELLIPSIS)
    # Another project's adopter brings its project along.
    assert resolve(["How long has Gojek used Knative?"], "and SAP?")[0] == "How long has SAP used KServe?"
    assert resolve(["How long has Gojek used Knative?"], "what about the KServe adopters?")[0] == \
        "How long has the KServe adopters used KServe?"
    assert resolve(["Do KServe adopters think the community will grow?"], "and the OpenFGA folks?")[0] == \
        "Do OpenFGA adopters think the community will grow?"
    # A chain: each ellipsis builds on the previous resolution, a bare name is enough.
    assert resolve(["What KServe version is Cloudera running?", "and SAP?"], "cyberagent?")[0] == \
        "What KServe version is CyberAgent, Inc. running?"
    assert resolve(["How many SAP engineers contribute to KServe?"], "and Grafana on the OpenFGA side?")[0] == \
        "How many Grafana engineers contribute to OpenFGA?"


def test_pronouns_take_the_previous_turns_adopter_and_project() -> None:
    assert resolve(["How long has Gojek used Knative?"], "why did they pick it?") == \
        ("why did Gojek pick Knative?", PRONOUN)
    assert resolve(["How long has Gojek used Knative?"], "how big is their deployment?") == \
        ("how big is Gojek's deployment? (Knative)", PRONOUN)
    # The previous question named no adopter: whom its answer cited first (replayed) is "they".
    replays = Replays()
    question, kind = resolve(["Which Tekton adopter uses the Matrix feature?"], "how long have they used it?",
                             replays)
    assert question == "how long have Adopter 3 (Tekton) used Tekton?"  # "Adopter 3" alone is ambiguous
    assert replays.calls == ["Which Tekton adopter uses the Matrix feature?"]
    assert resolve(["Which Tekton adopter uses the Matrix feature?"], "did it make their pipelines easier?")[0] == \
        "did Tekton make Adopter 3's (Tekton) pipelines easier?"
    # "there" is an adopter, "is there" is not.
    assert resolve(["Which Knative adopter runs on spot instances?"], "how many services run there?")[0] == \
        "how many services run at Y Meadows? (Knative)"
    # A pronoun after a name in the same question refers to that name; a name after it doesn't.
    assert resolve(["How long has Gojek used Knative?"], "how about IBM, how many of their people work on it?") \
        == ("how many of IBM's people work on Knative?", ELLIPSIS)
    assert resolve(["How long has Gojek used Knative?"], "so why did they pick it?")[0] == "why did Gojek pick Knative?"
    assert resolve(["Who was interviewed from Gojek?"], "what did his team like on Grafana?")[0] == \
        "what did Gojek's team like on Grafana? (Knative)"


def test_subsets_are_among_the_previous_answers_adopters() -> None:
    assert resolve(["What do the KServe adopters use it for?"], "which of them run it in production?") == \
        ("which of the KServe adopters run KServe in production?", SUBSET)
    assert resolve(["Why do Cloudera and SAP use KServe?"], "which of those run it on GPUs?")[0] == \
        "which of Cloudera and SAP run KServe on GPUs?"


def test_ordinals_pick_from_the_adopters_named_or_cited() -> None:
    assert resolve(["Why did Gojek and IBM pick Knative?"], "what does the second one run on it?") == \
        ("what does IBM run on Knative?", ORDINAL)
    # A question with nothing else: the previous question about that adopter.
    assert resolve(["Why did Gojek and IBM pick Knative?"], "the first one?")[0] == "Why did Gojek pick Knative?"
    # From the previous answer's list, in the order the answer shows it; "they" is then that adopter.
    assert resolve(["Which KServe adopters contribute upstream?"],
                   "the last adopter you mentioned: why do they contribute?")[0] \
        == "CyberAgent, Inc.: why do CyberAgent, Inc. contribute? (KServe)"
    # With no words of its own, the ordinal's adopter in the previous question.
    # ("Which" asked of one adopter becomes "Does": "Which Cloudera contribute upstream?" before.)
    assert resolve(["Which KServe adopters contribute upstream?"], "the second one?")[0] == \
        "Does Cloudera contribute upstream?"
    assert resolve(["Which of the KServe adopters use GPUs?"], "and SAP?")[0] == "Does SAP use GPUs?"
    # "the other one": the one of two not picked.
    assert resolve(["Why did Gojek and IBM pick Knative?", "the first one?"], "and the other one?")[0] == \
        "Why did IBM pick Knative?"


def test_more_on_the_same_topic_asks_the_previous_subject_again() -> None:
    assert resolve(["What did Knative do for Gojek in terms of value?"], "any numbers on that?") == \
        ("What did Knative do for Gojek in terms of value? any numbers on that?", MORE)
    # "the second one" after an answer about one adopter that lists nothing: the subject asked again.
    assert resolve(["What were the two main things that drew Grafana to OpenFGA?"], "say more about the second one")[0] \
        == "What were the two main things that drew Grafana to OpenFGA? say more about the second one"
    # Narrowed to the adopter an ordinal picked.
    assert resolve(["Did Cloudera or SAP hit any challenges?"], "say more about the first one's concern")[0] == \
        "Did Cloudera hit any challenges? say more about Cloudera's concern"
    # "what else" leaves out what the previous answer cited.
    r = Resolver(Catalog(PAIRS), Replays()).resolve(["How long has Gojek used Knative?"], "what else did they say?")
    assert r.kind == MORE and r.exclude == {"chunk-of:How long has Gojek used Knative?"}


def test_an_ordinal_after_an_answer_that_lists_points_picks_that_point() -> None:
    history = ["What drew Grafana to OpenFGA?"]
    # More about the point: the subject asked again, with the point in place of the ordinal.
    assert resolve(history, "say more about the second one") == \
        ("What drew Grafana to OpenFGA? say more about storage", ORDINAL)
    # The point alone, or inside a question of its own, with whom and which project it was about.
    assert resolve(history, "the last one?") == ("What does Grafana say about storage? (OpenFGA)", ORDINAL)
    assert resolve(history, "why does the first one matter to them?") == \
        ("why does multi-tenancy matter to Grafana? (OpenFGA)", ORDINAL)
    # A place the list doesn't have is not guessed: the subject is asked again with the words as they are.
    assert resolve(history, "say more about the fourth one") == \
        ("What drew Grafana to OpenFGA? say more about the fourth one", MORE)


def test_a_question_that_stands_alone_is_answered_alone() -> None:
    history = ["How long has Gojek used Knative?"]
    assert resolve(history, "What do OpenFGA adopters say about performance?") == \
        ("What do OpenFGA adopters say about performance?", STANDALONE)
    assert resolve(history, "Why did SAP choose KServe?") == ("Why did SAP choose KServe?", STANDALONE)
    assert resolve(history, "Is there a KServe adopter running on GPUs?")[1] == STANDALONE
    # Its own pronouns refer inside it.
    assert resolve(history, "Why do Cloudera and SAP like KServe, and how do they run it?")[1] == STANDALONE
    # A standalone question in between breaks the chain: "they" is its adopters, not Gojek.
    assert resolve(history + ["Why did SAP choose KServe?"], "how long have they used it?")[0] == \
        "how long have SAP used KServe?"
    assert resolve([], "and IBM?") == ("and IBM?", STANDALONE)


def test_a_follow_up_with_nothing_to_refer_to_is_answered_as_asked() -> None:
    assert resolve([], "why did they pick it?") == ("why did they pick it?", UNRESOLVED)
    assert resolve(["How long has Gojek used Knative?"], "and the other one?") == ("and the other one?", UNRESOLVED)
    # The previous answer cited no one (a refusal): "they" stays; "it" is still the project it named.
    assert resolve(["Which Knative adopter runs on the moon?"], "why do they?") == ("why do they?", UNRESOLVED)
    # "the fourth one" of three is not guessed.
    assert resolve(["Which KServe adopters contribute upstream?"], "the fourth one?")[1] == UNRESOLVED


def test_earlier_turns_are_replayed_only_when_needed_and_then_remembered() -> None:
    replays = Replays()
    resolve(["How long has Gojek used Knative?", "and IBM?"], "why did they pick it?", replays)
    assert replays.calls == []  # every turn named its adopter
    follow = FollowUps()
    calls: list[str] = []

    def compute() -> Recall:
        calls.append("x")
        return Recall((Who("Knative", "IBM"),))

    assert follow.recall(("k",), compute) == follow.recall(("k",), compute) and calls == ["x"]
    follow.remember(("k2",), Recall())
    assert follow.recall(("k2",), compute) == Recall() and calls == ["x"]


def test_recall_lists_adopters_in_answer_order() -> None:
    class H:
        def __init__(self, project: str, adopter: str, cid: str) -> None:
            self.chunk = type("C", (), {"project": project, "adopter": adopter, "chunk_id": cid})()

    hits = [H("KServe", "SAP", "1"), H("Knative", "IBM", "2"), H("KServe", "Cloudera", "3"), H("KServe", "SAP", "4")]
    assert recall_of(hits, True).adopters == (Who("KServe", "SAP"), Who("KServe", "Cloudera"), Who("Knative", "IBM"))
    assert recall_of(hits, False) == Recall()


# --- through the Answerer ---------------------------------------------------------------------------------

def test_answerer_answers_the_resolved_question(fake_answerer: Answerer) -> None:
    alone = fake_answerer.ask("How long has Acme Rockets used Knative?", 3)
    assert alone.resolved_question == alone.question and alone.to_dict()["resolved_question"] == alone.question
    follow = fake_answerer.ask("and Globex?", 3, history=["How long has Acme Rockets used Knative?"])
    assert follow.question == "and Globex?"
    assert follow.resolved_question == "How long has Globex Corporation used Widgetd?"
    assert follow.answered and {c.adopter for c in follow.citations} == {"Globex Corporation"}
    again = fake_answerer.ask("and Globex?", 3, history=["How long has Acme Rockets used Knative?"])
    assert again.to_dict() | {"took_ms": 0} == follow.to_dict() | {"took_ms": 0}  # deterministic
    they = fake_answerer.ask("what challenges did they face?", 3,
                             history=["How long has Acme Rockets used Knative?", "and Globex?"])
    assert they.resolved_question == "what challenges did Globex Corporation face? (Widgetd)"
    assert they.citations[0].adopter == "Globex Corporation"


def test_answerer_replays_a_turn_whose_answer_named_the_adopter(fake_answerer: Answerer) -> None:
    first = "Which adopter runs on 1,200 nodes?"
    follow = fake_answerer.ask("what challenges did they face?", 3, history=[first])
    assert follow.resolved_question.startswith("what challenges did Globex Corporation face?")
    fake_answerer.followups = FollowUps()  # nothing remembered: the first turn is replayed, the same way
    assert fake_answerer.ask("what challenges did they face?", 3, history=[first]).resolved_question == \
        follow.resolved_question


@pytest.mark.slow
@pytest.mark.parametrize("history, question, resolved, adopters", [
    (["who runs knative on GKE spot instances?"], "how long have they been using it?",
     "how long have Y Meadows been using Knative?", {"Y Meadows"}),
    (["what kserve version is cyberagent running?"], "and nutanix?", "what kserve version is Nutanix running?",
     {"Nutanix"}),
    (["which openfga adopter is the european cash-flow fintech?"], "how many customers depend on openfga there?",
     "how many customers depend on openfga at Agicap?", {"Agicap"}),
    (["what do the tekton adopters use tekton for?"], "which of them is itself an open source project?",
     "which of the Tekton adopters is itself an open source project?", {"Shipwright Project"}),
    (["Did Chainguard or GitHub hit any challenges adopting in-toto?"], "say more about the first one's concern",
     "Did Chainguard hit any challenges adopting in-toto? say more about Chainguard's concern", {"Chainguard"}),
    (["How long has Gojek used Knative?"], "What do OpenFGA adopters say about performance?",
     "What do OpenFGA adopters say about performance?", {"Agicap", "Docker", "Grafana", "Read AI", "Zuplo"}),
])
def test_real_follow_ups_resolve_and_cite_the_right_adopters(real_answerer: Answerer, history: list[str],
                                                              question: str, resolved: str,
                                                              adopters: set[str]) -> None:
    answer = real_answerer.ask(question, 5, history=history)
    assert answer.resolved_question == resolved
    cited = {c.adopter for c in answer.citations}
    assert answer.answered and adopters <= cited
    if len(adopters) > 1:  # the standalone question about OpenFGA adopters does not drag Gojek in
        assert "Gojek" not in cited


@pytest.mark.slow
def test_real_ordinal_picks_the_listed_point_of_the_previous_answer(real_answerer: Answerer) -> None:
    first = real_answerer.ask("What factors limit KServe's potential, according to Cloudera?", 5)
    assert first.answered and first.citations[0].adopter == "Cloudera"
    listed = first.citations[0].text
    follow = real_answerer.ask("tell me more about the last one", 5, history=[first.question])
    # The last item of the list the answer quoted, put in for "the last one", verbatim from that passage.
    point = follow.resolved_question.split("tell me more about ", 1)[1]
    assert point and listed.rstrip().endswith(point)
    assert follow.answered and {c.adopter for c in follow.citations} == {"Cloudera"}


@pytest.mark.slow
def test_real_ordinal_point_that_names_a_metric_is_answered_not_refused(real_answerer: Answerer) -> None:
    # The point is "Throughput and latency for metrics": a topic, not a request for a rate or a latency.
    follow = real_answerer.ask("and what about the second one?", 5,
                               history=["Which Knative features does Adopter 4 rely on?"])
    assert "latency" in follow.resolved_question and "Adopter 4" in follow.resolved_question
    assert follow.answered and {c.adopter for c in follow.citations} == {"Adopter 4"}


@pytest.mark.slow
def test_real_follow_up_asking_for_a_number_never_given_is_refused(real_answerer: Answerer) -> None:
    history = ["which in-toto adopter is the aerospace and defense company?"]
    when = real_answerer.ask("when did they start using the in-toto libraries?", 5, history=history)
    assert when.answered and when.resolved_question == "when did Lockheed Martin start using the in-toto libraries?"
    version = real_answerer.ask("which version of the libraries are they on now?", 5,
                                history=history + ["when did they start using the in-toto libraries?"])
    assert "Lockheed Martin" in version.resolved_question and not version.answered and version.related
    assert real_answerer.ask("and nutanix?", 5, history=["what kserve version is cyberagent running?"]).answered
