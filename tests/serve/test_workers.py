"""Serving on several cores: questions answered a few at a time per process, and `qabot serve --workers N`
(with and without --watch) on real uvicorn processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bot.serve.app import create_app
from bot.config import ConfigError, Settings
from tests.live import LiveServer, free_port, stop
from tests.fakes import FAKE_MODEL

ROOT = Path(__file__).resolve().parents[2]
INTERVIEW = """---
title: Widgetd Adopter Interview - Initech

---

# Widgetd Adopter Interview - Initech

Interviewee: Peter Gibbons, Engineer, Initech

## Motivation

### Why did Initech pick widgetd?

Initech picked widgetd because its staplers needed a quieter scheduler for overnight batches.
"""


def test_worker_settings_are_checked() -> None:
    settings = Settings.from_env({"QABOT_WORKERS": "3", "QABOT_ANSWER_THREADS": "1", "QABOT_INDEX_POLL_MS": "250"})
    assert (settings.workers, settings.answer_threads, settings.index_poll_ms) == (3, 1, 250)
    defaults = Settings.from_env({})
    assert (defaults.workers, defaults.answer_threads, defaults.index_poll_ms) == (1, 2, 2000)
    with pytest.raises(ConfigError, match="QABOT_WORKERS: Input should be greater than or equal to 1, got '0'"):
        Settings.from_env({"QABOT_WORKERS": "0"})
    with pytest.raises(ConfigError, match="QABOT_ANSWER_THREADS: Input should be a valid integer"):
        Settings.from_env({"QABOT_ANSWER_THREADS": "two"})


class _Counting:
    """Wraps Answerer.ask: each call takes `seconds` and the most calls running at once is recorded."""

    def __init__(self, ask, seconds: float) -> None:
        self._ask, self.seconds = ask, seconds
        self.running = self.most = 0
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.seconds)
            return self._ask(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1


@pytest.mark.parametrize("slots", [1, 2])
def test_questions_wait_for_an_answer_slot_and_health_checks_do_not(fake_settings: Settings, fake_answerer,
                                                                     slots: int) -> None:
    counting = _Counting(fake_answerer.ask, 0.3)
    fake_answerer.ask = counting
    app = create_app(fake_settings.replace(answer_threads=slots), fake_answerer, poll_seconds=0)
    with LiveServer(app) as live, ThreadPoolExecutor(8) as pool:
        def ask(i: int) -> httpx.Response:
            return httpx.post(f"{live.url}/ask", json={"question": f"Why widgetd, case {i}?"}, timeout=30)

        started = time.monotonic()
        futures = [pool.submit(ask, i) for i in range(8)]
        time.sleep(0.1)
        health = httpx.get(f"{live.url}/healthz", timeout=5)
        health_seconds = time.monotonic() - started
        responses = [f.result() for f in futures]
        total = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * 8
    assert all(r.json()["question"].startswith("Why widgetd, case") for r in responses)
    assert counting.most == slots  # never more at once, and the slots are used
    assert total >= 8 / slots * 0.3 * 0.9  # the rest waited their turn
    assert health.status_code == 200 and health_seconds < total / 2  # not queued behind the questions


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _serve(tmp_path: Path, corpus: Path, *args: str, **extra_env: str) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_"))}
    env.update(QABOT_CORPUS_DIR=str(corpus), QABOT_INDEX_DIR=str(tmp_path / "index"), QABOT_MODEL=FAKE_MODEL,
               QABOT_STATE_DIR=str(tmp_path / "var"), QABOT_WATCH_QUIET_MS="100", PYTHONUNBUFFERED="1", **extra_env)
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port), *args], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", log


def _wait(predicate, what: str, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, f"qabot serve exited early:\n{log.read_text()}"
        try:
            if predicate():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()}"
        time.sleep(0.2)


def _adopters(url: str) -> set[str]:
    return {i["adopter"] for i in httpx.get(f"{url}/interviews", timeout=10).json()["interviews"]}


def test_serve_workers_share_the_port_and_follow_the_watched_corpus(tmp_path: Path, fixture_corpus: Path) -> None:
    proc, url, log = _serve(tmp_path, fixture_corpus, "--workers", "2", "--watch")
    try:
        # Both workers must be ready: ask several times in a row (connections land on either process).
        _wait(lambda: all(httpx.get(f"{url}/readyz", timeout=5).status_code == 200 for _ in range(12)),
              "workers never all became ready", proc, log)
        workers = [p for p in _children(proc.pid) if "spawn" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2, log.read_text()
        before = _adopters(url)
        assert "Initech" not in before

        (fixture_corpus / "widgetd" / "widgetd-adopter-interview-initech.md").write_text(INTERVIEW)
        _wait(lambda: all("Initech" in _adopters(url) for _ in range(12)), "a worker never saw the new interview",
              proc, log, seconds=30)
        answer = httpx.post(f"{url}/ask", json={"question": "Why did Initech pick widgetd?"}, timeout=10).json()
        assert any(c["adopter"] == "Initech" for c in answer["citations"])

        (fixture_corpus / "widgetd" / "widgetd-adopter-interview-initech.md").unlink()
        _wait(lambda: all(_adopters(url) == before for _ in range(12)), "a worker still cites a deleted file",
              proc, log, seconds=30)
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()
    assert "with 2 worker processes" in log.read_text()


def test_serve_workers_build_a_missing_index_once(tmp_path: Path, fixture_corpus: Path) -> None:
    proc, url, log = _serve(tmp_path, fixture_corpus, "--workers", "2")
    try:
        _wait(lambda: all(httpx.get(f"{url}/readyz", timeout=5).status_code == 200 for _ in range(12)),
              "workers never all became ready", proc, log)
        generations = sorted(p.name for p in (tmp_path / "index").glob("gen-*"))
        assert generations == ["gen-000001"], generations  # one build, not one per worker
        r = httpx.post(f"{url}/ask", json={"question": "Why did Acme pick Knative?"}, timeout=10)
        assert r.status_code == 200 and r.json()["citations"]
    finally:
        stop(proc)


@pytest.mark.parametrize("given, expected", [(None, "1"), ("3", "3")])
def test_workers_answer_one_question_at_a_time_unless_told(fake_answerer, fake_settings: Settings,
                                                          monkeypatch: pytest.MonkeyPatch, given, expected) -> None:
    import uvicorn

    from bot.serve import server
    seen: dict[str, object] = {}

    def fake_run(app, **kwargs) -> None:
        seen.update(app=app, kwargs=kwargs, env=dict(os.environ))

    monkeypatch.setattr(uvicorn, "run", fake_run)
    if given is not None:
        monkeypatch.setenv("QABOT_ANSWER_THREADS", given)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # _run_workers edits the environment for its children
    server.run_server(fake_settings.replace(workers=3, port=8123))
    kwargs = seen["kwargs"]
    assert (seen["app"], kwargs["factory"], kwargs["workers"], kwargs["port"]) == ("bot.serve.server:worker_app",
                                                                                 True, 3, 8123)
    env = seen["env"]
    assert env["QABOT_ANSWER_THREADS"] == expected and env["QABOT_PORT"] == "8123"
    assert env["QABOT_INDEX_DIR"] == str(fake_settings.index_dir) and env["QABOT_WORKERS"] == "1"


def test_a_worker_app_loads_its_index_before_its_startup_completes(fake_settings: Settings, fake_answerer) -> None:
    """uvicorn accepts connections only after the lifespan startup: a worker must not finish it unloaded."""
    from starlette.testclient import TestClient

    from bot.answer.answerer import Answerer

    for load_first in (True, False):
        answerer = Answerer(fake_settings, embedder=fake_answerer.embedder)
        real_reload = answerer.reload

        def slow_reload() -> bool:
            time.sleep(0.5)
            return real_reload()

        answerer.reload = slow_reload
        app = create_app(fake_settings, answerer, poll_seconds=0, load_before_serving=load_first)
        with TestClient(app) as client:  # entering runs the lifespan startup
            ready_at_start = answerer.ready
            status = client.get("/readyz").status_code
        assert ready_at_start is load_first and (status == 200) is load_first


def test_serve_workers_never_answer_503_and_replace_a_dead_worker(tmp_path: Path, fixture_corpus: Path) -> None:
    import signal

    from tests.fakes import FakeEmbedder
    from bot.index.build import build

    build(fixture_corpus, tmp_path / "index", FakeEmbedder())
    proc, url, log = _serve(tmp_path, fixture_corpus, "--workers", "2")
    try:
        # From the first connection on, a question is answered: no worker accepts before its index is loaded.
        deadline = time.monotonic() + 60
        first = None
        while first is None:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                first = httpx.post(f"{url}/ask", json={"question": "Why did Acme pick Knative?"}, timeout=30)
            except httpx.TransportError:
                time.sleep(0.05)
        replies = [first] + [httpx.post(f"{url}/ask", json={"question": "Why did Acme pick Knative?"}, timeout=30)
                             for _ in range(11)]
        assert [r.status_code for r in replies] == [200] * 12, [r.text for r in replies]
        workers = [p for p in _children(proc.pid) if "spawn" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2, log.read_text()

        os.kill(workers[0], signal.SIGKILL)  # a crashed worker is replaced; the other keeps serving
        _wait(lambda: len([p for p in _children(proc.pid) if p not in workers
                           and "spawn" in Path(f"/proc/{p}/cmdline").read_text()]) == 1,
              "the killed worker was not replaced", proc, log, seconds=30)
        _wait(lambda: all(httpx.get(f"{url}/readyz", timeout=5).status_code == 200 for _ in range(12)),
              "the new worker never became ready", proc, log)
        assert f"Child process [{workers[0]}] died" in log.read_text()
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()
    assert not [p for p in _children(proc.pid)], "workers left running"


def test_serve_workers_stop_with_a_clear_error_when_the_app_cannot_start(tmp_path: Path,
                                                                         fixture_corpus: Path) -> None:
    # With the Slack signing secret but no bot token no worker could make its app: serving must stop with
    # the reason instead of starting workers at all.
    proc, url, log = _serve(tmp_path, fixture_corpus, "--workers", "2", SLACK_SIGNING_SECRET="secret")
    try:
        proc.wait(timeout=120)
    finally:
        stop(proc)
    text = log.read_text()
    assert proc.returncode != 0, text
    assert "SLACK_BOT_TOKEN" in text and "cannot start" in text and "Started parent process" not in text


def test_workers_get_the_question_encoder_exported_once_by_the_parent(fake_answerer, fake_settings: Settings,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from bot.index import build as indexer
    from bot.serve import server
    calls: list[str] = []
    monkeypatch.setattr(indexer, "prepare_query_encoder", lambda embedder: calls.append(embedder.name))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append("workers"))
    monkeypatch.setattr(os, "environ", dict(os.environ))
    server.run_server(fake_settings.replace(workers=2, port=8124))  # the fixture index exists
    assert calls == [fake_answerer.embedder.name, "workers"]  # before any worker starts


def test_a_worker_still_starting_gets_no_connections_while_another_serves(tmp_path: Path) -> None:
    port = free_port()
    script = ("import logging, uvicorn; logging.basicConfig(level=20); "
              f"uvicorn.run('ready_app:make_app', factory=True, host='127.0.0.1', port={port}, workers=2, "
              "log_level='info')")
    env = {**os.environ, "READY_APP_MARKER": str(tmp_path / "slow"), "READY_APP_DELAY": "6",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "workers.log"
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait(lambda: httpx.get(url, timeout=5).status_code == 200, "no worker became ready", proc, log)
        started = time.monotonic()
        replies = [httpx.get(url, timeout=5) for _ in range(12)]  # each on a new connection
        assert time.monotonic() - started < 3, "the slow worker may have started meanwhile"
        assert [r.status_code for r in replies] == [200] * 12
        assert len({r.json()["pid"] for r in replies}) == 1  # all taken by the worker that had started
        workers = [p for p in _children(proc.pid) if "spawn" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2
        _wait(lambda: log.read_text().count("Application startup complete") == 2, "the slow worker never started",
              proc, log, seconds=30)
    finally:
        stop(proc)
