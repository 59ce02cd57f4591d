"""AnswerSlots: questions computed in the slots' own threads, at most n at once, in order of arrival."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bot.serve.slots import AnswerSlots


@pytest.mark.parametrize("n", [1, 2])
def test_questions_run_in_order_of_arrival_in_the_slots_threads(n: int) -> None:
    started: list[int] = []
    running = {"now": 0, "most": 0}
    lock = threading.Lock()

    def answer(i: int) -> str:
        with lock:
            started.append(i)
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        time.sleep(0.02)
        with lock:
            running["now"] -= 1
        return threading.current_thread().name

    async def main() -> list[str]:
        slots = AnswerSlots(n)
        try:
            return await asyncio.gather(*(slots.run(answer, i) for i in range(8)))
        finally:
            slots.close()

    names = asyncio.run(main())
    assert running["most"] == n
    if n == 1:
        assert started == list(range(8))  # FIFO
    assert all(name.startswith("qabot-answer") for name in names)


def test_errors_reach_their_question_and_close_lets_a_later_question_start_anew() -> None:
    def answer(i: int) -> int:
        if i == 1:
            raise ValueError("bad question")
        return i

    async def main() -> None:
        slots = AnswerSlots(1)
        assert await slots.run(answer, 0) == 0
        with pytest.raises(ValueError, match="bad question"):
            await slots.run(answer, 1)
        slots.close()
        assert await slots.run(answer, 2) == 2  # a new pool after close (a second lifespan of the same app)
        slots.close()

    asyncio.run(main())
