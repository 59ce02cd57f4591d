"""The MCP server in-process (the SDK's own `Client` on the server object) over the fixture corpus and the fake
embedder: tools, validation, resources, not ready; and /mcp's API-key rule in the app."""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any, Awaitable, Callable

import pytest
from fastapi.testclient import TestClient
from mcp import Client, MCPError

from bot.answer.answerer import Answerer
from bot.config import Settings
from tests.fakes import FakeEmbedder
from bot.index.build import build
from bot.serve.app import create_app
from bot.serve.mcp_server import build_server, interview_uris
from bot.serve.slots import AnswerSlots

ANSWERED_Q = "What drew you to the project? scale to zero for batch workloads"


def _session(settings: Settings, answerer: Answerer, body: Callable[[Client], Awaitable[Any]],
             not_ready: Callable[[], str | None] = lambda: None) -> Any:
    slots = AnswerSlots(1)

    async def main() -> Any:
        async with Client(build_server(settings, answerer, slots.run, not_ready)) as client:
            return await body(client)

    try:
        return asyncio.run(main())
    finally:
        slots.close()


def test_tools_answer_with_structured_results(fake_settings: Settings, fake_answerer: Answerer) -> None:
    async def body(c: Client) -> dict[str, Any]:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        out: dict[str, Any] = {"tools": tools}
        out["search"] = await c.call_tool("search_interviews", {"query": "autoscaling", "k": 2})
        out["ask"] = await c.call_tool("ask", {"question": ANSWERED_Q, "history": ["Who is Acme?", "  "]})
        chunk = out["ask"].structured_content["citations"][0]["chunk_id"]
        out["source"] = await c.call_tool("get_source", {"chunk_id": chunk})
        out["list"] = await c.call_tool("list_interviews", {})
        return out

    out = _session(fake_settings, fake_answerer, body)
    assert set(out["tools"]) == {"search_interviews", "ask", "get_source", "list_interviews"}
    schema = out["tools"]["search_interviews"].input_schema
    assert schema["required"] == ["query"] and schema["properties"]["k"]["maximum"] == 50
    assert out["tools"]["ask"].input_schema["properties"]["question"]["maxLength"] == fake_settings.max_question_chars
    assert all(t.annotations.read_only_hint for t in out["tools"].values())
    for name in ("search", "ask", "source", "list"):
        result = out[name]
        assert not result.is_error, result.content
        assert json.loads(result.content[0].text) == result.structured_content  # the text is the same JSON
    hits = out["search"].structured_content["results"]
    assert len(hits) == 2 and {"chunk_id", "source", "line_start", "line_end", "text"} <= set(hits[0])
    ask = out["ask"].structured_content
    assert ask["answered"] is True and "[1]" in ask["answer"] and ask["citations"][0]["quote"]
    source = out["source"].structured_content
    assert source["chunk_id"] == ask["citations"][0]["chunk_id"] and source["section_passages"]
    listed = out["list"].structured_content
    assert listed["count"] == 3 and all(i["uri"].startswith("interview://") for i in listed["interviews"])


@pytest.mark.parametrize("tool,args,needle", [
    ("search_interviews", {"query": "   "}, "must not be blank"),
    ("search_interviews", {"query": "autoscaling", "k": 500}, "less than or equal to 50"),
    ("search_interviews", {}, "query"),
    ("ask", {"question": "x" * 2001}, "at most 2000 characters"),
    ("ask", {"question": "why?", "history": "not a list"}, "history"),
    ("ask", {"question": "why?", "history": ["q"] * 21}, "at most 20 items"),
    ("get_source", {"chunk_id": "no-such-chunk"}, "no passage with id 'no-such-chunk'"),
    ("get_source", {"chunk_id": ""}, "at least 1 character"),
])
def test_invalid_arguments_are_error_results(fake_settings: Settings, fake_answerer: Answerer, tool: str,
                                             args: dict, needle: str) -> None:
    result = _session(fake_settings, fake_answerer, lambda c: c.call_tool(tool, args))
    assert result.is_error and needle in result.content[0].text, result.content[0].text


def test_interviews_are_resources(fake_settings: Settings, fake_answerer: Answerer) -> None:
    async def body(c: Client) -> tuple[Any, Any, Any]:
        listed = (await c.list_resources()).resources
        read = await c.read_resource(listed[0].uri)
        templates = (await c.list_resource_templates()).resource_templates
        return listed, read, templates

    listed, read, templates = _session(fake_settings, fake_answerer, body)
    uris = [str(r.uri) for r in listed]
    assert uris == ["interview://knative/acme-rockets", "interview://widgetd/notes",
                    "interview://widgetd/globex-corporation"]
    first = listed[0]
    assert first.mime_type == "text/markdown" and first.meta["source"] == "knative/knative-adopter-interview-acme.md"
    assert first.meta["adopter"] == "Acme Rockets" and first.meta["chunks"] == 6
    text = read.contents[0].text
    assert text.startswith("# Knative Adopter Interview - Acme Rockets\n")
    assert "### What drew you to the project? (lines " in text and "scale to zero for our batch workloads" in text
    assert [t.uri_template for t in templates] == ["interview://{project}/{adopter}"]

    async def unknown(c: Client) -> str:
        with pytest.raises(MCPError) as missing:
            await c.read_resource("interview://knative/nobody")
        return str(missing.value)

    assert "no interview at interview://knative/nobody" in _session(fake_settings, fake_answerer, unknown)


def test_two_interviews_of_one_adopter_get_distinct_uris(fake_settings: Settings) -> None:
    corpus = fake_settings.corpus_dir / "knative"
    shutil.copy(corpus / "knative-adopter-interview-acme.md", corpus / "knative-adopter-interview-acme-2.md")
    embedder = FakeEmbedder()
    build(fake_settings.corpus_dir, fake_settings.index_dir, embedder)
    answerer = Answerer(fake_settings, embedder=embedder)
    answerer.reload()
    uris = interview_uris(answerer)
    assert uris["interview://knative/acme-rockets"] == "knative/knative-adopter-interview-acme-2.md"
    assert uris["interview://knative/acme-rockets-2"] == "knative/knative-adopter-interview-acme.md"


def test_an_empty_index_answers_not_ready(fake_settings: Settings) -> None:
    answerer = Answerer(fake_settings, embedder=FakeEmbedder())  # nothing built, nothing loaded

    async def body(c: Client) -> tuple[list[Any], list[Any]]:
        results = [await c.call_tool(name, args) for name, args in [
            ("search_interviews", {"query": "autoscaling"}), ("ask", {"question": "why?"}),
            ("get_source", {"chunk_id": "abc"}), ("list_interviews", {})]]
        return results, (await c.list_resources()).resources

    results, resources = _session(fake_settings, answerer, body, not_ready=lambda: "no index in /x yet")
    for result in results:
        assert result.is_error and "qabot is not ready: no index in /x yet" in result.content[0].text
    assert resources == []


def test_mcp_over_http_takes_the_api_key_rule(fake_settings: Settings, fake_answerer: Answerer) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "test", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    settings = fake_settings.replace(api_keys=("k1",))
    with TestClient(create_app(settings, fake_answerer, poll_seconds=0), base_url="http://127.0.0.1:8000") as c:
        r = c.post("/mcp", json=init, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"] == "Bearer"
        assert c.post("/mcp", json=init, headers={**headers, "Authorization": "Bearer nope"}).status_code == 401
        r = c.post("/mcp", json=init, headers={**headers, "Authorization": "Bearer k1"})
        assert r.status_code == 200, r.text
        assert r.json()["result"]["serverInfo"]["name"] == "qabot"
