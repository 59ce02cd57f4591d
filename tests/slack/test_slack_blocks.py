"""Block Kit rendering and Slack text helpers: escaping, limits, splitting, related passages, thanks line."""

from __future__ import annotations

import json

from hypothesis import given, settings as hsettings, strategies as st

from bot.answer.answerer import Answer, Citation, Passage
from bot.slack.blocks import (FEEDBACK_BLOCK, MAX_BLOCKS, THANKS_BLOCK, answer_message,
                              notice_message, passage_url, with_thanks)
from bot.slack.mrkdwn import CONTINUED, clean_question, escape, split_text, truncate
from tests.slack_fake import check_message


def citation(n: int, quote: str = "We wanted scale to zero.", **kw: object) -> Citation:
    """A citation with sensible defaults."""
    fields = dict(n=n, chunk_id=f"c{n:04d}", source="knative/acme.md", project="Knative", adopter="Acme",
                  section="Motivation", question="What drew you?", text=quote, quote=quote, line_start=10,
                  line_end=11, score=0.8)
    fields.update(kw)
    return Citation(**fields)  # type: ignore[arg-type]


def answer_with(citations: list[Citation], text: str | None = None) -> Answer:
    """An answered Answer citing `citations`."""
    body = text or "Found in 1 Knative interview.\n- Knative · Acme: " + " … ".join(
        f"“{c.quote}” [{c.n}]" for c in citations)
    return Answer("why scale to zero?", body, True, citations, 12.0)


def check_limits(text: str, blocks: list[dict]) -> None:
    """Slack's Block Kit rules (see tests/slack_fake.check_message)."""
    check_message({"text": text, "blocks": blocks})


def test_escape_neutralises_pings_and_links() -> None:
    assert escape("<!channel> & <@U1> <https://x|y>") == "&lt;!channel&gt; &amp; &lt;@U1&gt; &lt;https://x|y&gt;"


def test_clean_question_removes_the_bots_mention_and_unescapes() -> None:
    raw = "<@UBOT>  what about <https://knative.dev|Knative> &amp; <#C1|general> for <@U2>?  <!here>"
    assert clean_question(raw, "UBOT") == "what about Knative & #general for @U2?"
    assert clean_question("<@UBOT>", "UBOT") == ""


def test_answer_blocks_have_sources_links_and_buttons() -> None:
    text, blocks = answer_message(answer_with([citation(1), citation(2, "Idle cost a fortune.")]), "a1",
                                  "https://qabot.example.com/")
    check_limits(text, blocks)
    dump = json.dumps(blocks, ensure_ascii=False)
    assert "*[1]* Knative · Acme · What drew you?" in dump
    assert "<https://qabot.example.com/#source=c0002|knative/acme.md:10-11>" in dump
    assert "• Knative · Acme:" in blocks[0]["text"]["text"]
    actions = [b for b in blocks if b.get("block_id") == FEEDBACK_BLOCK]
    assert actions and all(e["value"] == "a1" for e in actions[0]["elements"])


def test_without_public_url_the_source_is_shown_without_a_link() -> None:
    _, blocks = answer_message(answer_with([citation(1)]), "a1", None)
    dump = json.dumps(blocks, ensure_ascii=False)
    assert "`knative/acme.md:10-11`" in dump and "#source=" not in dump
    assert passage_url(None, "x") is None


def test_long_answer_is_split_at_word_boundaries_with_visible_continuation() -> None:
    long_quote = " ".join(f"word{i}" for i in range(2500))  # ~17,000 characters
    answer = answer_with([citation(1, long_quote)])
    text, blocks = answer_message(answer, "a1")
    check_limits(text, blocks)
    answer_parts = [b["text"]["text"] for b in blocks if b.get("block_id", "").startswith("qabot_answer")]
    assert len(answer_parts) > 1
    assert all(p.endswith(CONTINUED) for p in answer_parts[:-1])
    shown = " ".join(p.replace(CONTINUED, "") for p in answer_parts).split()
    shown_words = [w.strip("“”") for w in shown if w.strip("“”").startswith("word")]
    assert shown_words == long_quote.split()  # nothing lost, no word cut
    assert text.endswith("…") and len(text) <= 3000


