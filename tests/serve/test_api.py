"""The HTTP API in-process (FastAPI TestClient) over the fixture corpus and the fake embedder."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import types

import pytest
from fastapi.testclient import TestClient

from bot.answer.answerer import NOT_COVERED, Answerer
from bot.serve.app import WEB_DIR, create_app
from bot.config import Settings
from tests.fakes import FakeEmbedder
from bot.index.build import build

TOKEN = "s3cret-admin-token"
CITATION_KEYS = {"n", "chunk_id", "source", "project", "adopter", "section", "question", "text", "quote",
                 "line_start", "line_end", "score", "page", "page_end"}
PASSAGE_KEYS = CITATION_KEYS - {"n", "quote"}
ANSWERED_Q = "What drew you to the project? scale to zero for batch workloads"


@pytest.fixture
def client(fake_settings: Settings, fake_answerer: Answerer):
    """A TestClient over the fixture index, with an admin token configured."""
    app = create_app(fake_settings.replace(admin_token=TOKEN), fake_answerer, poll_seconds=0)
    with TestClient(app) as c:
        yield c


def wait_ready(c: TestClient, timeout: float = 30.0) -> dict:
    """Poll /readyz until it says ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = c.get("/readyz")
        if r.status_code == 200:
            return r.json()
        time.sleep(0.05)
    raise AssertionError(f"not ready after {timeout}s: {r.json()}")


# --- /ask -------------------------------------------------------------------------------------------

def test_ask_answers_with_numbered_citations(client: TestClient) -> None:
    r = client.post("/ask", json={"question": ANSWERED_Q, "top_k": 3})
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"question", "answer", "answered", "citations", "took_ms"}
    assert body["question"] == ANSWERED_Q and body["answered"] is True
    assert 1 <= len(body["citations"]) <= 3
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", body["answer"])}
    assert markers == {c["n"] for c in body["citations"]}  # every marker cited, every citation used
    for c in body["citations"]:
        assert set(c) == CITATION_KEYS
        assert " ".join(c["quote"].split()) in " ".join(c["text"].split())
        assert c["line_start"] <= c["line_end"]
    assert any("scale to zero" in c["text"] for c in body["citations"])


def test_ask_not_covered_returns_related_passages(client: TestClient) -> None:
    r = client.post("/ask", json={"question": "zzqx vvrp kkwy"})
    assert r.status_code == 200
    body = r.json()
    assert body["answered"] is False and body["citations"] == [] and body["answer"] == NOT_COVERED
    assert all(set(p) == PASSAGE_KEYS for p in body["related"])


def test_ask_filters_by_project(client: TestClient) -> None:
    r = client.post("/ask", json={"question": ANSWERED_Q, "project": "Widgetd", "top_k": 5})
    assert r.status_code == 200
    cited = r.json()["citations"] or r.json()["related"]
    assert cited and {c["project"].lower() for c in cited} == {"widgetd"}


BAD_ASK = [
    ({"question": ""}, 422, "question"),
    ({"question": "   \n\t "}, 422, "blank"),
    ({"question": "x" * 2001}, 422, "question"),
    ({"question": "why?", "top_k": 0}, 422, "top_k"),
    ({"question": "why?", "top_k": 21}, 422, "top_k"),
    ({"question": "why?", "top_k": "5"}, 422, "top_k"),
    ({"question": "why?", "top_k": 2.5}, 422, "top_k"),
    ({"question": "why?", "top_k": True}, 422, "top_k"),
    ({"question": 123}, 422, "question"),
    ({"question": None}, 422, "question"),
    ({"question": ["a"]}, 422, "question"),
    ({"question": "why?", "project": 7}, 422, "project"),
    ({}, 422, "question"),
    ([], 422, "JSON object"),
    ("just a string", 422, "JSON object"),
]


@pytest.mark.parametrize("payload,status,needle", BAD_ASK)
def test_ask_rejects_bad_input_with_a_clear_4xx(client: TestClient, payload: object, status: int, needle: str) -> None:
    r = client.post("/ask", json=payload)
    assert r.status_code == status, r.text
    assert needle.lower() in r.json()["detail"].lower()


