"""Turn a question asked in Slack into a posted answer: working sign, answer, Block Kit, apology on failure."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from slack_sdk.errors import SlackApiError

from bot.answer.answerer import Answer, Answerer, NotReady
from bot.config import Settings
from bot.slack.blocks import answer_message, notice_message, usage_text
from bot.slack.conversation import Conversations
from bot.slack.feedback import FeedbackStore
from bot.slack.mrkdwn import clean_question
from bot.slack.state import RecentKeys, ThreadRegistry

logger = logging.getLogger(__name__)

WORKING_REACTION = "eyes"
APOLOGY = "Sorry, something went wrong while answering that. The error has been logged; please try again later."
NOT_READY = "The interview index isn't loaded yet, so I can't answer right now. Please try again in a minute."
# Posting in a channel the bot is not in fails with these; a slash command then answers through its response_url.
_CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}


@dataclass
class Question:
    """Where a question came from and where its answer goes."""

    text: str
    channel: str
    user: str | None
    thread_ts: str | None = None  # reply in this thread; None: at the top level (DMs, slash commands)
    message_ts: str | None = None  # the question's own message (gets the working reaction)
    from_command: bool = False
    dm: bool = False  # a direct message: without a thread, its conversation is the DM's last few minutes
    bot_user_id: str | None = None  # the bot's own user id, to read earlier questions as it read them


class Responder:
    """Answers questions for every listener and both transports."""

    def __init__(self, settings: Settings, answerer: Answerer, store: FeedbackStore,
                 threads: ThreadRegistry, handled: RecentKeys | None = None,
                 conversations: Conversations | None = None) -> None:
        self.settings = settings
        self.answerer = answerer
        self.store = store
        self.threads = threads
        self.handled = handled or RecentKeys()
        self.conversations = conversations or Conversations(settings, store)

    def claim_message(self, channel: str, ts: str) -> bool:
        """True the first time a message is seen (a mention also arrives as a message event; retries repeat)."""
        return self.handled.claim(f"msg:{channel}:{ts}")

    def validate(self, raw_text: str, bot_user_id: str | None = None) -> tuple[str, str | None]:
        """The cleaned question, and a notice to send instead of an answer when it is empty or too long."""
        text = clean_question(raw_text, bot_user_id)
        if not text:
            return text, usage_text(self.settings.slack_command)
        if len(text) > self.settings.max_question_chars:
            return text, (f"That question is {len(text)} characters long; please keep it under "
                          f"{self.settings.max_question_chars}.")
        return text, None

    def respond(self, client: Any, q: Question, respond: Callable[..., Any] | None = None) -> None:
        """Answer `q` in Slack; on any failure post a short apology and log the error."""
        reacted = self._react(client, q, "reactions_add")
        try:
            answer = self._ask(q.text, self.conversations.earlier_questions(client, q))
        except NotReady:
            logger.warning("question in %s not answered: the index is not loaded", q.channel)
            self._notice(client, q, NOT_READY, respond)
        except Exception:  # noqa: BLE001 - the user gets an apology, the process keeps running
            logger.exception("answering a Slack question in %s failed", q.channel)
            self._notice(client, q, APOLOGY, respond)
        else:
            try:
                self._post_answer(client, q, answer, respond)
            except Exception:  # noqa: BLE001
                logger.exception("posting an answer in %s failed", q.channel)
                self._notice(client, q, APOLOGY, respond)
        finally:
            if reacted:
                self._react(client, q, "reactions_remove")

    def notice(self, client: Any, q: Question, text: str, respond: Callable[..., Any] | None = None) -> None:
        """Post a short notice (usage, limits) where the answer would go."""
        self._notice(client, q, text, respond)

    def _ask(self, question: str, history: list[str]) -> Answer:
        if self.settings.log_questions:
            logger.info("slack question: %s (%d earlier in its conversation)", question, len(history))
        return self.answerer.ask(question, self.settings.top_k, history=history)

    def _post_answer(self, client: Any, q: Question, answer: Answer, respond: Callable[..., Any] | None) -> None:
        answer_id = uuid.uuid4().hex
        text, blocks = answer_message(answer, answer_id, self.settings.public_url,
                                      asked_by=q.user if q.from_command else None)
        try:
            posted = client.chat_postMessage(channel=q.channel, thread_ts=q.thread_ts, text=text, blocks=blocks,
                                             unfurl_links=False, unfurl_media=False)
            message_ts = posted.get("ts")
        except SlackApiError as exc:
            if respond is None or exc.response.get("error") not in _CANNOT_POST:
                raise
            logger.info("cannot post in %s (%s); answering through the command's response_url",
                        q.channel, exc.response.get("error"))
            respond(text=text, blocks=blocks, response_type="in_channel", replace_original=False)
            message_ts = None
        root = q.thread_ts or message_ts
        if root:
            self.threads.add(q.channel, root)
        try:
            self.store.record_answer(answer_id, answer, q.channel, message_ts, root, q.user)
        except Exception:  # noqa: BLE001 - the answer is out; only its feedback context is lost
            logger.exception("could not store the answer posted in %s; votes on it will lack the question",
                             q.channel)
        logger.info("answered in %s (answered=%s, %d citations, %.0f ms)", q.channel, answer.answered,
                    len(answer.citations), answer.took_ms)

    def _notice(self, client: Any, q: Question, message: str, respond: Callable[..., Any] | None) -> None:
        text, blocks = notice_message(message)
        try:
            if q.from_command and respond is not None:
                respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
            else:
                client.chat_postMessage(channel=q.channel, thread_ts=q.thread_ts, text=text, blocks=blocks)
        except Exception:  # noqa: BLE001 - nothing more we can tell the user
            logger.exception("posting a notice in %s failed", q.channel)

    @staticmethod
    def _react(client: Any, q: Question, method: str) -> bool:
        if not q.message_ts:
            return False
        try:
            getattr(client, method)(channel=q.channel, timestamp=q.message_ts, name=WORKING_REACTION)
            return True
        except SlackApiError as exc:
            logger.debug("%s %s failed: %s", method, WORKING_REACTION, exc.response.get("error"))
            return False
        except Exception as exc:  # noqa: BLE001 - the reaction is cosmetic; the answer matters
            logger.warning("%s %s failed: %s", method, WORKING_REACTION, exc)
            return False
