"""Conversation state: which events were already handled (retries) and which threads the bot takes part in."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from bot.slack.feedback import FeedbackStore

logger = logging.getLogger(__name__)


class RecentKeys:
    """A bounded set of keys seen in the last `ttl` seconds; `claim` is atomic across threads."""

    def __init__(self, ttl: float = 3600.0, max_size: int = 10000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, key: str) -> bool:
        """True the first time `key` is seen (within the TTL), False afterwards."""
        now = time.monotonic()
        with self._lock:
            while self._seen and (len(self._seen) >= self.max_size or next(iter(self._seen.values())) < now - self.ttl):
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


class ThreadRegistry:
    """Threads the bot has answered in: memory, then the feedback store, then Slack's conversations.replies.

    "Not ours" is remembered for `negative_ttl` seconds so that a busy human thread costs one API call, not one
    per message; a mention in that thread registers it at once."""

    def __init__(self, store: FeedbackStore, negative_ttl: float = 600.0) -> None:
        self.store = store
        self._known: set[tuple[str, str]] = set()
        self._not_ours: dict[tuple[str, str], float] = {}
        self.negative_ttl = negative_ttl
        self._lock = threading.Lock()
        # Lookups under way, by thread: a second message of the same thread waits for the first's answer
        # instead of asking Slack again (events are handled concurrently).
        self._pending: dict[tuple[str, str], tuple[threading.Event, list[bool]]] = {}

    def add(self, channel: str, thread_ts: str) -> None:
        """Mark a thread as one the bot takes part in."""
        with self._lock:
            self._known.add((channel, thread_ts))
            self._not_ours.pop((channel, thread_ts), None)

    def is_ours(self, client: Any, channel: str, thread_ts: str, bot_user_id: str | None,
                bot_id: str | None) -> bool:
        """True if the bot has replied in this thread (it may have before a restart: ask Slack then)."""
        key = (channel, thread_ts)
        with self._lock:
            if key in self._known:
                return True
            seen_negative = self._not_ours.get(key)
            if seen_negative is not None and time.monotonic() - seen_negative < self.negative_ttl:
                return False
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = (threading.Event(), [])
                mine = True
            else:
                mine = False
        done, result = pending
        if not mine:
            done.wait(timeout=30)
            return bool(result and result[0])
        ours = False
        try:
            ours = self.store.answer_thread(channel, thread_ts) or self._bot_in_replies(
                client, channel, thread_ts, bot_user_id, bot_id)
        finally:
            with self._lock:
                if ours:
                    self._known.add(key)
                else:
                    self._not_ours[key] = time.monotonic()
                    if len(self._not_ours) > 5000:
                        self._not_ours.clear()
                del self._pending[key]
            result.append(ours)
            done.set()
        return ours

    @staticmethod
    def _bot_in_replies(client: Any, channel: str, thread_ts: str, bot_user_id: str | None,
                        bot_id: str | None) -> bool:
        try:
            response = client.conversations_replies(channel=channel, ts=thread_ts, limit=200)
        except Exception as exc:  # noqa: BLE001 - a failed lookup means "not ours", never a crash
            logger.warning("conversations.replies failed for %s/%s: %s", channel, thread_ts, exc)
            return False
        for message in response.get("messages") or []:
            if (bot_id and message.get("bot_id") == bot_id) or (bot_user_id and message.get("user") == bot_user_id):
                return True
        return False
