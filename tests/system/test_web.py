"""The chat page in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-python)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import pytest

from bot.answer.answerer import Answerer
from bot.serve.app import create_app
from tests.fakes import FakeEmbedder
from bot.index.build import build
from tests.live import LiveServer

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def norm(text: str) -> str:
    """Whitespace-normalized text."""
    return " ".join(text.split())


@pytest.mark.slow
def test_chat_answer_citation_and_highlighted_quote(browser, real_settings, real_answerer) -> None:
    question = "Why did Gojek choose Knative?"
    with LiveServer(create_app(real_settings, real_answerer, poll_seconds=0)) as live:
        expected = httpx.post(f"{live.url}/ask", json={"question": question}, timeout=30).json()
        assert expected["answered"] and expected["citations"]
        page = browser.new_page(viewport={"width": 1000, "height": 1100})
        page.goto(live.url)
        page.wait_for_selector("#status:has-text('interviews indexed')")
        assert page.evaluate("document.activeElement.id") == "question"  # ready to type

        page.keyboard.type(question)
        page.keyboard.press("Enter")  # Enter sends
        page.wait_for_selector(".turn .answer button.cite")
        turn = page.locator(".turn").first
        assert norm(turn.locator(".q").inner_text()) == question
        markers = turn.locator(".answer button.cite")
        assert markers.count() == len(expected["citations"])
        assert turn.locator(".citations li").count() == len(expected["citations"])
        first = expected["citations"][0]
        assert first["adopter"] in turn.locator(".citations li").first.inner_text()
        assert page.evaluate("document.activeElement.id") == "question"  # focus back for the next question

        markers.first.click()
        mark = turn.locator(".source mark").first
        mark.wait_for()
        assert norm(mark.inner_text()) == norm(first["quote"])
        cited = turn.locator(".source .part.cited").first
        assert norm(first["quote"]) in norm(cited.inner_text())
        assert page.evaluate("document.activeElement.classList.contains('source')")  # focus moved to the source
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-answer.png"))
        page.set_viewport_size({"width": 1000, "height": 1400})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "web-overview.png"))  # the picture in docs/screenshot.png

        page.keyboard.press("Escape")  # closes the source, focus back on the marker
        assert turn.locator(".source mark").count() == 0
        assert page.evaluate("document.activeElement.classList.contains('cite')")

        page.fill("#question", "What is the best recipe for banana bread with walnuts?")
        page.click("#send")
        page.wait_for_selector(".turn:nth-of-type(2) .badge")
        second = page.locator(".turn").nth(1)
        assert second.locator(".badge").inner_text().lower() == "not in the interviews"
        assert second.locator(".related li").count() >= 1
        assert page.locator(".turn").count() == 2  # the earlier question stays in the conversation
        second.locator(".related button.link").first.click()
        second.locator(".source .part.cited").first.wait_for()

        page.reload()  # the conversation survives a reload of the tab
        page.wait_for_selector(".turn:nth-of-type(2) .badge")
        assert page.locator(".turn").count() == 2
        page.close()

        phone = browser.new_page(viewport={"width": 375, "height": 800})
        phone.goto(live.url)
        phone.fill("#question", question)
        phone.keyboard.press("Enter")
        phone.wait_for_selector(".turn .answer button.cite")
        phone.locator(".turn .answer button.cite").first.click()
        phone.locator(".turn .source mark").first.wait_for()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"page is {width}px wide at a 375px viewport"
        phone.screenshot(path=str(ARTIFACTS / "web-phone.png"), full_page=True)
        phone.close()


HOSTILE = """# Knative Adopter Interview - Evil <img src=x onerror="window.pwned=1"> Corp

## Motivation

### What drew you to <b>the</b> project? <script>window.pwned=2</script>

We needed scale to zero. <img src=x onerror="window.pwned=3"> Our batch jobs idle <i>overnight</i>.
"""


def test_corpus_text_is_never_html(browser, fake_settings) -> None:
    (fake_settings.corpus_dir / "knative" / "evil.md").write_text(HOSTILE, encoding="utf-8")
    embedder = FakeEmbedder()
    build(fake_settings.corpus_dir, fake_settings.index_dir, embedder)
    answerer = Answerer(fake_settings, embedder=embedder)
    answerer.reload()
    with LiveServer(create_app(fake_settings, answerer, poll_seconds=0)) as live:
        page = browser.new_page()
        page.goto(live.url)
        page.wait_for_selector("#status:has-text('interviews indexed')")
        page.fill("#question", "What drew you to the project? scale to zero overnight batch jobs")
        page.keyboard.press("Enter")
        page.wait_for_selector(".turn .extra button.link")
        openers = page.locator(".turn .extra button.link")
        for i in range(openers.count()):
            if "Evil" in openers.nth(i).inner_text():
                openers.nth(i).click()
                break
        else:
            pytest.fail("the hostile interview was not among the cited or related passages")
        page.wait_for_selector(".turn .source .part.cited")
        text = page.locator("#conversation").inner_text()
        assert '<img src=x onerror="window.pwned=3">' in text
        assert "<b>the</b>" in text or "<b>the</b>" in page.locator("#conversation").text_content()
        assert page.locator("#conversation img, #conversation script, #conversation b, #conversation i").count() == 0
        assert page.locator("#project img").count() == 0
        assert page.evaluate("window.pwned") is None
        page.close()


def test_docs_page_lists_every_operation_offline(browser, fake_settings, fake_answerer) -> None:
    with LiveServer(create_app(fake_settings, fake_answerer, poll_seconds=0)) as live:
        page = browser.new_page()
        remote: list[str] = []
        page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(live.url) else None)
        page.goto(f"{live.url}/docs")
        page.wait_for_selector(".opblock")
        spec = httpx.get(f"{live.url}/openapi.json").json()
        operations = sum(len(item) for item in spec["paths"].values())
        assert page.locator(".opblock").count() == operations
        assert remote == []
        page.close()


def test_source_link_from_slack_opens_the_passage(browser, fake_settings, fake_answerer) -> None:
    from bot.slack.blocks import passage_url

    chunk = next(c for c in fake_answerer.index.chunks if c.adopter == "Acme Rockets" and "scale to zero" in c.text)
    with LiveServer(create_app(fake_settings, fake_answerer, poll_seconds=0)) as live:
        page = browser.new_page()
        page.goto(passage_url(live.url, chunk.chunk_id))
        page.wait_for_selector(".turn.linked .source .part.cited")
        cited = page.locator(".turn.linked .source .part.cited").inner_text()
        assert norm(chunk.text) in norm(cited)
        assert "Acme Rockets" in page.locator(".turn.linked .source-head").inner_text()
        page.close()