@pytest.mark.parametrize("raw", [b"{bad json", b'{"question": "why"', b"\xff\xfe\x00", b"{'question': 'x'}"])
def test_ask_malformed_json_is_400(client: TestClient, raw: bytes) -> None:
    r = client.post("/ask", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "malformed json" in r.json()["detail"].lower()


def test_lone_surrogates_are_rejected_not_crashed(client: TestClient) -> None:
    r = client.post("/ask", content=b'{"question": "why \\ud800 scale"}', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "question" in r.json()["detail"]


def test_ask_without_json_content_type_says_so(client: TestClient) -> None:
    r = client.post("/ask", content=b"question=why", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422
    assert "application/json" in r.json()["detail"]


def test_body_over_64_kib_is_413(client: TestClient) -> None:
    big = {"question": "why " * 20000}
    r = client.post("/ask", json=big)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit still holds while streaming
        for _ in range(20):
            yield b"x" * 8192

    r = client.post("/ask", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_question_limit_is_configurable(fake_settings: Settings, fake_answerer: Answerer) -> None:
    app = create_app(fake_settings.replace(max_question_chars=12), fake_answerer, poll_seconds=0)
    with TestClient(app) as c:
        assert c.post("/ask", json={"question": "scale? " + "z" * 5}).status_code == 200
        r = c.post("/ask", json={"question": "scale? " + "z" * 6})
        assert r.status_code == 422 and "12" in r.json()["detail"]
        schema = c.get("/openapi.json").json()["components"]["schemas"]["AskRequest"]
        assert schema["properties"]["question"]["maxLength"] == 12


# --- /search, /sources, /interviews ------------------------------------------------------------------

def test_search_returns_ranked_passages(client: TestClient) -> None:
    r = client.get("/search", params={"q": "scale to zero", "k": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["query"] == "scale to zero" and len(body["results"]) == 2
    assert all(set(p) == PASSAGE_KEYS for p in body["results"])
    scores = [p["score"] for p in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_search_filter_by_adopter(client: TestClient) -> None:
    r = client.get("/search", params={"q": "services", "adopter": "Acme Rockets"})
    assert r.status_code == 200 and r.json()["results"]
    assert {p["adopter"] for p in r.json()["results"]} == {"Acme Rockets"}


@pytest.mark.parametrize("params,needle", [({}, "q"), ({"q": ""}, "q"), ({"q": "  "}, "blank"),
                                           ({"q": "x", "k": 0}, "k"), ({"q": "x", "k": 51}, "k"),
                                           ({"q": "x", "k": "ten"}, "k"), ({"q": "x" * 2001}, "q")])
def test_search_bad_input(client: TestClient, params: dict, needle: str) -> None:
    r = client.get("/search", params=params)
    assert r.status_code == 422
    assert needle in r.json()["detail"]


def test_sources_returns_passage_with_its_section(client: TestClient, fake_answerer: Answerer) -> None:
    chunk = next(c for c in fake_answerer.index.chunks if c.question == "What drew you to the project?")
    r = client.get(f"/sources/{chunk.chunk_id}")
    assert r.status_code == 200
    body = r.json()
    assert body["chunk_id"] == chunk.chunk_id and body["text"] == chunk.text
    assert body["heading_path"] == list(chunk.heading_path) and body["section"] == "Motivation"
    assert body["interviewee"] and "Coyote" in body["interviewee"]
    section_ids = [p["chunk_id"] for p in body["section_passages"]]
    same = [c for c in fake_answerer.index.chunks if c.source == chunk.source and c.section == chunk.section]
    assert chunk.chunk_id in section_ids and len(section_ids) == len(same) >= 2
    starts = [p["line_start"] for p in body["section_passages"]]
    assert starts == sorted(starts)
    assert "embed_text" not in body


def test_sources_unknown_and_bad_ids(client: TestClient) -> None:
    r = client.get("/sources/0000000000000000")
    assert r.status_code == 404 and "no passage" in r.json()["detail"]
    assert client.get("/sources/" + "a" * 101).status_code == 422


def test_interviews_lists_indexed_files(client: TestClient, fake_answerer: Answerer) -> None:
    r = client.get("/interviews")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == len(fake_answerer.index.manifest.files) == len(body["interviews"])
    acme = next(i for i in body["interviews"] if i["adopter"] == "Acme Rockets")
    assert acme["project"] == "Knative" and acme["chunks"] > 0 and "2025" in (acme["date"] or "")


# --- health, readiness, lifespan ---------------------------------------------------------------------

def test_health_and_ready(client: TestClient, fake_answerer: Answerer) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["generation"] == fake_answerer.index.generation
    assert ready["chunks"] == len(fake_answerer.index.chunks)
    assert "workers" not in ready and "workers_ready" not in ready  # one process: no worker counts


def test_not_ready_is_503_until_the_index_loads(fake_settings: Settings) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    answerer = Answerer(fake_settings, embedder=FakeEmbedder())
    c = TestClient(create_app(fake_settings, answerer, poll_seconds=0))  # no `with`: the lifespan has not run
    assert c.get("/healthz").status_code == 200
    assert c.get("/readyz").status_code == 503
    r = c.post("/ask", json={"question": "why?"})
    assert r.status_code == 503 and "not loaded" in r.json()["detail"]
    assert c.get("/interviews").status_code == 503
    with c:
        assert wait_ready(c)["chunks"] > 0
        assert c.post("/ask", json={"question": ANSWERED_Q}).status_code == 200


def test_lifespan_builds_a_missing_index(fake_settings: Settings) -> None:
    assert not (fake_settings.index_dir / "CURRENT").exists()
    with TestClient(create_app(fake_settings, poll_seconds=0)) as c:  # answerer made from settings (fake model)
        ready = wait_ready(c)
        assert ready["generation"] == 1 and ready["interviews"] == 3
        assert c.post("/ask", json={"question": ANSWERED_Q}).json()["answered"] is True
    assert (fake_settings.index_dir / "CURRENT").exists()


def test_incompatible_index_keeps_503_with_the_reason(fake_settings: Settings) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder(name="another-model"))
    with TestClient(create_app(fake_settings, poll_seconds=0)) as c:
        c.app.state.loaded.wait(10)
        r = c.get("/readyz")
        assert r.status_code == 503 and "rebuild" in r.json()["detail"]


# --- metrics and logging -----------------------------------------------------------------------------

def test_metrics_count_routes_answered_and_index(client: TestClient, fake_answerer: Answerer) -> None:
    client.post("/ask", json={"question": ANSWERED_Q})
    client.post("/ask", json={"question": "zzqx vvrp kkwy"})
    client.get("/search", params={"q": "zero"})
    client.get("/sources/nope")
    text = client.get("/metrics").text
    assert re.search(r'qabot_http_requests_total\{answered="true",method="POST",route="/ask",status="200"\} 1\.0', text)
    assert re.search(r'qabot_http_requests_total\{answered="false",method="POST",route="/ask",status="200"\} 1\.0', text)
    assert re.search(r'qabot_http_requests_total\{answered="n/a",method="GET",route="/sources/\{chunk_id\}",status="404"\}', text)
    assert 'qabot_http_request_duration_seconds_bucket{le="0.1",route="/search"}' in text
    assert 'qabot_answers_total{answered="true"} 1.0' in text
    assert f"qabot_index_generation {float(fake_answerer.index.generation)}" in text
    assert f"qabot_index_chunks {float(len(fake_answerer.index.chunks))}" in text
    assert "qabot_index_interviews 3.0" in text


def test_two_apps_keep_separate_metrics(fake_settings: Settings, fake_answerer: Answerer) -> None:
    a = TestClient(create_app(fake_settings, fake_answerer, poll_seconds=0))
    b = TestClient(create_app(fake_settings, fake_answerer, poll_seconds=0))
    a.get("/healthz")
    a.get("/healthz")
    assert 'route="/healthz",status="200"} 2.0' in a.get("/metrics").text
    assert 'route="/healthz"' not in b.get("/metrics").text


def test_one_log_line_per_request_without_question_text(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.serve.app"):
        client.post("/ask", json={"question": "secret plans about scale to zero"})
    records = [r for r in caplog.records if r.name == "bot.serve.app"]
    assert len(records) == 1
    rec = records[0]
    assert (rec.route, rec.status, rec.answered) == ("/ask", 200, True)
    assert rec.latency_ms >= 0
    assert "secret plans" not in rec.getMessage() and not hasattr(rec, "question")


def test_question_logged_only_when_enabled(fake_settings: Settings, fake_answerer: Answerer,
                                           caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(fake_settings.replace(log_questions=True), fake_answerer, poll_seconds=0)
    with TestClient(app) as c, caplog.at_level(logging.INFO, logger="bot.serve.app"):
        c.post("/ask", json={"question": "secret plans about scale to zero"})
    assert any("secret plans" in r.getMessage() for r in caplog.records if r.name == "bot.serve.app")


# --- CORS ---------------------------------------------------------------------------------------------

def test_cors_off_by_default(client: TestClient) -> None:
    r = client.get("/healthz", headers={"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_when_configured(fake_settings: Settings, fake_answerer: Answerer) -> None:
    app = create_app(fake_settings.replace(cors_origins=("https://intranet.example",)), fake_answerer, poll_seconds=0)
    c = TestClient(app)
    r = c.get("/healthz", headers={"Origin": "https://intranet.example"})
    assert r.headers["access-control-allow-origin"] == "https://intranet.example"
    pre = c.options("/ask", headers={"Origin": "https://intranet.example", "Access-Control-Request-Method": "POST",
                                     "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 200
    r = c.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


# --- admin --------------------------------------------------------------------------------------------

def test_admin_disabled_without_token(fake_settings: Settings, fake_answerer: Answerer) -> None:
    c = TestClient(create_app(fake_settings, fake_answerer, poll_seconds=0))
    for r in (c.get("/admin/status"), c.post("/admin/reindex"),
              c.get("/admin/status", headers={"Authorization": "Bearer anything"})):
        assert r.status_code == 403 and "disabled" in r.json()["detail"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer ", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
                                    "Bearer tökén", TOKEN])
def test_admin_rejects_missing_or_wrong_token(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header.encode("utf-8")} if header else {}
    for r in (client.get("/admin/status", headers=headers), client.post("/admin/reindex", headers=headers)):
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"


def test_admin_status_with_right_token(client: TestClient, fake_answerer: Answerer) -> None:
    r = client.get("/admin/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True and body["generation"] == fake_answerer.index.generation and body["building"] is False


class GatedEmbedder(FakeEmbedder):
    """A fake embedder whose document embedding waits for a gate, to hold a build open."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def embed_documents(self, texts, progress=False):
        self.waiting.set()
        assert self.gate.wait(30), "gate never opened"
        return super().embed_documents(texts, progress)


NEW_INTERVIEW = """# Knative Adopter Interview - Initech

## Motivation

### What drew you to the project?

Initech needed scale to zero for TPS report generation.
"""


def test_reindex_swaps_index_while_requests_keep_succeeding(fake_settings: Settings) -> None:
    embedder = GatedEmbedder()
    build(fake_settings.corpus_dir, fake_settings.index_dir, embedder)
    answerer = Answerer(fake_settings, embedder=embedder)
    answerer.reload()
    app = create_app(fake_settings.replace(admin_token=TOKEN), answerer, poll_seconds=0)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    statuses: list[int] = []
    stop = threading.Event()
    with TestClient(app) as c:
        def hammer() -> None:
            while not stop.is_set():
                statuses.append(c.post("/ask", json={"question": ANSWERED_Q}).status_code)
                statuses.append(c.get("/search", params={"q": "TPS report"}).status_code)

        loop = threading.Thread(target=hammer)
        loop.start()
        try:
            embedder.gate.clear()
            embedder.waiting.clear()
            (fake_settings.corpus_dir / "knative" / "initech.md").write_text(NEW_INTERVIEW, encoding="utf-8")
            r = c.post("/admin/reindex", headers=auth)
            assert r.status_code == 202 and r.json()["started"] is True
            assert embedder.waiting.wait(10)
            second = c.post("/admin/reindex", headers=auth)
            assert second.status_code == 409 and "already running" in second.json()["detail"]
            assert c.get("/admin/status", headers=auth).json()["building"] is True
            before = len(statuses)
            deadline = time.monotonic() + 10
            while len(statuses) < before + 3:  # requests keep being served from the old index meanwhile
                assert time.monotonic() < deadline, "requests stalled while the build ran"
                time.sleep(0.02)
            assert c.get("/readyz").json()["generation"] == 1
            embedder.gate.set()
            deadline = time.monotonic() + 20
            while c.get("/readyz").json()["generation"] != 2:
                assert time.monotonic() < deadline, "new generation never swapped in"
                time.sleep(0.05)
            time.sleep(0.2)
        finally:
            embedder.gate.set()
            stop.set()
            loop.join(10)
        status = c.get("/admin/status", headers=auth).json()
        assert status["building"] is False and status["last_build"]["added"] == ["knative/initech.md"]
        assert any(i["adopter"] == "Initech" for i in c.get("/interviews").json()["interviews"])
        top = c.get("/search", params={"q": "TPS report generation", "k": 1}).json()["results"][0]
        assert top["adopter"] == "Initech"
    assert len(statuses) >= 5 and set(statuses) == {200}


# --- errors, concurrency, page, wiring -----------------------------------------------------------------

def test_unknown_route_and_method_are_json_4xx(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["detail"]
    r = client.get("/ask")
    assert r.status_code == 405 and r.json()["detail"]


def test_unexpected_error_is_a_json_500(fake_settings: Settings, fake_answerer: Answerer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(fake_answerer, "ask", boom)
    c = TestClient(create_app(fake_settings, fake_answerer, poll_seconds=0), raise_server_exceptions=False)
    r = c.post("/ask", json={"question": "why?"})
    assert r.status_code == 500 and r.json() == {"detail": "internal error; see the server log"}
    assert "kaboom" not in r.text


def test_slow_ask_does_not_block_other_requests(fake_settings: Settings, fake_answerer: Answerer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    original = fake_answerer.ask

    def slow_ask(*args, **kwargs):
        assert release.wait(10)
        return original(*args, **kwargs)

    monkeypatch.setattr(fake_answerer, "ask", slow_ask)
    with TestClient(create_app(fake_settings, fake_answerer, poll_seconds=0)) as c:
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(r=c.post("/ask", json={"question": ANSWERED_Q})))
        t.start()
        time.sleep(0.1)
        started = time.perf_counter()
        assert c.get("/healthz").status_code == 200
        assert time.perf_counter() - started < 2.0  # the event loop was free while /ask ran
        assert t.is_alive()
        release.set()
        t.join(10)
        assert result["r"].status_code == 200


def test_web_page_and_assets_are_local(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in page.text and "/static/style.css" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for path in WEB_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), f"{path.name} loads something remote"
    assert "innerHTML" not in (WEB_DIR / "app.js").read_text(encoding="utf-8")


def test_docs_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert not re.search(r"(src|href)=[\"'](https?:)?//", page.text)
    for asset in re.findall(r"(/docs-assets/[\w.-]+)", page.text):
        assert client.get(asset).status_code == 200, asset


def test_openapi_describes_every_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [("/ask", "post"), ("/search", "get"), ("/sources/{chunk_id}", "get"), ("/interviews", "get"),
                         ("/healthz", "get"), ("/readyz", "get"), ("/metrics", "get"), ("/admin/reindex", "post"),
                         ("/admin/status", "get")]:
        assert method in paths[path], path
    ask_ok = paths["/ask"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ask_ok["$ref"].endswith("/AskResponse")
    assert {"409", "401", "403"} <= set(paths["/admin/reindex"]["post"]["responses"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_slack_mount_is_called(fake_settings: Settings, fake_answerer: Answerer, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.slack

    calls = []
    monkeypatch.setattr(bot.slack, "mount", lambda app, settings, answerer: calls.append((settings, answerer)) or False)
    create_app(fake_settings, fake_answerer)
    assert calls == [(fake_settings, fake_answerer)]


def test_serve_watch_missing_module_is_a_clear_error(fake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.serve import server
    monkeypatch.setitem(sys.modules, "bot.serve.watch", None)
    monkeypatch.delattr("bot.serve.watch", raising=False)
    with pytest.raises(SystemExit, match="--watch"):
        server._start_watching(fake_settings, object())


def test_serve_watch_starts_the_watcher(fake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.serve import server
    calls = []
    fake = types.ModuleType("bot.serve.watch")
    fake.start_watching = lambda settings, maintainer: calls.append((settings, maintainer)) or "handle"
    monkeypatch.setitem(sys.modules, "bot.serve.watch", fake)
    import bot.serve

    monkeypatch.setattr(bot.serve, "watch", fake, raising=False)
    maintainer = object()
    assert server._start_watching(fake_settings, maintainer) == "handle"
    assert calls == [(fake_settings, maintainer)]


def test_run_server_wires_uvicorn_and_one_torch_thread(fake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    import uvicorn

    from bot.serve import server
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(app=app, **kwargs))
    root = logging.getLogger()
    level, threads = root.level, torch.get_num_threads()
    try:
        server.run_server(fake_settings.replace(port=9999, torch_threads=1))
        assert torch.get_num_threads() == 1
        assert logging.getLogger("bot.serve.app").isEnabledFor(logging.INFO)
    finally:
        torch.set_num_threads(threads)
        root.setLevel(level)
    assert (seen["host"], seen["port"], seen["access_log"]) == ("127.0.0.1", 9999, False)
    assert seen["app"].state.settings.port == 9999
