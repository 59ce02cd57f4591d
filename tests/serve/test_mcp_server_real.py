"""The MCP server through the `mcp` SDK's own clients, with the real model and index of ../shared/corpus:
`stdio_client` against `qabot mcp`, and the streamable HTTP client against /mcp of real uvicorn on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from bot.serve.app import create_app
from tests.live import LiveServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
KEY = "mcp-real-key"
TOOLS = {"search_interviews", "ask", "get_source", "list_interviews"}


async def _exercise(session: ClientSession) -> dict[str, Any]:
    """Every tool, a resource read and invalid arguments, as an assistant would use them."""
    await session.initialize()
    # The first call, made at once: `qabot mcp` is still loading its index, and the call waits for it.
    listed = await session.call_tool("list_interviews", {})
    assert not listed.is_error, listed.content[0].text
    out: dict[str, Any] = {"interviews": listed.structured_content}
    out["tools"] = {t.name: t for t in (await session.list_tools()).tools}
    out["search"] = await session.call_tool("search_interviews", {"query": "multi-tenancy", "k": 3,
                                                                  "project": "KServe"})
    out["ask"] = await session.call_tool("ask", {"question": "How long has Gojek used Knative?"})
    out["follow_up"] = await session.call_tool("ask", {"question": "and IBM?",
                                                       "history": ["How long has Gojek used Knative?"]})
    chunk = out["ask"].structured_content["citations"][0]["chunk_id"]
    out["source"] = await session.call_tool("get_source", {"chunk_id": chunk})
    resources = (await session.list_resources()).resources
    out["resources"] = resources
    gojek = next(r for r in resources if r.meta["adopter"] == "Gojek")
    out["read"] = await session.read_resource(gojek.uri)
    out["invalid"] = [await session.call_tool("search_interviews", {"query": "   ", "k": 0}),
                      await session.call_tool("ask", {"history": ["no question"]}),
                      await session.call_tool("get_source", {"chunk_id": "x" * 500})]
    return out


def _check(out: dict[str, Any], real_answerer) -> None:
    files = real_answerer.index.manifest.files
    assert set(out["tools"]) == TOOLS
    assert out["interviews"]["count"] == len(files)
    search = out["search"].structured_content["results"]
    assert len(search) == 3 and {p["project"] for p in search} == {"KServe"}
    assert all(p["chunk_id"] and p["line_start"] <= p["line_end"] and p["source"] for p in search)
    ask = out["ask"].structured_content
    assert ask["answered"] is True and any(c["adopter"] == "Gojek" for c in ask["citations"])
    assert "[1]" in ask["answer"] and ask["citations"][0]["quote"]
    follow = out["follow_up"].structured_content
    assert "IBM" in follow["resolved_question"] and {c["adopter"] for c in follow["citations"]} == {"IBM"}, follow
    source = out["source"].structured_content
    assert source["chunk_id"] == ask["citations"][0]["chunk_id"] and source["heading_path"]
    assert any(p["chunk_id"] == source["chunk_id"] for p in source["section_passages"])
    assert len(out["resources"]) == len(files)
    assert len({str(r.uri) for r in out["resources"]}) == len(files)  # Karmada's three Bloomberg interviews too
    text = out["read"].contents[0].text
    assert text.startswith("# ") and "Adopter: Gojek" in text and "knative/knative-adopter-interview-gojek.md" in text
    for result, needle in zip(out["invalid"], ["must not be blank", "question", "at most 100 characters"], strict=True):
        assert result.is_error and needle in result.content[0].text, result.content[0].text


def test_stdio_client_against_qabot_mcp(real_settings, real_answerer, tmp_path: Path) -> None:
    env = {"QABOT_CORPUS_DIR": str(real_settings.corpus_dir), "QABOT_INDEX_DIR": str(real_settings.index_dir),
           "QABOT_STATE_DIR": str(tmp_path / "var"), "QABOT_ENCODER_DIR": os.environ["QABOT_ENCODER_DIR"],
           "HF_HUB_OFFLINE": "1"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "bot", "mcp"], cwd=ROOT, env=env)
    errlog = (tmp_path / "stderr.log").open("w+")

    async def main() -> tuple[dict[str, Any], float]:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                out = await _exercise(session)
            closing = time.monotonic()
        return out, time.monotonic() - closing

    out, closing_s = asyncio.run(main())
    _check(out, real_answerer)
    stderr = Path(errlog.name).read_text()
    # It stopped by itself when stdin closed: the client waits 2 s before it terminates a server.
    assert closing_s < 2.0, (closing_s, stderr)
    assert "qabot mcp: the client closed the connection; stopped" in stderr, stderr
    assert "Traceback" not in stderr, stderr


def test_streamable_http_client_against_serve(real_settings, real_answerer) -> None:
    app = create_app(real_settings.replace(api_keys=(KEY,)), real_answerer, poll_seconds=0)

    async def main(url: str) -> dict[str, Any]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    return await _exercise(session)

    async def stranger(url: str) -> None:
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer wrong"}, timeout=10) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()

    with LiveServer(app) as live:
        _check(asyncio.run(main(f"{live.url}/mcp")), real_answerer)
        with pytest.raises(ExceptionGroup) as denied:  # the SDK's task groups wrap the refusal
            asyncio.run(asyncio.wait_for(stranger(f"{live.url}/mcp"), 30))
        assert denied.group_contains(MCPError, match="error response", depth=None), repr(denied.value)
        raw = httpx.post(f"{live.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={"Authorization": "Bearer wrong"})
        assert raw.status_code == 401 and json.loads(raw.text)["error"]["code"] == "invalid_api_key"
