"""Citations after the first must carry the question's (IDF-weighted) words; quotes keep to one list item."""

from __future__ import annotations

import numpy as np

from bot.answer import citations
from bot.answer.quotes import pick_quote
from bot.ingest.chunking import Chunk
from bot.search.retriever import Hit


class _Retriever:
    """What citations.cite reads: each row's sentence terms and each term's IDF."""

    def __init__(self, rows: list[list[set[str]]], idf: dict[str, float]) -> None:
        self._rows, self._idf = rows, idf

    def sentence_terms(self, row: int) -> list[frozenset[str]]:
        return [frozenset(s) for s in self._rows[row]]

    def idf(self, term: str) -> float:
        return self._idf.get(term, 5.0)


def _hit(row: int, source: str = "p/a.md") -> Hit:
    chunk = Chunk(chunk_id=f"c{row}", source=source, project="p", adopter="A", section="S", question="Q",
                  heading_path=("Q",), text="t", line_start=1, line_end=1, embed_text="t")
    return Hit(chunk, score=10.0 - row, dense=0.5, row=row)


IDF = {"scale": 1.0, "zero": 3.0}


def test_a_later_passage_with_much_less_of_the_question_is_not_cited() -> None:
    retriever = _Retriever([[{"scale", "zero"}], [{"scale"}], [{"zero", "other"}], [{"other"}]], IDF)
    kept = citations.cite(retriever, [_hit(0), _hit(1), _hit(2), _hit(3)], ["scale", "zero"], across=False,
                          share=0.6)
    # evidence: 1.0, 0.25 ("scale" is common), 0.75, 0 -> the 2nd and 4th fall below 0.6 of the first
    assert [h.row for h in kept] == [0, 2]


def test_the_first_passage_is_always_cited_and_share_zero_keeps_all() -> None:
    retriever = _Retriever([[{"other"}], [{"scale", "zero"}]], IDF)
    hits = [_hit(0), _hit(1)]
    assert [h.row for h in citations.cite(retriever, hits, ["scale", "zero"], across=False, share=0.6)] == [0, 1]
    assert len(citations.cite(retriever, hits, ["scale", "zero"], across=False, share=0.0)) == 2
    assert citations.cite(retriever, [], ["scale"], across=False) == []


def test_across_adopters_each_other_interview_keeps_its_passage() -> None:
    retriever = _Retriever([[{"scale", "zero"}], [{"other"}], [{"other"}]], IDF)
    hits = [_hit(0, "p/a.md"), _hit(1, "p/b.md"), _hit(2, "p/a.md")]
    kept = citations.cite(retriever, hits, ["scale", "zero"], across=True, share=0.6)
    assert [h.row for h in kept] == [0, 1]  # b's passage for coverage; a's weak second passage cut


def test_a_question_of_stop_words_keeps_the_citations_as_chosen() -> None:
    retriever = _Retriever([[set()], [set()]], IDF)
    assert len(citations.cite(retriever, [_hit(0), _hit(1)], [], across=False, share=1.0)) == 2


def _chunk(text: str) -> Chunk:
    return Chunk(chunk_id="c", source="p/a.md", project="p", adopter="A", section="S", question="Q",
                 heading_path=("Q",), text=text, line_start=10, line_end=10 + text.count("\n"), embed_text=text)


def test_a_short_list_item_is_quoted_alone_not_with_a_weaker_item_before_it() -> None:
    text = "* Throughput and latency for metrics\n* Scale to zero is particularly useful.\n* Revision management."
    quote = pick_quote(_chunk(text), ["scale", "zero"], cosines=np.array([0.2, 0.6, 0.1], dtype=np.float32))
    assert (quote.text, quote.line_start, quote.line_end) == ("Scale to zero is particularly useful.", 11, 11)


def test_a_short_sentence_in_running_text_still_takes_its_neighbour() -> None:
    text = "Five years now. We started in 2019 with two clusters."
    quote = pick_quote(_chunk(text), ["years"], cosines=np.array([0.6, 0.2], dtype=np.float32))
    assert quote.text == text


def test_list_items_that_both_answer_are_quoted_together() -> None:
    text = "* Scale to zero saves money.\n* Scale to zero frees the nodes."
    quote = pick_quote(_chunk(text), ["scale", "zero"], cosines=np.array([0.6, 0.58], dtype=np.float32))
    assert quote.text == text[len("* "):]  # both items, verbatim from the first one's words
