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
    with pytest.raises(ConfigError, match="QABOT_WORKERS must be 1 or more, got 0"):
        Settings.from_env({"QABOT_WORKERS": "0"})
    with pytest.raises(ConfigError, match="QABOT_ANSWER_THREADS must be an integer"):
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
    counting = _Counting(fake_answerer.ask, 0.15)
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
    assert total >= 8 / slots * 0.15 * 0.9  # the rest waited their turn
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
    env.update(QABOT_CORPUS_DIR=str(corpus), QABOT_INDEX_DIR=str(tmp_path / "index"), QABOT_MODEL="fake",
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
        _wait(lambda: httpx.get(f"{url}/readyz", timeout=5).json()["workers_ready"] == 2,
              "/readyz never counted both workers ready", proc, log)
        assert httpx.get(f"{url}/readyz", timeout=5).json()["workers"] == 2
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
    from bot.serve import server
    from bot.serve import workers
    seen: dict[str, object] = {}

    def fake_run_workers(config) -> int:
        seen.update(config=config, env=dict(os.environ))
        return 0

    monkeypatch.setattr(workers, "run_workers", fake_run_workers)
    if given is not None:
        monkeypatch.setenv("QABOT_ANSWER_THREADS", given)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # _run_workers edits the environment for its children
    server.run_server(fake_settings.replace(workers=3, port=8123))
    config = seen["config"]
    assert (config.app, config.factory, config.workers, config.port) == ("bot.serve.server:worker_app", True, 3, 8123)
    env = seen["env"]
    assert env["QABOT_ANSWER_THREADS"] == expected and env["QABOT_PORT"] == "8123"
    assert env["QABOT_INDEX_DIR"] == str(fake_settings.index_dir) and env["QABOT_WORKERS"] == "1"


def test_a_worker_leaves_a_connection_to_a_less_busy_one() -> None:
    from bot.serve.workers import should_defer

    assert not should_defer(0, [0, 0], slot=0)  # equal: take it
    assert should_defer(2, [2, 1], slot=0)  # the other holds fewer
    assert not should_defer(1, [1, 2, 3], slot=0)
    assert not should_defer(5, [5], slot=0)  # alone
    assert not should_defer(3, [3, 1 << 30], slot=0)  # the other is not running


def test_open_connections_are_published_to_the_shared_counts() -> None:
    from bot.serve.workers import CountedConnections

    counts = [0, 7]
    open_now = CountedConnections(counts, 0, ["a"])
    assert counts == [1, 7]
    open_now.add("b")
    open_now.add("b")
    assert counts == [2, 7]
    open_now.discard("a")
    open_now.discard("missing")
    assert counts == [1, 7]
    open_now.remove("b")
    assert counts == [0, 7] and not open_now


def test_a_worker_not_ready_yet_publishes_itself_behind_every_ready_one() -> None:
    from bot.serve.workers import GONE, NOT_READY, CountedConnections, should_defer, workers_ready

    counts = [0, 7, GONE]
    loading = CountedConnections(counts, 0, ["a"], ready=False)
    assert counts[0] == 1 + NOT_READY and workers_ready(counts) == 1
    assert should_defer(counts[0], counts, 0)  # the ready worker with 7 connections takes the next one
    assert not should_defer(counts[1], counts, 1)
    loading.add("b")
    assert counts[0] == 2 + NOT_READY
    loading.set_ready()
    assert counts == [2, 7, GONE] and workers_ready(counts) == 2
    assert not should_defer(counts[0], counts, 0)


def _tcp_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections whose local port is `port` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                found.add(fields[9])
    return found


def _connections_per_process(pids: list[int], port: int) -> list[int]:
    """How many of the established connections to `port` each process holds."""
    inodes = _tcp_inodes(port)
    counts = []
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
        counts.append(held)
    return counts


def _keep_alive_clients(port: int, n: int) -> list:
    """`n` sockets connected at once, each having had one keep-alive response (so a worker accepted it)."""
    import socket

    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    for c in clients:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    for c in clients:
        assert c.recv(4096).startswith(b"HTTP/1.1 200")
    return clients


def test_serve_workers_spread_connections_evenly_and_replace_a_dead_worker(tmp_path: Path,
                                                                          fixture_corpus: Path) -> None:
    import signal

    proc, url, log = _serve(tmp_path, fixture_corpus, "--workers", "2")
    port = int(url.rsplit(":", 1)[1])
    try:
        _wait(lambda: all(httpx.get(f"{url}/readyz", timeout=5).status_code == 200 for _ in range(12)),
              "workers never all became ready", proc, log)
        workers = [p for p in _children(proc.pid) if "spawn" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2, log.read_text()
        splits = []
        for _ in range(3):  # eight clients connecting at once: four each, not all on whichever woke first
            clients = _keep_alive_clients(port, 8)
            splits.append(sorted(_connections_per_process(workers, port)))
            for c in clients:
                c.close()
            time.sleep(0.3)
        assert splits.count([4, 4]) >= 2 and all(s[0] >= 3 for s in splits), splits

        os.kill(workers[0], signal.SIGKILL)  # a crashed worker is replaced; the other keeps serving
        _wait(lambda: len([p for p in _children(proc.pid) if p not in workers
                           and "spawn" in Path(f"/proc/{p}/cmdline").read_text()]) == 1,
              "the killed worker was not replaced", proc, log, seconds=30)
        _wait(lambda: all(httpx.get(f"{url}/readyz", timeout=5).status_code == 200 for _ in range(12)),
              "the new worker never became ready", proc, log)
        assert "starting another" in log.read_text()
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()
    assert not [p for p in _children(proc.pid)], "workers left running"


def test_serve_workers_stop_with_a_clear_error_when_the_app_cannot_start(tmp_path: Path,
                                                                         fixture_corpus: Path) -> None:
    # With the Slack signing secret but no bot token every worker fails to make its app: serving must stop with
    # the reason instead of restarting workers forever.
    proc, url, log = _serve(tmp_path, fixture_corpus, "--workers", "2", SLACK_SIGNING_SECRET="secret")
    try:
        proc.wait(timeout=120)
    finally:
        stop(proc)
    text = log.read_text()
    assert proc.returncode != 0, text
    assert "SLACK_BOT_TOKEN" in text and "a worker process could not start" in text


def test_a_worker_that_fails_at_once_counts_as_not_started() -> None:
    from bot.serve.workers import QUICK_EXIT, failed_start

    assert failed_start(3, 500.0)  # uvicorn's STARTUP_FAILURE, however late
    assert failed_start(1, 0.5) and failed_start(-9, QUICK_EXIT / 2)  # died right after its start
    assert not failed_start(-9, QUICK_EXIT * 3)  # killed after serving a while: replaced
    assert not failed_start(0, 0.5)  # a clean exit


def test_workers_get_the_question_encoder_exported_once_by_the_parent(fake_answerer, fake_settings: Settings,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.index import build as indexer
    from bot.serve import server
    from bot.serve import workers
    calls: list[str] = []
    monkeypatch.setattr(indexer, "prepare_query_encoder", lambda embedder: calls.append(embedder.name))
    monkeypatch.setattr(workers, "run_workers", lambda config: calls.append("workers") or 0)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    server.run_server(fake_settings.replace(workers=2, port=8124))  # the fixture index exists
    assert calls == [fake_answerer.embedder.name, "workers"]  # before any worker starts


def test_a_worker_still_loading_gets_no_new_connections_while_another_is_ready(tmp_path: Path) -> None:
    port = free_port()
    script = ("import logging, sys, uvicorn; from bot.serve.workers import run_workers; logging.basicConfig(level=20); "
              f"sys.exit(run_workers(uvicorn.Config('ready_app:make_app', factory=True, host='127.0.0.1', "
              f"port={port}, workers=2, log_level='info')))")
    env = {**os.environ, "READY_APP_MARKER": str(tmp_path / "slow"), "READY_APP_DELAY": "6",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "workers.log"
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait(lambda: httpx.get(url, timeout=5).status_code == 200, "no worker became ready", proc, log)
        started = time.monotonic()
        # Each request on a new connection: the worker still loading leaves every one to the ready worker.
        replies = [httpx.get(url, timeout=5) for _ in range(12)]
        assert time.monotonic() - started < 3, "the slow worker may have become ready meanwhile"
        assert [r.status_code for r in replies] == [200] * 12, [r.text for r in replies]
        assert len({r.json()["pid"] for r in replies}) == 1
        assert {r.json()["workers_ready"] for r in replies} == {1}
        _wait(lambda: httpx.get(url, timeout=5).json()["workers_ready"] == 2, "the slow worker never became ready",
              proc, log, seconds=30)
        port_clients = _keep_alive_clients(port, 8)  # once both are ready, new connections go to both
        workers = [p for p in _children(proc.pid) if "spawn" in Path(f"/proc/{p}/cmdline").read_text()]
        assert sorted(_connections_per_process(workers, port)) == [4, 4]
        for c in port_clients:
            c.close()
        _wait(lambda: "all 2 workers are ready" in log.read_text(), "the supervisor did not say so", proc, log, 5)
    finally:
        stop(proc)
