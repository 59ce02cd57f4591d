"""Pathological interview files: what one costs a build (time, peak memory) and how the limits treat it.

    python bench/pathological_files.py [--bytes 4190000] [--timeout 300] [--cases words sentences ...]

Each case is a single generated file just under QABOT_MAX_FILE_BYTES (default 4 MiB), indexed alone with the
fake embedder (the model's cost is not measured here: a skipped file is never embedded) by `bot.index.build`
with the default limits, then loaded by an Answerer, in a fresh process so peak RSS is that file's. Run it
with PYTHONPATH pointing at another checkout to measure that code instead.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The fake embedder is a test helper (tests/fakes.py); appended, so a PYTHONPATH checkout still provides `bot`.
sys.path.append(str(Path(__file__).resolve().parents[1]))

HEAD = "# Knative Adopter Interview - Bigco\n\nInterviewee: Pat Doe\n\n## Usage\n\n### What do you run?\n\n"
VOCAB = ("cluster", "serving", "autoscaling", "latency", "tenant", "gateway", "revision", "eventing", "pods")
CASES = ("words", "sentences", "lines", "paragraphs", "heading-spaces", "budget")


def _words(n: int, seed: int = 0) -> str:
    return " ".join(VOCAB[(i * 7 + seed) % len(VOCAB)] for i in range(n))


def generate(case: str, size: int) -> str:
    """A file of about `size` bytes: one line of words, one line of sentences, many lines, many paragraphs, a
    heading with a long run of spaces, or ("budget") just under 200 passages of ordinary sentences."""
    room = size - len(HEAD) - 100
    if case == "words":
        body = (_words(room // 8) + " ")[:room]
    elif case == "sentences":
        body = "".join(f"Sentence {i} is about {_words(12, i)}. " for i in range(room // 100))[:room]
    elif case == "lines":
        body = "".join(f"Line {i} is about {_words(12, i)}.\n" for i in range(room // 100))[:room]
    elif case == "paragraphs":
        body = "".join(f"Paragraph {i} is about {_words(12, i)}.\n\n" for i in range(room // 100))[:room]
    elif case == "heading-spaces":
        return HEAD.replace("## Usage", "## Usage" + " " * room + "end") + "An answer.\n"
    elif case == "budget":  # ~195 windows of 160 words: the biggest ordinary interview the default budget takes
        body = "".join(f"Sentence {i} is about {_words(12, i)}. " for i in range(195 * 9))
    else:
        raise SystemExit(f"unknown case {case}")
    return HEAD + body.rsplit(" ", 1)[0] + "\n"


def run_one(case: str, size: int) -> dict:
    """Index one generated file alone (this process) and report the build and load."""
    from bot.answer.answerer import Answerer
    from bot.config import Settings
    from bot.index.build import build
    from tests.fakes import FAKE_MODEL, FakeEmbedder

    work = Path(tempfile.mkdtemp(prefix="qabot-patho-"))
    corpus = work / "corpus" / "knative"
    corpus.mkdir(parents=True)
    path = corpus / "knative-adopter-interview-bigco.md"
    path.write_text(generate(case, size), encoding="utf-8")
    started = time.perf_counter()
    embedder = FakeEmbedder()
    report = build(work / "corpus", work / "index", embedder)
    built = time.perf_counter() - started
    answerer = Answerer(Settings(corpus_dir=work / "corpus", index_dir=work / "index", model_name=FAKE_MODEL),
                        embedder=embedder)
    try:
        answerer.reload()
        answerer.search("cluster autoscaling", 3)
    except Exception as exc:  # noqa: BLE001 - an index with no interview in it is a fine outcome here
        print(f"load: {exc}", file=sys.stderr)
    return {"case": case, "bytes": path.stat().st_size, "build_s": round(built, 2),
            "load_s": round(time.perf_counter() - started - built, 2), "chunks": report.chunks_total,
            "texts_embedded": embedder.calls, "skipped": next(iter(report.skipped.values()), None),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=4 * 1024 * 1024 - 4096, help="size of each generated file")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one case may take")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.bytes)))
        return
    for case in args.cases:
        started = time.perf_counter()
        try:
            out = subprocess.run([sys.executable, __file__, "--one", case, "--bytes", str(args.bytes)],
                                 capture_output=True, text=True, timeout=args.timeout)
            line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else f"failed: {out.stderr[-300:]}"
        except subprocess.TimeoutExpired:
            line = json.dumps({"case": case, "timeout_s": args.timeout})
        print(f"{line}  (wall {time.perf_counter() - started:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
