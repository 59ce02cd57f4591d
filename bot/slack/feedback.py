"""Feedback store (SQLite in the state folder): answers posted in Slack and 👍/👎 votes, one per user per answer."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from bot.answer.answerer import Answer
from bot.config import Settings

logger = logging.getLogger(__name__)

FILENAME = "feedback.sqlite3"
VOTES = ("up", "down")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    answer_id TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    answered INTEGER NOT NULL,
    citations TEXT NOT NULL,
    channel TEXT,
    message_ts TEXT,
    thread_ts TEXT,
    asked_by TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    answer_id TEXT NOT NULL,
    user TEXT NOT NULL,
    vote TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    channel TEXT,
    message_ts TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (answer_id, user)
);
CREATE INDEX IF NOT EXISTS votes_updated ON votes (updated);
"""


@dataclass
class Vote:
    """One user's vote on one answer, with what was asked and answered."""

    answer_id: str
    user: str
    vote: str
    question: str
    answer: str
    citations: list[dict[str, Any]]
    channel: str | None
    message_ts: str | None
    created: float
    updated: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with ISO 8601 UTC times."""
        out = asdict(self)
        out["created"] = _iso(self.created)
        out["updated"] = _iso(self.updated)
        return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class FeedbackStore:
    """Answers and votes in `state_dir/feedback.sqlite3`; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ready = False

    @classmethod
    def for_settings(cls, settings: Settings) -> "FeedbackStore":
        """The store under the configured state folder."""
        return cls(Path(settings.state_dir) / FILENAME)

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10)
        if not self._ready:
            conn.executescript(_SCHEMA)
            self._ready = True
        return conn

    def record_answer(self, answer_id: str, answer: Answer, channel: str | None, message_ts: str | None,
                      thread_ts: str | None = None, asked_by: str | None = None) -> None:
        """Remember a posted answer so that votes on it can store what was asked and cited."""
        citations = json.dumps([c.to_dict() for c in answer.citations], ensure_ascii=False)
        with self._lock, closing(self._connect()) as conn, conn:
            conn.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (answer_id, answer.question, answer.answer, int(answer.answered), citations, channel,
                          message_ts, thread_ts, asked_by, time.time()))

    def vote(self, answer_id: str, user: str, vote: str, channel: str | None = None,
             message_ts: str | None = None, fallback_answer: str = "") -> tuple[int, int]:
        """Store (or change) `user`'s vote on an answer; returns the answer's (up, down) counts."""
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}, got {vote!r}")
        if not answer_id or not user:
            raise ValueError("a vote needs an answer id and a user")
        now = time.time()
        with self._lock, closing(self._connect()) as conn, conn:
            row = conn.execute("SELECT question, answer, citations FROM answers WHERE answer_id = ?",
                               (answer_id,)).fetchone()
            question, answer, citations = row if row else ("", fallback_answer, "[]")
            conn.execute(
                "INSERT INTO votes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (answer_id, user) DO UPDATE SET vote = excluded.vote, updated = excluded.updated",
                (answer_id, user, vote, question, answer, citations, channel, message_ts, now, now))
            counts = dict(conn.execute("SELECT vote, COUNT(*) FROM votes WHERE answer_id = ? GROUP BY vote",
                                       (answer_id,)).fetchall())
        return counts.get("up", 0), counts.get("down", 0)

    def votes(self, limit: int | None = None) -> list[Vote]:
        """Votes, newest first."""
        if not self.path.exists():
            return []
        sql = ("SELECT answer_id, user, vote, question, answer, citations, channel, message_ts, created, updated "
               "FROM votes ORDER BY updated DESC, rowid DESC")
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        with self._lock, closing(self._connect()) as conn:
            rows = conn.execute(sql, params).fetchall()
        return [Vote(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "[]"), r[6], r[7], r[8], r[9]) for r in rows]

    def answer_thread(self, channel: str, thread_ts: str) -> bool:
        """True if the bot has posted an answer in this thread (per the store)."""
        if not self.path.exists():
            return False
        with self._lock, closing(self._connect()) as conn:
            row = conn.execute("SELECT 1 FROM answers WHERE channel = ? AND thread_ts = ? LIMIT 1",
                               (channel, thread_ts)).fetchone()
        return row is not None

    def question_of(self, channel: str, message_ts: str) -> str | None:
        """The question the bot answered with this message (per the store), or None."""
        if not self.path.exists():
            return None
        with self._lock, closing(self._connect()) as conn:
            row = conn.execute("SELECT question FROM answers WHERE channel = ? AND message_ts = ? LIMIT 1",
                               (channel, message_ts)).fetchone()
        return row[0] if row else None


def _lines(votes: list[Vote]) -> Iterator[str]:
    for v in votes:
        mark = "👍" if v.vote == "up" else "👎"
        question = " ".join(v.question.split()) or "(question unknown)"
        cited = len(v.citations)
        yield (f"{_iso(v.updated)}  {mark}  {v.user} in {v.channel or '?'}  "
               f"Q: {question[:120]}{'…' if len(question) > 120 else ''}  ({cited} citation{'s' * (cited != 1)})")


def print_feedback(settings: Settings, as_json: bool = False) -> None:
    """Print the votes given in Slack, newest first (`qabot feedback`)."""
    import click

    store = FeedbackStore.for_settings(settings)
    try:
        votes = store.votes()
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot read {store.path}: {exc}") from exc
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in votes], indent=2, ensure_ascii=False))
        return
    if not votes:
        click.echo(f"No votes yet ({store.path}).")
        return
    up = sum(v.vote == "up" for v in votes)
    click.echo(f"{len(votes)} votes: 👍 {up} · 👎 {len(votes) - up}")
    for line in _lines(votes):
        click.echo(line)
