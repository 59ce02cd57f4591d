"""HTTP hardening from a security probe: HEAD on GET routes, JSON 400s that name the problem, security headers, and
limits on each request head (size and time) on a real uvicorn server, with one process and with `--workers`."""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
import re
import select
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from bot.answer.answerer import Answerer
from bot.config import ConfigError, Settings
from bot.serve.app import PAGE_CSP, WEB_DIR, create_app
from bot.serve.limits import HeadLimitedProtocol, http_limits
from tests.live import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
GET_ROUTES = ["/", "/healthz", "/readyz", "/interviews", "/search?q=scale", "/docs", "/openapi.json",
              "/static/app.js", "/admin/status"]


@pytest.fixture
def client(fake_settings: Settings, fake_answerer: Answerer) -> Iterator[TestClient]:
    """A TestClient over the fixture index; 500s come back as responses, not raised."""
    app = create_app(fake_settings.replace(admin_token="t0ken"), fake_answerer, poll_seconds=0)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


# --- HEAD ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", GET_ROUTES)
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code and got.status_code in {200, 401}
    assert dict(head.headers) == dict(got.headers)  # Content-Length included: GET's
    assert head.content == b"" and got.content


def test_head_keeps_the_status_of_get_and_is_counted_as_head(client: TestClient,
                                                             fake_answerer: Answerer) -> None:
    assert client.head("/sources/0000000000000000").status_code == 404
    assert client.head("/nope").status_code == 404
    r = client.head("/ask")  # POST only: still 405, saying what is allowed
    assert r.status_code == 405 and r.headers["allow"] == "POST" and r.content == b""
    chunk = fake_answerer.index.chunks[0]
    assert client.head(f"/sources/{chunk.chunk_id}").status_code == 200
    counted = [set(re.findall(r'\w+="[^"]*"', line)) for line in client.get("/metrics").text.splitlines()
               if line.startswith("qabot_http_requests_total{")]
    assert {'route="/sources/{chunk_id}"', 'method="HEAD"', 'status="200"'} in [
        labels & {'route="/sources/{chunk_id}"', 'method="HEAD"', 'status="200"'} for labels in counted]


# --- 400s that name the problem ------------------------------------------------------------------------

