"""`qabot eval`'s report: the metrics table by kind with the targets, the imperfect questions, and the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.evaluation import FOLLOW_UP, FOLLOW_UP_TARGETS, TARGETS, EvalError, evaluate, load_questions

def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


ROW_KEYS = ("questions", "recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10",
            "gold_coverage@5", "quote_hit", "answer_hit", "gold_cited", "citation_precision", "gold_interviews_cited",
            "off_project_citations", "resolved_names",
            "false_refusals", "unanswerable_flagged", "passage_words", "p50_ms")


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table: one column for all questions, one per kind, then misses."""
    columns = [("all", report["overall"])] + list(report["by_kind"].items())
    width = max(len(k) for k in ROW_KEYS) + 2
    lines = ["metric".ljust(width) + "".join(name[:12].rjust(13) for name, _ in columns)]
    for key in ROW_KEYS:
        lines.append(key.ljust(width) + "".join(_fmt(col.get(key)).rjust(13) for _, col in columns))
    o = report["overall"]
    lines.append("")
    lines.append(f"thematic coverage (gold interviews cited): {_fmt(o.get('thematic_coverage'))}; "
                 f"search p50 {_fmt(o.get('search_p50_ms'))} ms; answer p50 {_fmt(o.get('p50_ms'))} ms")
    targets = [f"{k} {_fmt(o.get(k))} (target {'<=' if k == 'false_refusals' else '>='} {v})"
               for k, v in TARGETS.items() if o.get(k) is not None]
    if targets:
        lines.append("targets: " + "; ".join(targets))
    follow = report["by_kind"].get(FOLLOW_UP)
    if follow:
        lines.append("follow-up targets: " + "; ".join(
            f"{k} {_fmt(follow.get(k))} (target {'<=' if k == 'false_refusals' else '>='} {v})"
            for k, v in FOLLOW_UP_TARGETS.items() if follow.get(k) is not None))
    misses = [q for q in report["questions"]
              if (q["answerable"] and (not q["first_rank"] or q["first_rank"] > 5 or q["answered"] is False
                                       or q["quote_hit"] is False))
              or (not q["answerable"] and q["answered"])]
    if misses:
        lines.append("to look at: " + ", ".join(
            f"{q['id']}({q['kind']}: rank {q['first_rank'] or '-'}"
            f"{', refused' if q['answerable'] and q['answered'] is False else ''}"
            f"{', quote missed' if q['quote_hit'] is False else ''}"
            f"{', answered' if not q['answerable'] and q['answered'] else ''})" for q in misses))
    return "\n".join(lines)


def _missed(q: dict[str, Any]) -> bool:
    if not q["answerable"]:
        return bool(q["answered"])
    return (not q["first_rank"] or q["first_rank"] > 1 or q["answered"] is False or q["quote_hit"] is False
            or (q["gold_files_cited"] is not None and q["gold_files_cited"] < 1.0))


def format_failures(report: dict[str, Any]) -> str:
    """One block per question that is not perfect: what was asked, what ranked first, what was cited."""
    blocks = []
    for q in report["questions"]:
        if not _missed(q):
            continue
        head = (f"{q['id']} ({q['kind']}): rank {q['first_rank'] or '-'}, quote "
                f"{'-' if q['quote_hit'] is None else ('hit' if q['quote_hit'] else 'missed')}, answered "
                f"{q['answered']}, gold interviews cited {_fmt(q['gold_files_cited'])}")
        lines = [head, f"  Q: {q.get('question', '')}"]
        lines += [f"  gold: {f}" for f in q.get("gold_files", [])]
        lines += [f"  ranked {i}: {t}" for i, t in enumerate(q.get("top", []), 1)]
        if q.get("cited_files"):
            lines.append("  cited: " + ", ".join(q["cited_files"]))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "no failures"


def run_eval(settings: Any, path: Path, top_k: int = 10) -> dict[str, Any]:
    """Load the configured index and evaluate the Answerer on the question file."""
    from bot.answer.answerer import Answerer

    questions = load_questions(path)
    answerer = Answerer(settings)
    answerer.reload()
    return evaluate(answerer, questions, top_k=top_k, answer_k=settings.top_k, corpus=answerer.index.chunks)


def run_eval_cli(settings: Any, path: Path, top_k: int = 10, as_json: bool = False,
                 failures: bool = False) -> None:
    """The body of `qabot eval`: print the report (text or JSON); errors become clean CLI messages."""
    import click

    from bot.embed.embedders import EmbeddingError
    from bot.index.store import StoreError

    try:
        report = run_eval(settings, path, top_k=top_k)
    except (EvalError, StoreError, EmbeddingError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_report(report))
        if failures:
            click.echo("\n" + format_failures(report))
