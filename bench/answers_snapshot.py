"""Snapshot every `/ask` and `/search` body for a set of questions, to prove a change leaves answers alone.

    python bench/answers_snapshot.py snap OUT.jsonl [--corpus DIR] [--index DIR] QUESTIONS.jsonl...
    python bench/answers_snapshot.py diff BEFORE.jsonl AFTER.jsonl

`snap` builds (or updates) the index of the corpus with the product's embedder, then asks each question
through the real FastAPI app (the HTTP bodies, `took_ms` removed) and writes one line per question.
`diff` lists every question whose body changed and exits 1 when any did.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _questions(paths: list[Path]) -> list[str]:
    out: list[str] = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                turns = row.get("turns") or [row]
                out.extend(t["question"] for t in turns)
    return out


def snap(out: Path, corpus: Path, index: Path, question_files: list[Path]) -> None:
    """Write the /ask (top_k 5) and /search (k 10) bodies of every question to `out`."""
    from fastapi.testclient import TestClient

    from bot.config import Settings
    from bot.embed.embedders import settings_embedder
    from bot.index.build import build

    from bot.answer.answerer import Answerer
    from bot.serve.app import create_app

    settings = Settings(corpus_dir=corpus, index_dir=index, state_dir=index.parent / "var")
    embedder = settings_embedder(settings)
    build(corpus, index, embedder)
    answerer = Answerer(settings, embedder=embedder)
    answerer.reload()
    with TestClient(create_app(settings, answerer, poll_seconds=0)) as client, out.open("w") as f:
        for q in _questions(question_files):
            ask = client.post("/ask", json={"question": q, "top_k": 5}).json()
            ask.pop("took_ms", None)
            search = client.get("/search", params={"q": q, "k": 10}).json()
            f.write(json.dumps({"question": q, "ask": ask, "search": search}, sort_keys=True) + "\n")


def diff(before: Path, after: Path) -> int:
    """Print the questions whose bodies differ; 1 if any did."""
    a = before.read_text(encoding="utf-8").splitlines()
    b = after.read_text(encoding="utf-8").splitlines()
    changed = [json.loads(x)["question"] for x, y in zip(a, b) if x != y]
    if len(a) != len(b):
        print(f"{before}: {len(a)} questions, {after}: {len(b)}")
    for q in changed:
        print(f"changed: {q}")
    print(f"{len(a) - len(changed)} of {len(a)} identical")
    return 1 if changed or len(a) != len(b) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snap")
    s.add_argument("out", type=Path)
    s.add_argument("questions", type=Path, nargs="+")
    s.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    s.add_argument("--index", type=Path, default=Path("/tmp/qabot-snapshot/index"))
    d = sub.add_parser("diff")
    d.add_argument("before", type=Path)
    d.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.cmd == "snap":
        snap(args.out, args.corpus, args.index, args.questions)
        return 0
    return diff(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
