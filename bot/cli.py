"""The `qabot` command line: index, ask, chat, search, serve, slack, mcp, eval, feedback."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from bot.config import ConfigError, Settings, get_settings

logger = logging.getLogger(__name__)


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _fail(message: str) -> "click.ClickException":
    return click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages to stderr.")
@click.version_option(package_name="qabot")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """qabot: ask questions of interview transcripts, answered with verbatim, cited quotes."""
    try:
        settings = get_settings()
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    # Commands talk to users on stdout/stderr; logging stays quiet unless asked (serve raises it to INFO).
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not verbose:
        for noisy in ("sentence_transformers", "transformers", "httpx", "faiss"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # pypdf's complaints about a damaged PDF precede the one "skipped FILE: reason" line that says it.
        logging.getLogger("pypdf").setLevel(logging.ERROR)
    ctx.obj = {"settings": settings}


def _load_answerer(settings: Settings):
    from bot.answer.answerer import Answerer
    from bot.index.store import StoreError

    answerer = Answerer(settings)
    try:
        answerer.reload()
    except StoreError as exc:
        raise _fail(str(exc)) from exc
    return answerer


@main.command()
@click.option("--corpus", "corpus", type=click.Path(file_okay=False, path_type=Path), help="Interview folder [QABOT_CORPUS_DIR].")
@click.option("--index", "index", type=click.Path(file_okay=False, path_type=Path), help="Index folder [QABOT_INDEX_DIR].")
@click.option("--full", is_flag=True, help="Re-embed everything instead of only new or changed files.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.pass_context
def index(ctx: click.Context, corpus: Path | None, index: Path | None, full: bool, as_json: bool) -> None:
    """Build or update the index from the interviews."""
    from bot.ingest.files import CorpusError
    from bot.embed.embedders import EmbeddingError, settings_embedder
    from bot.index.build import build
    from bot.index.store import StoreError

    settings = _settings(ctx).replace(corpus_dir=corpus, index_dir=index)
    embedder = settings_embedder(settings)
    try:
        report = build(settings.corpus_dir, settings.index_dir, embedder, full=full, progress=True,
                       on_skip=lambda source, why: click.echo(f"skipped {source}: {why}", err=True),
                       on_warning=lambda source, why: click.echo(f"warning: {source}: {why}", err=True))
    except (CorpusError, StoreError, EmbeddingError) as exc:
        raise _fail(str(exc)) from exc
    except PermissionError as exc:  # one the index code did not name: still one line, not a traceback
        raise _fail(f"cannot write {exc.filename or settings.index_dir} ({exc.strerror}); make it writable by "
                    "this user, or set QABOT_INDEX_DIR to a writable folder") from exc
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.summary())


@main.command()
@click.argument("question")
@click.option("--top-k", "-k", "top_k", type=click.IntRange(1, 20), default=None, help="Passages to cite (1-20).")
@click.option("--project", help="Only interviews of this project.")
@click.option("--adopter", help="Only interviews of this adopter.")
@click.option("--history-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Earlier questions of the conversation, one a line, oldest first (QUESTION may follow up).")
@click.option("--json", "as_json", is_flag=True, help="Print the HTTP /ask body.")
@click.pass_context
def ask(ctx: click.Context, question: str, top_k: int | None, project: str | None, adopter: str | None,
        history_file: Path | None, as_json: bool) -> None:
    """Answer QUESTION with cited quotes from the interviews."""
    from bot.chat import echo_answer, read_history_file

    settings = _settings(ctx)
    if not question.strip():
        raise click.BadParameter("the question is empty", param_hint="QUESTION")
    history = read_history_file(history_file, settings.max_question_chars) if history_file else []
    answerer = _load_answerer(settings)
    answer = answerer.ask(question, top_k or settings.top_k, project, adopter, history=history)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    echo_answer(answer)


@main.command()
@click.option("--top-k", "-k", "top_k", type=click.IntRange(1, 20), default=None, help="Passages to cite (1-20).")
@click.option("--project", help="Only interviews of this project.")
@click.option("--adopter", help="Only interviews of this adopter.")
@click.pass_context
def chat(ctx: click.Context, top_k: int | None, project: str | None, adopter: str | None) -> None:
    """Talk with the interviews: follow-up questions carry the conversation (/new, /sources N, Ctrl-D)."""
    from bot.chat import HISTORY_FILE, Chat

    settings = _settings(ctx)
    answerer = _load_answerer(settings)
    Chat(answerer, top_k or settings.top_k, project, adopter,
         max_chars=settings.max_question_chars).run(Path(settings.state_dir) / HISTORY_FILE)


@main.command()
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(1, 50), default=10, help="How many passages.")
@click.option("--project", help="Only interviews of this project.")
@click.option("--adopter", help="Only interviews of this adopter.")
@click.option("--json", "as_json", is_flag=True, help="Print the HTTP /search body.")
@click.pass_context
def search(ctx: click.Context, query: str, k: int, project: str | None, adopter: str | None, as_json: bool) -> None:
    """Print the passages that best match QUERY, ranked."""
    from bot.chat import source_line

    answerer = _load_answerer(_settings(ctx))
    results = answerer.search(query, k, project, adopter)
    if as_json:
        click.echo(json.dumps({"query": query, "results": [p.to_dict() for p in results]}, indent=2,
                              ensure_ascii=False))
        return
    for rank, p in enumerate(results, 1):
        click.echo(f"{rank:>2}. [{p.score:.3f}] {source_line(p)}")
        text = " ".join(p.text.split())
        click.echo(f"    {text[:300]}{'…' if len(text) > 300 else ''}")


@main.command()
@click.option("--host", default=None, help="Address to listen on [QABOT_HOST, default 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port [QABOT_PORT, default 8000].")
@click.option("--watch", is_flag=True, help="Rebuild and swap the index when the corpus changes.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes sharing the port, e.g. one per core [QABOT_WORKERS, default 1].")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, watch: bool, workers: int | None) -> None:
    """Run the HTTP API, the web page and Slack HTTP events."""
    from bot.serve.server import run_server

    settings = _settings(ctx).replace(host=host, port=port, workers=workers)
    run_server(settings, watch=watch)


@main.command()
@click.option("--watch", is_flag=True, help="Rebuild and swap the index when the corpus changes.")
@click.pass_context
def slack(ctx: click.Context, watch: bool) -> None:
    """Run the Slack bot over Socket Mode (needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN)."""
    from bot.slack.socket import run_socket_mode

    run_socket_mode(_settings(ctx), watch=watch)


@main.command(name="mcp")
@click.option("--corpus", "corpus", type=click.Path(file_okay=False, path_type=Path), help="Interview folder [QABOT_CORPUS_DIR].")
@click.option("--index", "index", type=click.Path(file_okay=False, path_type=Path), help="Index folder [QABOT_INDEX_DIR].")
@click.pass_context
def mcp_(ctx: click.Context, corpus: Path | None, index: Path | None) -> None:
    """Serve the MCP tools and interviews over stdin/stdout, for AI assistants (Claude, Cursor)."""
    from bot.serve.mcp_server import run_stdio

    settings = _settings(ctx).replace(corpus_dir=corpus, index_dir=index)
    # stdout carries the protocol: what people should read goes to stderr (the assistant's MCP log).
    click.echo(f"qabot mcp: serving {settings.index_dir} over stdio", err=True)
    run_stdio(settings)
    click.echo("qabot mcp: the client closed the connection; stopped", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print votes as JSON.")
@click.pass_context
def feedback(ctx: click.Context, as_json: bool) -> None:
    """List 👍/👎 votes given in Slack, newest first."""
    from bot.slack.feedback import print_feedback

    print_feedback(_settings(ctx), as_json=as_json)


@main.command(name="eval")
@click.argument("questions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--top-k", "-k", "top_k", type=click.IntRange(1, 50), default=10, help="Ranks to score.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--failures", is_flag=True, help="Also show each imperfect question: top passages and citations.")
@click.pass_context
def eval_(ctx: click.Context, questions: Path, top_k: int, as_json: bool, failures: bool) -> None:
    """Score retrieval and answers on a labelled question file (JSONL)."""
    from bot.eval_report import run_eval_cli

    run_eval_cli(_settings(ctx), questions, top_k=top_k, as_json=as_json, failures=failures)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file, in a list.")
@click.pass_context
def inspect(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Show how FILES would be indexed: names, layout, questions with their lines, template text, warnings."""
    from bot.ingest.inspect import inspect_file, render

    settings = _settings(ctx)
    reports = [inspect_file(path, settings.corpus_dir, settings.max_file_bytes) for path in files]
    if as_json:
        click.echo(json.dumps(reports, indent=2, ensure_ascii=False))
    else:
        click.echo("\n\n".join(render(r) for r in reports))
    if any("error" in r for r in reports):
        ctx.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
