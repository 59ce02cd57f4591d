"""The terminal's conversations: `qabot chat` (a loop with readline history) and the text of an answer, which
`qabot ask` prints too."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from bot.answer.location import page_label

if TYPE_CHECKING:
    from bot.answer.answerer import Answer, Answerer

logger = logging.getLogger(__name__)

MAX_TURNS = 20  # earlier questions sent with a question, as over HTTP (the /ask `history` limit)
HISTORY_FILE = "chat_history"  # readline's history of typed lines, in the state folder
HISTORY_LINES = 1000
PROMPT = "qabot> "
HELP = ("Ask a question; follow-ups (\"and IBM?\", \"why did they pick it?\") continue the conversation.\n"
        "/sources N  show source N of the last answer in full   /sources  list them again\n"
        "/new        start a new conversation                     /help     this help\n"
        "Ctrl-D (or /quit) leaves.")


def source_line(p: Any) -> str:
    """One line naming a citation or passage: project, adopter, section, question and file:lines (and the PDF
    page: "p. 2", "pp. 2-3")."""
    where = f"{p.source}:{p.line_start}-{p.line_end}{page_label(p, ', ')}"
    return f"{p.project} · {p.adopter} · {p.section} · {p.question} ({where})"


def echo_answer(answer: "Answer", echo: Callable[[str], None] = click.echo) -> None:
    """Print an answer as `qabot ask` does: how a follow-up was understood, the text, numbered sources."""
    if answer.resolved_question and answer.resolved_question != answer.question:  # a follow-up, resolved
        echo(f"Understood as: {answer.resolved_question}")
    echo(answer.answer)
    if answer.citations:
        echo("\nSources:")
        for c in answer.citations:
            echo(f"[{c.n}] {source_line(c)}")
    elif answer.related:
        echo("\nClosest passages (related, not an answer):")
        for i, p in enumerate(answer.related, 1):
            echo(f"[{i}] {source_line(p)}")


def read_history_file(path: Path, max_chars: int) -> list[str]:
    """The earlier questions in `path`, one a line (blank lines skipped), for `qabot ask --history-file`."""
    try:
        lines = [" ".join(line.split()) for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--history-file") from exc
    questions = [line for line in lines if line]
    if len(questions) > MAX_TURNS:
        raise click.BadParameter(f"{path} has {len(questions)} questions; at most {MAX_TURNS}",
                                 param_hint="--history-file")
    for n, q in enumerate(questions, 1):
        if len(q) > max_chars:
            raise click.BadParameter(f"question {n} of {path} is over {max_chars} characters",
                                     param_hint="--history-file")
    return questions


class Chat:
    """One conversation in the terminal: each question is asked with the ones before it."""

    def __init__(self, answerer: "Answerer", top_k: int, project: str | None = None, adopter: str | None = None,
                 max_chars: int = 2000, echo: Callable[[str], None] = click.echo) -> None:
        self.answerer = answerer
        self.top_k = top_k
        self.project = project
        self.adopter = adopter
        self.max_chars = max_chars
        self.echo = echo
        self.history: list[str] = []
        self.last: Answer | None = None

    def handle(self, line: str) -> bool:
        """Act on one typed line; False when the user wants to leave."""
        line = " ".join(line.split())
        if not line:
            return True
        if line.startswith("/"):
            return self._command(line)
        if len(line) > self.max_chars:
            self.echo(f"That question is {len(line)} characters long; please keep it under {self.max_chars}.")
            return True
        answer = self.answerer.ask(line, self.top_k, self.project, self.adopter, history=self.history[-MAX_TURNS:])
        self.history.append(line)
        self.last = answer
        echo_answer(answer, self.echo)
        self.echo("")
        return True

    def _command(self, line: str) -> bool:
        name, _, arg = line.partition(" ")
        if name in ("/quit", "/exit"):
            return False
        if name == "/new":
            self.history.clear()
            self.last = None
            self.echo("New conversation.")
        elif name == "/sources":
            self._sources(arg.strip())
        elif name == "/help":
            self.echo(HELP)
        else:
            self.echo(f"Unknown command {name}. {HELP}")
        return True

    def _sources(self, arg: str) -> None:
        """`/sources N`: source N of the last answer with its whole passage; `/sources`: the list again."""
        if self.last is None:
            self.echo("No answer yet: ask a question first.")
            return
        items = self.last.citations or self.last.related
        if not arg:
            for i, p in enumerate(items, 1):
                self.echo(f"[{getattr(p, 'n', i)}] {source_line(p)}")
            return
        if not arg.isdigit() or not 1 <= int(arg) <= len(items):
            self.echo(f"No source {arg}: the last answer has {len(items)} (/sources 1 to /sources {len(items)}).")
            return
        p = items[int(arg) - 1]
        self.echo(f"[{arg}] {source_line(p)}")
        quote = getattr(p, "quote", "")
        if quote:
            self.echo(f"Quote: “{' '.join(quote.split())}”")
        self.echo("")
        self.echo(p.text.strip())
        self.echo("")

    def run(self, history_path: Path | None = None) -> None:
        """Read questions until EOF, /quit or Ctrl-C, with line editing and history when readline is there."""
        readline = _readline(history_path)
        self.echo("Ask the interviews. /help lists the commands; Ctrl-D leaves.")
        try:
            while True:
                try:
                    line = input(PROMPT)
                except EOFError:
                    self.echo("")
                    return
                if not self.handle(line):
                    return
        except KeyboardInterrupt:
            self.echo("")  # Ctrl-C leaves, at the prompt or while answering, without a traceback
        finally:
            if readline is not None and history_path is not None:
                try:
                    history_path.parent.mkdir(parents=True, exist_ok=True)
                    readline.write_history_file(history_path)
                except OSError as exc:
                    logger.warning("could not save the chat history to %s: %s", history_path, exc)


def _readline(history_path: Path | None) -> Any:
    """The readline module set up for input() (None where Python has none), with earlier sessions' lines."""
    try:
        import readline
    except ImportError:  # e.g. Windows: input() still works, without history
        return None
    readline.set_history_length(HISTORY_LINES)
    if history_path is not None:
        try:
            readline.read_history_file(history_path)
        except (FileNotFoundError, OSError):
            pass  # first session, or an unreadable file: start empty
    return readline

