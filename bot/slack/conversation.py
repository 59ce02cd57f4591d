"""A Slack question's conversation: the earlier questions of its thread, or of a DM's last few minutes.

Read from Slack (conversations.replies / conversations.history) rather than kept in memory, so a conversation
survives restarts and is the same on every replica; a retried or edited event is one message there, so it is
never a second turn."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Iterable

from bot.config import Settings
from bot.slack.feedback import FeedbackStore
from bot.slack.mrkdwn import clean_question

if TYPE_CHECKING:
    from bot.slack.responder import Question

logger = logging.getLogger(__name__)

MAX_TURNS = 20  # earlier questions sent with a question, as over HTTP (the /ask `history` limit)
MAX_PAGES = 10  # conversations.replies pages (200 messages each) read for one thread
# Messages people write; edits, deletions, joins... carry other subtypes and are not questions.
_QUESTION_SUBTYPES = {None, "thread_broadcast", "file_share"}


def _ts(value: Any) -> Decimal | None:
    """A Slack timestamp ("1700000000.000100") as an exact number (floats lose the last digits)."""
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _is_question(message: dict[str, Any]) -> bool:
    return (message.get("subtype") in _QUESTION_SUBTYPES and not message.get("bot_id")
            and bool(message.get("user")))


class Conversations:
    """Finds the earlier questions of a Slack question (oldest first, at most MAX_TURNS)."""

    def __init__(self, settings: Settings, store: FeedbackStore) -> None:
        self.settings = settings
        self.store = store

    def earlier_questions(self, client: Any, q: "Question") -> list[str]:
        """The conversation before this question; [] when it starts one or Slack can't be read."""
        if not q.message_ts:
            return []  # a slash command starts a conversation (its answer's thread continues it)
        try:
            if q.thread_ts and q.thread_ts != q.message_ts:
                questions = self._thread(client, q)
            elif q.dm:
                questions = self._recent_dm(client, q)
            else:
                return []  # a top-level mention starts a thread
        except Exception as exc:  # noqa: BLE001 - without its history a question is still answered, as asked
            logger.warning("could not read the conversation of %s/%s: %s", q.channel,
                           q.thread_ts or q.message_ts, exc)
            return []
        logger.debug("%d earlier questions in %s/%s", len(questions), q.channel, q.thread_ts or "dm")
        return questions[-MAX_TURNS:]

    def _thread(self, client: Any, q: "Question") -> list[str]:
        """User messages of the thread before this one, from where the bot was brought in."""
        messages: list[dict[str, Any]] = []
        cursor = None
        for _ in range(MAX_PAGES):
            response = client.conversations_replies(channel=q.channel, ts=q.thread_ts, limit=200,
                                                    cursor=cursor)
            messages.extend(response.get("messages") or [])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        before = _ts(q.message_ts)
        if before is None:
            return []
        stamped = [(ts, m) for m in messages if (ts := _ts(m.get("ts"))) is not None and ts < before]
        questions: list[str] = []
        # In a channel, people may talk in a thread before anyone mentions the bot: that is not the conversation.
        # It starts at the first mention, or at the bot's own first message (the answer to a slash command or a
        # DM question that the thread hangs under, whose question the bot recorded).
        started = q.dm
        mention = f"<@{q.bot_user_id}" if q.bot_user_id else None
        for _, m in sorted(stamped, key=lambda pair: pair[0]):
            if m.get("bot_id"):
                if q.bot_user_id and m.get("user") != q.bot_user_id:
                    continue  # another bot
                if m.get("ts") == q.thread_ts:
                    asked = self.store.question_of(q.channel, m["ts"])
                    if asked:
                        questions.append(asked)
                started = True
                continue
            if not _is_question(m):
                continue
            if not started and not (mention and mention in (m.get("text") or "")):
                continue
            started = True
            questions.extend(self._cleaned([m], q))
        return questions

    def _recent_dm(self, client: Any, q: "Question") -> list[str]:
        """The DM's top-level questions of the last QABOT_SLACK_DM_WINDOW_S seconds before this one."""
        latest = _ts(q.message_ts)
        if latest is None:
            return []
        oldest = latest - Decimal(str(self.settings.slack_dm_window_s))
        response = client.conversations_history(channel=q.channel, oldest=str(oldest), latest=q.message_ts,
                                                inclusive=False, limit=100)
        stamped = [(ts, m) for m in response.get("messages") or [] if _is_question(m)
                   and (ts := _ts(m.get("ts"))) is not None and oldest <= ts < latest]
        return self._cleaned((m for _, m in sorted(stamped, key=lambda pair: pair[0])), q)  # Slack: newest first

    def _cleaned(self, messages: Iterable[dict[str, Any]], q: "Question") -> list[str]:
        """The questions as the bot read them; empty or overlong ones got a notice, not an answer: dropped."""
        out = []
        for m in messages:
            text = clean_question(m.get("text") or "", q.bot_user_id)
            if text and len(text) <= self.settings.max_question_chars:
                out.append(text)
        return out
