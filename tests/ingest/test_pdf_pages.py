"""PDF citations carry their page: from the passage (index columns) through the answer, the HTTP JSON, the CLI.

The PDF is written here (fpdf2) with one question on page 1 and one on page 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from bot.answer.answerer import Answerer
from bot.cli import main
from bot.config import Settings, get_settings
from tests.fakes import FAKE_MODEL, FakeEmbedder
from bot.index import store
from bot.index.build import build
from bot.ingest.chunking import chunk_interview
from bot.ingest.parse import parse_file, parse_text
from bot.serve.app import create_app

PDF_SOURCE = "widgetd/widgetd-adopter-interview-initech.pdf"
PAGE_2_QUESTION = "What would Initech improve in Widgetd?"
PAGE_2_ANSWER = "The upgrade guide needs a rollback chapter for failed migrations."


def write_two_page_pdf(path: Path) -> None:
    """An interview of two pages: the first question and its answer on page 1, the second on page 2."""
    from fpdf import FPDF

    pdf = FPDF()

    def para(text: str, style: str = "", size: float = 11) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(size * 0.4)

    pdf.add_page()
    para("Widgetd Adopter Interview - Initech", "B", 18)
    para("Interviewee: Ana Lima")
    para("Background", "B", 14)
    para("How long has Initech used Widgetd?", "B")
    para("Initech started with Widgetd in 2021 and runs it on three clusters.")
    pdf.add_page()
    para("Operations", "B", 14)
    para(PAGE_2_QUESTION, "B")
    para(PAGE_2_ANSWER)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))


@pytest.fixture
def pdf_settings(fake_settings: Settings) -> Settings:
    """The fixture corpus (markdown) plus the two-page PDF, indexed with the fake embedder."""
    write_two_page_pdf(fake_settings.corpus_dir / PDF_SOURCE)
    report = build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    assert PDF_SOURCE in report.added and not report.skipped
    return fake_settings


@pytest.fixture
def pdf_answerer(pdf_settings: Settings) -> Answerer:
    answerer = Answerer(pdf_settings, embedder=FakeEmbedder())
    answerer.reload()
    return answerer


def test_passages_know_the_pages_of_their_lines() -> None:
    text = "# T\n\n## Why one?\nA one.\n\n## Why two?\nA two,\ncontinued.\n"
    interview = parse_text(text, "p/x.pdf", fmt="pdf", pages=(1, 5, 8))
    chunks = chunk_interview(interview)
    by_question = {c.question: c for c in chunks}
    assert by_question["Why one?"].pages == (1,) and by_question["Why one?"].page_of(4) == 1
    two = by_question["Why two?"]
    assert (two.line_start, two.line_end, two.pages) == (7, 8, (2, 8))  # starts on page 2, its last line on 3
    assert (two.page_of(7), two.page_of(8)) == (2, 3)
    assert all(c.pages == () and c.page_of(c.line_start) is None
               for c in chunk_interview(parse_text(text, "p/x.md")))


def test_the_index_keeps_pdf_pages_and_an_incremental_build_copies_them(pdf_settings: Settings) -> None:
    corpus, index_dir = pdf_settings.corpus_dir, pdf_settings.index_dir
    expected = chunk_interview(parse_file(corpus / PDF_SOURCE, corpus))
    assert {c.pages for c in expected} == {(1,), (2,)}

    def loaded() -> list:
        return [c for c in store.load(index_dir, "fake").chunks if c.source == PDF_SOURCE]

    assert [(c.chunk_id, c.pages) for c in loaded()] == [(c.chunk_id, c.pages) for c in expected]
    (corpus / "zz.md").write_text("# Z Adopter Interview - Zed\n\n## Usage\n\n### Why?\nBecause.\n")
    report = build(corpus, index_dir, FakeEmbedder())
    assert report.added == ["zz.md"] and PDF_SOURCE in report.unchanged
    assert [(c.chunk_id, c.pages) for c in loaded()] == [(c.chunk_id, c.pages) for c in expected]
    assert all(c.pages == () for c in store.load(index_dir, "fake").chunks if c.source != PDF_SOURCE)


def _page_2_citation(answer) -> object:
    return next(c for c in answer.citations if c.source == PDF_SOURCE and "rollback chapter" in c.quote)


def test_a_citation_on_page_2_carries_its_page(pdf_answerer: Answerer) -> None:
    answer = pdf_answerer.ask(PAGE_2_QUESTION, 3, adopter="Initech")
    cited = _page_2_citation(answer)
    assert (cited.page, cited.page_end) == (2, 2)
    interview = parse_file(pdf_answerer.settings.corpus_dir / PDF_SOURCE, pdf_answerer.settings.corpus_dir)
    assert cited.quote in interview.lines[cited.line_start - 1]  # verbatim at its line, on that page
    assert interview.page_of(cited.line_start) == 2
    first = pdf_answerer.ask("How long has Initech used Widgetd?", 3, adopter="Initech")
    assert any(c.source == PDF_SOURCE and c.page == 1 for c in first.citations)
    markdown = pdf_answerer.ask("What drew you to the project? scale to zero for batch workloads", 3)
    assert markdown.citations and all(c.page is None and c.page_end is None for c in markdown.citations)


def test_http_ask_search_and_sources_carry_the_page(pdf_settings: Settings, pdf_answerer: Answerer) -> None:
    with TestClient(create_app(pdf_settings, pdf_answerer, poll_seconds=0)) as client:
        body = client.post("/ask", json={"question": PAGE_2_QUESTION, "adopter": "Initech"}).json()
        cited = next(c for c in body["citations"] if c["source"] == PDF_SOURCE and "rollback" in c["quote"])
        assert (cited["page"], cited["page_end"]) == (2, 2)
        results = client.get("/search", params={"q": "upgrade guide rollback chapter", "k": 10}).json()["results"]
        hit = next(p for p in results if p["source"] == PDF_SOURCE and "rollback" in p["text"])
        assert hit["page"] == 2
        assert all(p["page"] is None for p in results if p["source"] != PDF_SOURCE)
        source = client.get(f"/sources/{cited['chunk_id']}").json()
        assert (source["page"], source["page_end"]) == (2, 2) and "pages" not in source
        assert [p["page"] for p in source["section_passages"]] == [2]
        other = next(p for p in results if p["source"] != PDF_SOURCE)
        assert client.get(f"/sources/{other['chunk_id']}").json()["page"] is None


def test_cli_ask_names_the_page(pdf_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QABOT_CORPUS_DIR", str(pdf_settings.corpus_dir))
    monkeypatch.setenv("QABOT_INDEX_DIR", str(pdf_settings.index_dir))
    monkeypatch.setenv("QABOT_MODEL", FAKE_MODEL)
    get_settings.cache_clear()
    result = CliRunner().invoke(main, ["ask", PAGE_2_QUESTION, "--adopter", "Initech"])
    assert result.exit_code == 0, result.output
    assert f"({PDF_SOURCE}:" in result.output
    line = next(s for s in result.output.splitlines() if PDF_SOURCE in s and "Operations" in s)
    assert line.endswith(", p. 2)"), line
    as_json = CliRunner().invoke(main, ["ask", "--json", PAGE_2_QUESTION, "--adopter", "Initech"])
    cited = [c for c in json.loads(as_json.stdout)["citations"] if c["source"] == PDF_SOURCE]
    assert cited and cited[0]["page"] == 2


def test_the_web_page_shows_the_page() -> None:
    from bot.serve.app import WEB_DIR

    script = (WEB_DIR / "app.js").read_text(encoding="utf-8")
    assert "p.page" in script and '"p. "' in script and '"pp. "' in script


def test_slack_and_the_openai_sources_name_the_page(pdf_answerer: Answerer) -> None:
    from bot.serve.openai_api import chat_content
    from bot.slack.blocks import answer_message

    answer = pdf_answerer.ask(PAGE_2_QUESTION, 3, adopter="Initech")
    cited = _page_2_citation(answer)
    content = chat_content(answer)
    line = next(s for s in content.splitlines() if s.startswith(f"- [{cited.n}] "))
    assert line.endswith(f"({PDF_SOURCE}:{cited.line_start}, p. 2)") or line.endswith(
        f"({PDF_SOURCE}:{cited.line_start}-{cited.line_end}, p. 2)"), line
    _, blocks = answer_message(answer, "a1")
    assert f"{PDF_SOURCE}:" in json.dumps(blocks) and ", p. 2" in json.dumps(blocks)
    markdown = pdf_answerer.ask("How long has Acme Rockets used Knative?", 3)
    assert markdown.citations and ", p. " not in chat_content(markdown)
