"""`qabot serve --workers N`: N uvicorn processes on one listening socket, each new connection taken by the
process that holds the fewest (least connections).

With uvicorn's own supervisor every worker accepts as many pending connections as it can whenever it wakes, so
eight keep-alive clients that connect at once often all land on one process and the other cores sit idle
(BENCHMARKS.md, "Operations", round 4). Here each worker runs its own accept loop: it publishes how many connections
it holds in a small shared array and, when another worker holds fewer, leaves a pending connection to that one
for up to `MAX_DEFER` seconds before taking it anyway (so a stuck worker never stops new connections).
A worker whose app is not ready yet (its index still loading) publishes a count above every ready worker's, so
while one is ready the others get no new connection to answer 503 on.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Sequence

import uvicorn
from uvicorn.config import STARTUP_FAILURE

logger = logging.getLogger(__name__)

GONE = 1 << 30  # the count of a worker that is not running: never the least loaded
NOT_READY = 1 << 20  # added to the count of a worker whose app is not ready (no index yet): ready ones come first
MAX_DEFER = 0.01  # seconds a busier worker leaves a pending connection to a less busy one
MAX_DEFER_UNREADY = 0.5  # ... and a worker that is not ready yet, to a ready one
READY_POLL = 0.05  # seconds between two looks at whether this worker's app became ready
# Keys of the ASGI lifespan state (shared by the app and its server): the app's readiness check, which the app
# puts there, and how many workers of the instance are ready, which `BalancedServer` puts there.
READY_KEY = "qabot.ready"
WORKERS_READY_KEY = "qabot.workers_ready"
DEFER_STEP = 0.001
STOP_GRACE = 15.0  # seconds workers get to finish their requests when stopped
QUICK_EXIT = 10.0  # a worker that fails this soon after its start did not start (e.g. its app cannot be made)
QUICK_EXITS = 3  # ... and after this many such failures in a row, serving stops instead of retrying forever


def should_defer(mine: int, counts: Sequence[int], slot: int) -> bool:
    """True when another worker holds fewer connections than this one (`mine`): it should take the next.

    Counts include the NOT_READY penalty, so a ready worker is always less loaded than one still loading."""
    others = [c for i, c in enumerate(counts) if i != slot]
    return bool(others) and mine > min(others)


def workers_ready(counts: Sequence[int]) -> int:
    """How many workers are running and ready."""
    return sum(1 for c in counts if c < NOT_READY)


def failed_start(exitcode: int | None, ran_seconds: float) -> bool:
    """True when a worker's exit means it never got going: its app could not be made, or it failed right away."""
    return exitcode == STARTUP_FAILURE or (exitcode != 0 and ran_seconds < QUICK_EXIT)


class CountedConnections(set):
    """uvicorn's set of open connections that also writes its size to this worker's slot of the shared array."""

    def __init__(self, counts: Any, slot: int, items: Iterable[Any] = (), ready: bool = True) -> None:
        super().__init__(items)
        self._counts, self._slot = counts, slot
        self.ready = ready
        self._publish()

    @property
    def published(self) -> int:
        """What this worker's slot says: its connections, plus NOT_READY until its app is ready."""
        return len(self) + (0 if self.ready else NOT_READY)

    def _publish(self) -> None:
        self._counts[self._slot] = self.published

    def set_ready(self) -> None:
        """This worker's app is ready: publish its plain count from now on."""
        self.ready = True
        self._publish()

    def add(self, item: Any) -> None:  # noqa: D102 - set.add, published
        super().add(item)
        self._publish()

    def discard(self, item: Any) -> None:  # noqa: D102 - set.discard, published
        super().discard(item)
        self._publish()

    def remove(self, item: Any) -> None:  # noqa: D102 - set.remove, published
        super().remove(item)
        self._publish()


