"""What recent answers cited, so a follow-up's earlier turns need not be answered again (bot/answer/followup.py)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Iterable, Sequence

from bot.answer.followup import Recall
from bot.search.mentions import Catalog, Who


def recall_of(hits: Sequence[object], answered: bool, points: tuple[str, ...] = ()) -> Recall:
    """What an answer citing `hits` cited: adopters in the order the answer shows them (grouped by project,
    each in order of its best passage), the passage ids, and the `points` its first citation lists."""
    if not answered:
        return Recall()
    order: dict[str, dict[str, None]] = {}
    for h in hits:
        chunk = h.chunk  # type: ignore[attr-defined]
        order.setdefault(chunk.project, {}).setdefault(chunk.adopter, None)
    return Recall(tuple(Who(p, a) for p, adopters in order.items() for a in adopters),
                  frozenset(h.chunk.chunk_id for h in hits), points)  # type: ignore[attr-defined]


class FollowUps:
    """An Answerer's follow-up state: the name catalog of the loaded index and what recent answers cited."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._recalls: OrderedDict[tuple[object, ...], Recall] = OrderedDict()
        self._catalog: tuple[object, Catalog] | None = None

    def catalog(self, index: object, pairs: Callable[[], Iterable[tuple[str, str]]]) -> Catalog:
        """The catalog of `index` (built once per loaded generation)."""
        cached = self._catalog
        if cached is not None and cached[0] is index:
            return cached[1]
        catalog = Catalog(pairs())
        self._catalog = (index, catalog)
        return catalog

    def recall(self, key: tuple[object, ...], compute: Callable[[], Recall]) -> Recall:
        """What the answer under `key` cited: remembered, else computed (the turn replayed) and remembered."""
        with self._lock:
            found = self._recalls.get(key)
            if found is not None:
                self._recalls.move_to_end(key)
                return found
        recall = compute()
        self.remember(key, recall)
        return recall

    def remember(self, key: tuple[object, ...], recall: Recall) -> None:
        """Keep what an answer cited, for the follow-ups to it."""
        with self._lock:
            self._recalls[key] = recall
            self._recalls.move_to_end(key)
            while len(self._recalls) > self._size:
                self._recalls.popitem(last=False)
