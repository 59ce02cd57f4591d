"""Block Kit rendering of answers, related passages, feedback buttons and short notices, within Slack's limits."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote as urlquote

from bot.answer.answerer import Answer, Citation, Passage
from bot.answer.location import location
from bot.slack.mrkdwn import bold_to_mrkdwn, escape, split_text, truncate

SECTION_LIMIT = 3000  # Slack: a section's text is at most 3,000 characters
MAX_BLOCKS = 50  # Slack: a message has at most 50 blocks
TEXT_LIMIT = 3000  # the plain `text` fallback shown in notifications
RELATED_EXCERPT = 300
FEEDBACK_BLOCK = "qabot_feedback"
THANKS_BLOCK = "qabot_thanks"
VOTE_UP = "qabot_vote_up"
VOTE_DOWN = "qabot_vote_down"
VOTE_ACTION = re.compile(rf"^(?:{VOTE_UP}|{VOTE_DOWN})$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")

Blocks = list[dict[str, Any]]


def usage_text(command: str) -> str:
    """Help for the slash command, mentions and DMs."""
    return (f"Ask me about the adopter interviews, for example `{command} why do adopters value scale to zero?`, "
            "mention me in a channel, or send me a direct message. I answer with quotes from the interviews and "
            "cite each one; follow-up questions in the same thread need no new mention.")


def passage_url(public_url: str | None, chunk_id: str) -> str | None:
    """The web page's view of a passage, when the service's public URL is known."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/#source={urlquote(chunk_id, safe='')}"


def _sections(mrkdwn: str, block_id: str | None = None) -> Blocks:
    """One or more section blocks holding `mrkdwn`, split at word boundaries to ≤ SECTION_LIMIT each."""
    blocks: Blocks = []
    if not mrkdwn.strip():
        return blocks  # Slack rejects an empty section
    for i, part in enumerate(split_text(mrkdwn, SECTION_LIMIT)):
        block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": part}}
        if block_id:
            block["block_id"] = f"{block_id}_{i}"
        blocks.append(block)
    return blocks


def _context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(mrkdwn, SECTION_LIMIT)}]}


def _answer_mrkdwn(text: str) -> str:
    """The answer text, escaped, with its "- " bullets shown as Slack bullets."""
    lines = [("• " + line[2:]) if line.startswith("- ") else line for line in escape(text).split("\n")]
    return bold_to_mrkdwn("\n".join(lines))


def _origin(p: Citation | Passage, public_url: str | None) -> str:
    url = passage_url(public_url, p.chunk_id)
    where = location(p)
    if url:
        return f"<{escape(url)}|{escape(where)}>"
    return f"`{escape(where)}`"


def _heading(p: Citation | Passage) -> str:
    return " · ".join(escape(" ".join(part.split())) for part in (p.project, p.adopter, p.question) if part)


def _citation_mrkdwn(c: Citation, public_url: str | None) -> str:
    quote = bold_to_mrkdwn(escape(" ".join(c.quote.split())))
    return f"*[{c.n}]* {_heading(c)}\n>{quote}\n{_origin(c, public_url)}"


def _related_mrkdwn(p: Passage, public_url: str | None) -> str:
    excerpt = bold_to_mrkdwn(escape(truncate(" ".join(p.text.split()), RELATED_EXCERPT)))
    return f"• {_heading(p)}\n>{excerpt}\n{_origin(p, public_url)}"


def feedback_block(answer_id: str) -> dict[str, Any]:
    """The 👍 / 👎 buttons; their value is the answer's id in the feedback store."""
    def button(action_id: str, label: str) -> dict[str, Any]:
        return {"type": "button", "action_id": action_id, "value": answer_id,
                "text": {"type": "plain_text", "text": label, "emoji": True}}

    return {"type": "actions", "block_id": FEEDBACK_BLOCK,
            "elements": [button(VOTE_UP, "👍 Helpful"), button(VOTE_DOWN, "👎 Not helpful")]}


def _fit(head: Blocks, groups: list[Blocks], tail: Blocks, what: str) -> Blocks:
    """head + as many whole groups (one per source) as fit + tail within MAX_BLOCKS, one block kept free for the
    thanks line; says how many sources were left out rather than cutting silently."""
    room = MAX_BLOCKS - 1 - len(head) - len(tail)
    body: Blocks = []
    for i, group in enumerate(groups):
        note_room = 0 if i == len(groups) - 1 else 1
        if len(body) + len(group) + note_room > room:
            left_out = len(groups) - i
            body.append(_context(f"_{left_out} more {what} not shown: Slack allows {MAX_BLOCKS} blocks per "
                                 "message._"))
            break
        body.extend(group)
    return head + body + tail


def answer_message(answer: Answer, answer_id: str, public_url: str | None = None,
                   asked_by: str | None = None) -> tuple[str, Blocks]:
    """The fallback text and blocks of an answer (or of a "not in the interviews" reply with related passages)."""
    head: Blocks = []
    if asked_by:
        head.append(_context(f"{mention(asked_by)} asked: *{escape(truncate(answer.question, 2000))}*"))
    groups = [_sections(_answer_mrkdwn(answer.answer), "qabot_answer")]
    if answer.resolved_question and answer.resolved_question != answer.question:
        # a follow-up, resolved: say how it was read, so that a wrong reading is plain to see
        groups[0].append(_context(f"_Understood as: {escape(truncate(answer.resolved_question, 2000))}_"))
    if answer.answered and answer.citations:
        groups.append([{"type": "divider"}, _context("*Sources*")])
        groups.extend(_sections(_citation_mrkdwn(c, public_url)) for c in answer.citations)
        what = "sources"
    else:
        if answer.related:
            groups.append([_context("*Closest passages* (related, not an answer):")])
            groups.extend(_sections(_related_mrkdwn(p, public_url)) for p in answer.related)
        what = "related passages"
    blocks = _fit(head, groups, [feedback_block(answer_id)], what)
    return truncate(escape(answer.answer), TEXT_LIMIT), blocks


def notice_message(text: str) -> tuple[str, Blocks]:
    """A short plain notice (usage help, apology) as fallback text and blocks."""
    return truncate(escape(text), TEXT_LIMIT), _sections(escape(text))[: MAX_BLOCKS]


def mention(user_id: str) -> str:
    """A user mention for a Slack user id; anything else is shown escaped, never as markup."""
    return f"<@{user_id}>" if _USER_ID.match(user_id or "") else escape(user_id or "someone")


def with_thanks(blocks: Blocks, user_id: str, vote: str, up: int, down: int) -> Blocks:
    """The message's blocks with a thank-you line (and the vote counts) after the feedback buttons."""
    kept = [b for b in blocks if b.get("block_id") != THANKS_BLOCK]
    emoji = "👍" if vote == "up" else "👎"
    thanks = _context(f"Thanks for the feedback, {mention(user_id)} ({emoji}). Votes so far: 👍 {up} · 👎 {down}. "
                      "Click again to change your vote.")
    thanks["block_id"] = THANKS_BLOCK
    at = next((i + 1 for i, b in enumerate(kept) if b.get("block_id") == FEEDBACK_BLOCK), len(kept))
    return (kept[:at] + [thanks] + kept[at:])[:MAX_BLOCKS]