@pytest.mark.parametrize("raw, needle", [
    (b"[" * 50000, "malformed JSON: nested too deeply"),
    (b'{"a":' * 10000, "malformed JSON: nested too deeply"),
    (b'{"question": "why?", "top_k": ' + b"7" * 5000 + b"}", "malformed JSON: a number has too many digits"),
    (b"\xff\xfe\x00", "malformed JSON: the body cannot be decoded (send UTF-8 JSON)"),
    (b'{"question": "caf\xe9"}', "malformed JSON: the body cannot be decoded (send UTF-8 JSON)"),
])
def test_unparsable_json_is_a_400_that_says_why(client: TestClient, raw: bytes, needle: str) -> None:
    r = client.post("/ask", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(needle), r.json()


# --- security headers ----------------------------------------------------------------------------------

def _inline_script_hashes(html: str) -> set[str]:
    return {"'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
            for s in re.findall(r"<script>(.*?)</script>", html, flags=re.S)}


def test_every_response_has_nosniff_and_no_referrer(client: TestClient, fake_answerer: Answerer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    responses = [client.get(p) for p in GET_ROUTES] + [
        client.get("/nope"),  # 404
        client.get("/ask"),  # 405
        client.post("/ask", json={"question": ""}),  # 422
        client.post("/ask", content=b"{", headers={"content-type": "application/json"}),  # 400
        client.post("/ask", json={"question": "why " * 20000}),  # 413
        client.head("/healthz"),
    ]
    monkeypatch.setattr(fake_answerer, "ask", lambda *a, **k: 1 / 0)
    responses.append(client.post("/ask", json={"question": "why?"}))  # 500, sent outside add_middleware's
    assert {r.status_code for r in responses} >= {200, 400, 401, 404, 405, 413, 422, 500}
    for r in responses:
        assert r.headers["x-content-type-options"] == "nosniff", (r.request.url, r.status_code)
        assert r.headers["referrer-policy"] == "no-referrer", (r.request.url, r.status_code)


def test_the_chat_page_gets_a_strict_csp_and_no_framing(client: TestClient) -> None:
    r = client.get("/")
    assert r.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    assert r.headers["x-frame-options"] == "DENY"
    # What makes that policy enough: the page has nothing inline and loads only its own files.
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=", html, flags=re.I)
    assert set(re.findall(r'(?:src|href)="([^"]+)"', html)) == {"/static/app.js", "/static/style.css"}
    assert "content-security-policy" not in client.get("/healthz").headers  # the API's JSON needs none


def test_the_docs_page_allows_its_one_inline_script_by_hash(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["x-frame-options"] == "DENY"
    directives = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    hashes = _inline_script_hashes(r.text)
    assert len(hashes) == 1  # Swagger UI's SwaggerUIBundle({...}) call
    assert directives["script-src"].split() == ["'self'", *hashes]  # no 'unsafe-inline', no 'unsafe-eval'
    assert {k: v for k, v in directives.items() if k != "script-src"} == {
        k: v for k, v in (d.strip().split(" ", 1) for d in PAGE_CSP.split(";")) if k != "script-src"}
    # Everything else it loads comes from this server (the bundled Swagger UI, the spec), as 'self' allows.
    assert set(re.findall(r'(?:src|href)="([^"]+)"', r.text)) == {
        "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/docs-assets/favicon-32x32.png"}
    assert "url: '/openapi.json'" in r.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


# --- settings ------------------------------------------------------------------------------------------

def test_request_head_limits_are_settings() -> None:
    defaults = Settings.from_env({})
    assert (defaults.max_header_bytes, defaults.header_timeout_s) == (64 * 1024, 10.0)
    given = Settings.from_env({"QABOT_MAX_HEADER_BYTES": "8192", "QABOT_HEADER_TIMEOUT_S": "2.5"})
    assert (given.max_header_bytes, given.header_timeout_s) == (8192, 2.5)
    with pytest.raises(ConfigError, match="QABOT_MAX_HEADER_BYTES: Input should be greater than or equal to 1, got '0'"):
        Settings.from_env({"QABOT_MAX_HEADER_BYTES": "0"})
    for bad in ("soon", "0", "-1", "nan", "inf"):
        with pytest.raises(ConfigError, match="QABOT_HEADER_TIMEOUT_S: Input should be"):
            Settings.from_env({"QABOT_HEADER_TIMEOUT_S": bad})


def test_qabot_serve_puts_the_limits_on_uvicorn(fake_settings: Settings, fake_answerer: Answerer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.serve import server

    limited = fake_settings.replace(max_header_bytes=4096, max_header_count=20, header_timeout_s=1.5, torch_threads=0)
    seen: dict = {}
    monkeypatch.setattr(server, "_configure_logging", lambda level: None)  # leave the test's logging alone
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    server.run_server(limited)
    assert seen["http"].func is HeadLimitedProtocol
    assert seen["http"].keywords == {"max_header_bytes": 4096, "max_header_count": 20, "header_timeout": 1.5,
                                     "body_timeout": 30.0}

    # --workers: uvicorn's Config goes pickled to each spawned worker, and the limits with it.
    seen.clear()
    monkeypatch.setattr(os, "environ", dict(os.environ))  # _run_workers edits the environment for its children
    server.run_server(limited.replace(workers=2, port=8125))
    assert seen["workers"] == 2
    http = pickle.loads(pickle.dumps(seen["http"]))
    assert http.func is HeadLimitedProtocol
    assert http.keywords == {"max_header_bytes": 4096, "max_header_count": 20, "header_timeout": 1.5,
                             "body_timeout": 30.0}


# --- request head limits on a real server --------------------------------------------------------------

@contextmanager
def limited_server(settings: Settings, answerer: Answerer) -> Iterator[int]:
    """uvicorn serving the app on a free loopback port with `qabot serve`'s limits; yields the port."""
    port = free_port()
    config = uvicorn.Config(create_app(settings, answerer, poll_seconds=0), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False, **http_limits(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closing)."""
    out = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not data:
            return out
        out += data


def _send_all(sock: socket.socket, data: bytes, piece: int = 65536) -> None:
    """Send `data`, stopping quietly when the server has closed the connection."""
    try:
        for i in range(0, len(data), piece):
            sock.sendall(data[i:i + piece])
    except (BrokenPipeError, ConnectionResetError):
        pass


def _head(extra: bytes = b"") -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"Connection: close\r\n\r\n"


def test_a_request_head_that_never_completes_is_closed_within_the_timeout(fake_settings: Settings,
                                                                          fake_answerer: Answerer) -> None:
    with limited_server(fake_settings.replace(header_timeout_s=1.0), fake_answerer) as port:
        started = time.monotonic()
        half_open = {name: _connect(port) for name in ("nothing", "half a request line", "headers, no end",
                                                       "a second request cut short")}
        half_open["half a request line"].sendall(b"GET /healthz HT")
        half_open["headers, no end"].sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: b\r\n")
        reused = half_open["a second request cut short"]
        reused.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert reused.recv(65536).startswith(b"HTTP/1.1 200")
        reused.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # uvicorn's keep-alive timer stops on the first byte
        for name, sock in half_open.items():
            assert _reply(sock) == b"", name
            assert time.monotonic() - started < 3.5, f"{name}: still open after the 1 s timeout"
            sock.close()
        assert time.monotonic() - started >= 0.9  # closed by the timeout, not right away

        # Trickling a byte at a time does not reset the clock: the whole head is due within the timeout.
        sock = _connect(port)
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed = False
        while not closed and time.monotonic() - started < 5:
            if select.select([sock], [], [], 0.1)[0]:
                closed = _reply(sock) == b""
            else:
                _send_all(sock, b"X")
        assert closed and time.monotonic() - started < 2.5
        sock.close()

        # A normal request on the same server is answered.
        with _connect(port) as sock:
            sock.sendall(_head())
            assert _reply(sock).startswith(b"HTTP/1.1 200")


def test_a_request_body_that_stops_half_way_is_closed_within_the_timeout(fake_settings: Settings,
                                                                        fake_answerer: Answerer) -> None:
    assert Settings.from_env({}).body_timeout_s == 30.0
    assert Settings.from_env({"QABOT_BODY_TIMEOUT_S": "2.5"}).body_timeout_s == 2.5
    head = (b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\nConnection: close\r\n\r\n")
    with limited_server(fake_settings.replace(body_timeout_s=1.0), fake_answerer) as port:
        with _connect(port) as sock:  # 16 of 100 bytes, then nothing: uvicorn alone waits for good
            started = time.monotonic()
            sock.sendall(head + b'{"question": "wh')
            assert _reply(sock) == b""
            assert 0.9 <= time.monotonic() - started < 3.0
        with _connect(port) as sock:  # a body sent in pieces, all within the timeout, is answered
            body = b'{"question": "How do they scale to zero?"}'
            sock.sendall(head.replace(b"100", str(len(body)).encode()) + body[:10])
            time.sleep(0.3)
            sock.sendall(body[10:])
            assert _reply(sock).startswith(b"HTTP/1.1 200")
        with _connect(port) as sock:  # a request without a body is not timed out while it is answered
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            time.sleep(1.3)
            sock.sendall(_head())
            assert _reply(sock).startswith(b"HTTP/1.1 200")


def test_a_request_head_over_the_limit_gets_431(fake_settings: Settings, fake_answerer: Answerer) -> None:
    with limited_server(fake_settings, fake_answerer) as port:  # the default limit: 64 KiB
        limit = fake_settings.max_header_bytes
        with _connect(port) as sock:  # just under: answered
            sock.sendall(_head(b"X-Big: " + b"a" * (limit - 200) + b"\r\n"))
            assert _reply(sock).startswith(b"HTTP/1.1 200")
        with _connect(port) as sock:  # just over, whole: 431
            sock.sendall(_head(b"X-Big: " + b"a" * (limit + 10) + b"\r\n"))
            reply = _reply(sock)
            assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), reply[:200]
            assert b"connection: close" in reply.lower()
        with _connect(port) as sock:  # the same in many small headers
            sock.sendall(_head(b"".join(b"X-%d: %s\r\n" % (i, b"b" * 60) for i in range(limit // 60))))
            assert _reply(sock).startswith(b"HTTP/1.1 431")
        with _connect(port) as sock:  # many tiny headers, far under the byte limit: over the field count
            sock.sendall(_head(b"".join(b"X-%d: b\r\n" % i for i in range(fake_settings.max_header_count + 1))))
            assert _reply(sock).startswith(b"HTTP/1.1 431")
        with _connect(port) as sock:  # ... and at the count: answered
            sock.sendall(_head(b"".join(b"X-%d: b\r\n" % i for i in range(fake_settings.max_header_count - 5))))
            assert _reply(sock).startswith(b"HTTP/1.1 200")
        with _connect(port) as sock:  # a long request line is part of the head too
            sock.sendall(b"GET /healthz?" + b"q" * (limit + 10) + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _reply(sock).startswith(b"HTTP/1.1 431")

        # The probe's 32 MB header: refused after the first 64 KiB or so, not read to the end and answered 200.
        with _connect(port) as sock:
            started = time.monotonic()
            _send_all(sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (32 << 20) + b"\r\n\r\n")
            reply = _reply(sock)
            assert reply == b"" or reply.startswith(b"HTTP/1.1 431"), reply[:200]
            assert time.monotonic() - started < 5

        # Requests before an oversized one pipelined behind them are still answered, in order, then it closes.
        with _connect(port) as sock:
            kept = _head().replace(b"close", b"keep-alive")
            sock.sendall(kept * 2 + _head(b"X-Big: " + b"a" * (limit + 10) + b"\r\n"))
            reply = _reply(sock)
            assert reply.startswith(b"HTTP/1.1 200") and reply.count(b"HTTP/1.1 200") == 2, reply[:300]

        r = httpx.head(f"http://127.0.0.1:{port}/healthz")  # HEAD over the real server too
        assert r.status_code == 200 and r.content == b""
        assert r.headers["content-length"] == httpx.get(f"http://127.0.0.1:{port}/healthz").headers["content-length"]


def test_workers_apply_the_same_limits(tmp_path: Path) -> None:
    """`qabot serve --workers` runs uvicorn's worker processes with the arguments made by http_limits."""
    port = free_port()
    script = ("import uvicorn; from bot.config import Settings; from bot.serve.limits import http_limits; "
              f"uvicorn.run('ready_app:make_app', factory=True, host='127.0.0.1', port={port}, workers=2, "
              "log_level='warning', **http_limits(Settings(max_header_bytes=4096, header_timeout_s=1.0)))")
    env = {**os.environ, "READY_APP_MARKER": str(tmp_path / "slow"), "READY_APP_DELAY": "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "workers.log"
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with _connect(port) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /healthz HT")
            assert _reply(sock) == b"" and 0.9 <= time.monotonic() - started < 3.5
        with _connect(port) as sock:
            sock.sendall(_head(b"X-Big: " + b"a" * 5000 + b"\r\n"))
            assert _reply(sock).startswith(b"HTTP/1.1 431")
    finally:
        stop(proc)