def test_many_citations_stay_within_fifty_blocks_and_say_what_is_left_out() -> None:
    citations = [citation(n, " ".join(["scale"] * 1200)) for n in range(1, 21)]  # each needs 3 sections
    text, blocks = answer_message(answer_with(citations, "Found in 20 interviews."), "a1")
    check_limits(text, blocks)
    assert len(blocks) <= MAX_BLOCKS - 1  # one left for the thanks line
    shown = [n for n in range(1, 21) if f"*[{n}]*" in json.dumps(blocks)]
    assert shown == list(range(1, len(shown) + 1)) and len(shown) < 20
    assert f"{20 - len(shown)} more sources not shown" in json.dumps(blocks)
    assert blocks[-1]["block_id"] == FEEDBACK_BLOCK


def test_not_answered_says_so_and_lists_related_passages() -> None:
    related = [Passage("p1", "kserve/x.md", "KServe", "Globex", "Usage", "How do you deploy?",
                       "We deploy with <!here> helm charts. " * 30, 3, 9, 0.2)]
    answer = Answer("what is the capital of France?", "The interviews don't cover this.", False, [], 3.0, related)
    text, blocks = answer_message(answer, "a9", "https://q.example")
    check_limits(text, blocks)
    dump = json.dumps(blocks, ensure_ascii=False)
    assert text == "The interviews don't cover this."
    assert "related, not an answer" in dump and "KServe · Globex · How do you deploy?" in dump
    assert "<!here>" not in dump and "&lt;!here&gt;" in dump
    assert "…" in dump  # the excerpt is visibly shortened
    assert "Sources" not in dump
    assert any(b.get("block_id") == FEEDBACK_BLOCK for b in blocks)


def test_asked_by_header_for_slash_commands_escapes_the_question() -> None:
    answer = answer_with([citation(1)])
    answer.question = "is <!channel> safe?"
    _, blocks = answer_message(answer, "a1", asked_by="U0ALICE")
    head = blocks[0]["elements"][0]["text"]
    assert head.startswith("<@U0ALICE> asked:") and "&lt;!channel&gt;" in head


def test_thanks_line_replaces_the_previous_one() -> None:
    _, blocks = answer_message(answer_with([citation(1)]), "a1")
    once = with_thanks(blocks, "U0ANN", "up", 1, 0)
    twice = with_thanks(once, "U0BOB", "down", 1, 1)
    thanks = [b for b in twice if b.get("block_id") == THANKS_BLOCK]
    assert len(thanks) == 1 and "<@U0BOB>" in thanks[0]["elements"][0]["text"]
    at = [b.get("block_id") for b in twice].index(THANKS_BLOCK)
    assert twice[at - 1]["block_id"] == FEEDBACK_BLOCK
    evil = with_thanks(blocks, "<!channel>", "up", 1, 0)
    assert "<!channel>" not in json.dumps(evil)


def test_notice_is_escaped() -> None:
    text, blocks = notice_message("a < b & c")
    assert text == "a &lt; b &amp; c" and blocks[0]["text"]["text"] == text


def test_truncate_is_visible() -> None:
    assert truncate("short", 10) == "short"
    cut = truncate("alpha beta gamma delta", 12)
    assert cut.endswith("…") and len(cut) <= 12 and cut.startswith("alpha")


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        min_size=1, max_size=40).filter(lambda w: not any(c.isspace() for c in w)),
                min_size=1, max_size=300),
       st.integers(min_value=60, max_value=400))
def test_split_text_keeps_every_word_within_the_limit(words: list[str], limit: int) -> None:
    text = " ".join(words)
    parts = split_text(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert all(p.endswith(CONTINUED) for p in parts[:-1])
    rebuilt = " ".join(p[: -len(CONTINUED)] if p.endswith(CONTINUED) and i < len(parts) - 1 else p
                       for i, p in enumerate(parts)).split()
    assert rebuilt == text.split()


def test_markdown_bold_from_transcripts_shows_as_slack_bold() -> None:
    c = citation(1, "**Production.** We run **5,200 requests/sec** at peak.", line_start=7, line_end=7)
    _, blocks = answer_message(answer_with([c]), "a1")
    dump = json.dumps(blocks, ensure_ascii=False)
    assert "*Production.* We run *5,200 requests/sec* at peak." in dump and "**" not in dump
    assert "`knative/acme.md:7`" in dump


def test_a_long_word_after_an_early_break_moves_whole_to_the_next_part() -> None:
    # Found by the property test above: the word fits in a part, so it is not cut in two.
    words = ["0", "0", "0" * 40, "0" * 16]
    parts = split_text(" ".join(words), 60)
    assert parts[0].startswith("0 0\n") and parts[-1].split() == words[2:]
