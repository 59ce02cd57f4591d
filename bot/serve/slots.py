"""How many questions one process computes at once: a few threads of its own, the rest waiting in line."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class AnswerSlots:
    """At most `n` questions answered at once in this process; the rest wait in line (FIFO).

    Answering is CPU-bound: with two cores, eight requests computing at once only contend for the GIL and the
    cores (the encoder's time per question triples), while two at a time keep one in ONNX Runtime and one in
    Python. Health checks and the page don't wait here.

    The threads are a pool of this object's own, with its FIFO queue: handing a question to it and back costs
    less CPU than anyio's `to_thread`, whose limiter takes extra turns of the event loop to acquire and release
    (0.15 vs 0.3 ms per question; BENCHMARKS.md, "Operations")."""

    def __init__(self, n: int) -> None:
        self.n = max(1, n)
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)` in one of the threads, once one is free."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.n, thread_name_prefix="qabot-answer")
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(func, *args))

    def close(self) -> None:
        """Let the threads end once idle (questions still queued are cancelled); a later question starts anew."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