class Acceptor:
    """This worker's accept loop on the shared listening socket (stands in for an asyncio.Server)."""

    def __init__(self, sock: socket.socket, create_protocol: Callable[..., asyncio.Protocol],
                 connections: CountedConnections, counts: Any, slot: int) -> None:
        self._sock, self._create_protocol = sock, create_protocol
        self._connections, self._counts, self._slot = connections, counts, slot
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start accepting on the running loop."""
        self._sock.setblocking(False)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="qabot-accept")

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = self._sock.fileno()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            loop.remove_reader(fd)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._readable()
            waited = 0.0
            limit = MAX_DEFER if self._connections.ready else MAX_DEFER_UNREADY
            while waited < limit and should_defer(self._connections.published, self._counts, self._slot):
                await asyncio.sleep(DEFER_STEP)
                waited += DEFER_STEP
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another worker took it
            except OSError as exc:  # e.g. out of file descriptors: say so, back off, keep serving
                logger.error("cannot accept a connection: %s", exc)
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                await loop.connect_accepted_socket(self._create_protocol, conn)
            except Exception:  # noqa: BLE001 - one bad connection must not stop the loop
                logger.exception("cannot serve an accepted connection")
                conn.close()

    def close(self) -> None:
        """Stop accepting (open connections are left to uvicorn's graceful shutdown)."""
        if self._task is not None:
            self._task.cancel()

    async def wait_closed(self) -> None:
        """Wait until the accept loop has stopped."""
        if self._task is not None:
            try:
                await self._task
            except asyncio.CancelledError:
                pass


class BalancedServer(uvicorn.Server):
    """uvicorn's server with `Acceptor` in place of the loop's own accept on the shared socket."""

    def __init__(self, config: uvicorn.Config, counts: Any, slot: int) -> None:
        super().__init__(config)
        self._counts, self._slot = counts, slot
        self._ready_watch: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup (lifespan, state) without a listener, then this worker's accept loop."""
        await super().startup(sockets=[])
        if self.should_exit or not sockets:
            return
        app_ready = self.lifespan.state.get(READY_KEY)  # the app's own check, when it offers one
        connections = CountedConnections(self._counts, self._slot, self.server_state.connections,
                                         ready=app_ready is None or bool(app_ready()))
        self.server_state.connections = connections
        counts = self._counts
        self.lifespan.state[WORKERS_READY_KEY] = lambda: (workers_ready(counts), len(counts))
        if not connections.ready:
            self._ready_watch = asyncio.get_running_loop().create_task(_watch_ready(app_ready, connections),
                                                                      name="qabot-ready-watch")
        config, state = self.config, self.server_state

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            return config.http_protocol_class(config=config, server_state=state,  # type: ignore[call-arg]
                                              app_state=self.lifespan.state, _loop=_loop)

        for sock in sockets:
            acceptor = Acceptor(sock, create_protocol, state.connections, self._counts, self._slot)
            acceptor.start()
            self.servers.append(acceptor)  # type: ignore[arg-type] - closed and awaited like a Server


async def _watch_ready(app_ready: Callable[[], bool], connections: CountedConnections) -> None:
    """Publish this worker as ready once its app says so (until then the ready workers take new connections)."""
    while not app_ready():
        await asyncio.sleep(READY_POLL)
    connections.set_ready()


def _run_worker(config: uvicorn.Config, counts: Any, slot: int, sockets: list[socket.socket]) -> None:
    """The body of one worker process: uvicorn's logging set up again (a spawned process starts bare), then
    the server until it is told to stop."""
    config.configure_logging()
    try:
        BalancedServer(config, counts, slot).run(sockets=sockets)
    except KeyboardInterrupt:  # Ctrl+C reaches the whole process group; the parent is already stopping us
        pass


def run_workers(config: uvicorn.Config) -> int:
    """Bind `config`'s address, run `config.workers` balanced worker processes until SIGINT/SIGTERM, restarting
    any that dies; return the exit code (STARTUP_FAILURE when a worker cannot start its app)."""
    sock = config.bind_socket()
    sock.listen(config.backlog)  # uvicorn's own servers listen in create_server; the workers here only accept
    n = config.workers
    multiprocessing.allow_connection_pickling()  # the listening socket is handed to each spawned worker
    ctx = multiprocessing.get_context("spawn")
    counts = ctx.Array("i", n, lock=False)
    stopping = {"signal": None}

    started = [0.0] * n
    quick_exits = [0] * n

    def start(slot: int) -> multiprocessing.Process:
        counts[slot] = NOT_READY  # until it has started and its app says it is ready
        process = ctx.Process(target=_run_worker, args=(config, counts, slot, [sock]), name=f"qabot-worker-{slot}")
        process.start()
        started[slot] = time.monotonic()
        logger.info("started worker process [%d]", process.pid)
        return process

    def on_signal(signum: int, frame: Any) -> None:
        stopping["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    processes = [start(slot) for slot in range(n)]
    code = 0
    all_ready = False
    try:
        while stopping["signal"] is None:
            wait([p.sentinel for p in processes], timeout=0.5)
            now_ready = workers_ready(counts) == n
            if now_ready and not all_ready:
                logger.info("all %d workers are ready", n)
            all_ready = now_ready
            for slot, process in enumerate(processes):
                if process.is_alive() or stopping["signal"] is not None:
                    continue
                counts[slot] = GONE
                quick = failed_start(process.exitcode, time.monotonic() - started[slot])
                quick_exits[slot] = quick_exits[slot] + 1 if quick else 0
                if process.exitcode == STARTUP_FAILURE or quick_exits[slot] >= QUICK_EXITS:
                    logger.error("worker process [%d] could not start (exit code %s); stopping", process.pid,
                                 process.exitcode)
                    code = STARTUP_FAILURE
                    stopping["signal"] = signal.SIGTERM
                    break
                logger.warning("worker process [%d] exited with %s; starting another", process.pid,
                               process.exitcode)
                processes[slot] = start(slot)
    finally:
        _stop(processes)
        sock.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code


def _stop(processes: list[multiprocessing.Process]) -> None:
    """SIGTERM every worker (a graceful shutdown), then SIGKILL what is left after STOP_GRACE seconds."""
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            logger.warning("worker process [%d] did not stop in %.0f s; killing it", process.pid, STOP_GRACE)
            process.kill()
            process.join()
