"""What the parser makes of an interview file, for someone about to add it: `qabot inspect FILE…`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bot.ingest.files import CorpusError
from bot.ingest.parse import Interview, parse_file
from bot.ingest.text import normalize_space, words

FIRST_WORDS = 12


def _first_words(text: str, n: int = FIRST_WORDS) -> str:
    parts = normalize_space(text).split(" ")
    return " ".join(parts[:n]) + (" …" if len(parts) > n else "")


def corpus_root_for(path: Path, corpus_dir: Path | None) -> Path:
    """The folder a file's source path is taken relative to: the corpus folder when the file is inside it, else
    the folder above the file's own (so `<project>/<file>` still names the project)."""
    full = Path(os.path.realpath(path))
    if corpus_dir is not None:
        root = Path(os.path.realpath(corpus_dir))
        if root in full.parents:
            return root
    return full.parent.parent if full.parent.parent != full.parent else full.parent


def describe(interview: Interview) -> dict[str, Any]:
    """A JSON-ready account of a parsed interview: names, layout, each question with its lines, warnings."""
    questions, others = [], []
    for s in interview.sections:
        entry = {"path": list(s.path), "heading_line": s.heading_line or None, "line_start": s.line_start,
                 "line_end": s.line_end, "answer_words": len(words(s.body)), "answer_start": _first_words(s.body)}
        if interview.pages:
            entry["page"] = interview.page_of(s.line_start)
        if s.asked:
            questions.append({"question": s.path[-1], **entry})
        else:
            others.append(entry)
    lines = interview.lines
    return {
        "file": interview.source, "format": interview.format, "layout": interview.layout,
        "project": interview.project, "adopter": interview.adopter, "interviewee": interview.interviewee,
        "date": interview.date, "title": interview.title, "lines": len(lines),
        "questions": questions, "other_sections": others,
        "boilerplate": [{"line_start": a, "line_end": b, "text_start": _first_words("\n".join(lines[a - 1 : b]))}
                        for a, b in interview.boilerplate],
        "warnings": list(interview.warnings),
    }


def inspect_file(path: Path, corpus_dir: Path | None = None, max_bytes: int | None = None) -> dict[str, Any]:
    """`describe` of the file at `path`, or {"file", "error"} with the reason a build would skip it for."""
    real = Path(os.path.realpath(path))
    try:
        return describe(parse_file(real, corpus_root_for(real, corpus_dir), max_bytes, warn=False))
    except CorpusError as exc:
        reason = str(exc)
        return {"file": str(path), "error": reason[len(f"{real}: "):] if reason.startswith(f"{real}: ") else reason}


def _span(entry: dict[str, Any]) -> str:
    span = f"{entry['line_start']}-{entry['line_end']}"
    return f"{span} p.{entry['page']}" if entry.get("page") else span


def render(report: dict[str, Any]) -> str:
    """`inspect_file`'s report as text for a terminal."""
    if "error" in report:
        return f"{report['file']}\n  cannot be indexed: {report['error']}"
    out = [report["file"],
           f"  format: {report['format']}  ·  layout: {report['layout']}  ·  {report['lines']} lines",
           f"  project: {report['project']}  ·  adopter: {report['adopter']}",
           f"  interviewee: {report['interviewee'] or '-'}  ·  date: {report['date'] or '-'}",
           f"  title: {report['title']}",
           f"  questions ({len(report['questions'])}):"]
    for q in report["questions"]:
        out.append(f"    {_span(q):>11}  {q['question']}")
        out.append(f"    {'':>11}    → {q['answer_start']} ({q['answer_words']} words)")
    if report["other_sections"]:
        out.append(f"  other sections ({len(report['other_sections'])}):")
        for s in report["other_sections"]:
            out.append(f"    {_span(s):>11}  {' > '.join(s['path'])} ({s['answer_words']} words)")
    if report["boilerplate"]:
        out.append("  template text, not indexed:")
        for b in report["boilerplate"]:
            out.append(f"    {b['line_start']}-{b['line_end']:<6}  {b['text_start']}")
    out.append("  warnings: " + ("; ".join(report["warnings"]) if report["warnings"] else "none"))
    return "\n".join(out)
