"""Slack text helpers: escape outgoing text, clean incoming questions, split long text at word boundaries."""

from __future__ import annotations

import re

CONTINUED = "_(continued below)_"

_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL_REF = re.compile(r"<#[CG][A-Z0-9]+\|([^>]*)>")
_BARE_CHANNEL_REF = re.compile(r"<#([CG][A-Z0-9]+)>")
_SPECIAL = re.compile(r"<!(?:[^>|]*)(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")
_MD_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")


def escape(text: str) -> str:
    """Escape &, < and > so that text from the corpus or a user can't form links or pings like <!channel>."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def bold_to_mrkdwn(text: str) -> str:
    """Markdown **bold** (common in the transcripts) as Slack's *bold*."""
    return _MD_BOLD.sub(r"*\1*", text)


def unescape(text: str) -> str:
    """Undo Slack's escaping of &, < and > in incoming message text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clean_question(text: str, bot_user_id: str | None = None) -> str:
    """The plain question in a Slack message: the bot's mention removed, links and references made readable."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = _USER_MENTION.sub(lambda m: "@" + m.group(1), text)
    text = _CHANNEL_REF.sub(lambda m: "#" + m.group(1), text)
    text = _BARE_CHANNEL_REF.sub(lambda m: "#" + m.group(1), text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = _SPECIAL.sub(lambda m: m.group(1) or "", text)
    return " ".join(unescape(text).split())


def _cut_point(text: str, limit: int) -> int:
    """Where to end the first part of `text` (≤ limit chars): the last line break or space before the limit."""
    window = text[: limit + 1]
    for sep in ("\n\n", "\n", " "):
        at = window.rfind(sep, 0, limit + 1)
        if at > limit // 3:
            return at
    # Only an early break: the word after it is long. Break there when that word fits in a part of its own
    # (it is not cut then); a word longer than a part is cut anyway, so the part is filled first.
    at = max(window.rfind(sep, 0, limit + 1) for sep in ("\n", " "))
    if at > 0 and len(text[at:].split(None, 1)[0]) <= limit:
        return at
    amp = window.rfind("&", max(0, limit - 5), limit)
    if amp != -1 and ";" not in window[amp:limit]:
        return amp  # don't split an escape like &amp;
    return limit  # one word longer than the limit (a long URL): split it, the marker shows it


def split_text(text: str, limit: int, marker: str = CONTINUED) -> list[str]:
    """Split text into parts of ≤ limit chars at word boundaries; every part but the last ends with `marker`."""
    if limit <= len(marker) + 10:
        raise ValueError(f"limit {limit} is too small for the continuation marker")
    text = text.strip()
    if len(text) <= limit:
        return [text]
    room = limit - len(marker) - 1
    parts: list[str] = []
    while len(text) > limit:
        at = _cut_point(text, room)
        parts.append(text[:at].rstrip() + "\n" + marker)
        text = text[at:].strip()
    parts.append(text)
    return parts


def truncate(text: str, limit: int) -> str:
    """At most `limit` chars, cut at a word boundary with a visible ellipsis (for previews and fallbacks)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    at = text.rfind(" ", 0, limit - 1)
    if at < limit // 2:
        at = limit - 1
    return text[:at].rstrip() + "…"
