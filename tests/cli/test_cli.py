"""The qabot command on the real path: bundled model, real FAISS, ../shared/corpus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import get_settings
from bot.ingest.text import normalize_space
from tests.fakes import FAKE_MODEL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_copy(tmp_path_factory: pytest.TempPathFactory, shared_corpus: Path) -> Path:
    dest = tmp_path_factory.mktemp("cli") / "corpus"
    shutil.copytree(shared_corpus, dest, ignore=shutil.ignore_patterns("README.md"))
    return dest


@pytest.fixture(scope="module")
def built(corpus_copy: Path) -> tuple[Path, Path, dict]:
    index_dir = corpus_copy.parent / "index"
    runner = CliRunner()
    result = runner.invoke(main, ["index", "--corpus", str(corpus_copy), "--index", str(index_dir), "--json"])
    assert result.exit_code == 0, result.output
    return corpus_copy, index_dir, json.loads(result.stdout)


def _run(args: list[str], **env: str):
    get_settings.cache_clear()  # each invocation reads its own environment, as a new process would
    result = CliRunner().invoke(main, args, env={"HF_HUB_OFFLINE": "1", **env})
    return result


def test_full_build_reports_every_file(built) -> None:
    corpus, _, report = built
    assert len(report["added"]) == len(list(corpus.rglob("*.md"))) > 20 and report["chunks_embedded"] == report["chunks_total"] > 300


def test_ask_json_quotes_are_verbatim_at_their_lines(built) -> None:
    corpus, index_dir, _ = built
    for question in ("why do adopters value scale to zero?", "How is OpenFGA deployed in production?"):
        result = _run(["ask", question, "--json"], QABOT_INDEX_DIR=str(index_dir))
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert set(body) >= {"question", "answer", "answered", "citations", "took_ms"}
        assert body["answered"] and body["citations"]
        for c in body["citations"]:
            lines = (corpus / c["source"]).read_text(encoding="utf-8").splitlines()
            at = normalize_space("\n".join(lines[c["line_start"] - 1 : c["line_end"]]))
            assert normalize_space(c["quote"]) in at
            assert normalize_space(c["quote"]) in normalize_space(c["text"])
            assert f"[{c['n']}]" in body["answer"]


def test_ask_text_lists_numbered_sources(built) -> None:
    _, index_dir, _ = built
    result = _run(["ask", "why do adopters value scale to zero?"], QABOT_INDEX_DIR=str(index_dir))
    assert result.exit_code == 0, result.output
    assert "[1]" in result.stdout and "Sources:" in result.stdout
    source_lines = [line for line in result.stdout.splitlines() if line.startswith("[1] ")]
    assert source_lines and " · " in source_lines[0] and ".md:" in source_lines[0]


def test_search_ranks_passages(built) -> None:
    _, index_dir, _ = built
    result = _run(["search", "Gojek data science platform", "-k", "3", "--json"], QABOT_INDEX_DIR=str(index_dir))
    body = json.loads(result.stdout)
    assert len(body["results"]) == 3
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert "n" not in body["results"][0] and "quote" not in body["results"][0]


def test_incremental_add_change_delete_and_bad_file(built) -> None:
    corpus, index_dir, report = built
    args = ["index", "--corpus", str(corpus), "--index", str(index_dir), "--json"]
    again = json.loads(_run(args).stdout)
    assert again["chunks_embedded"] == 0 and len(again["unchanged"]) == len(report["added"])

    new = corpus / "extra" / "nested" / "knative-adopter-interview-initech.md"
    new.parent.mkdir(parents=True)
    new.write_text("# Knative Adopter Interview - Initech\n\n## Usage Scenario\n\n### Why Knative?\n"
                   "Initech adopted Knative to run its TPS report generators with scale to zero.\n\n"
                   "### Scale?\nTwelve services in production.\n", encoding="utf-8")
    (corpus / "broken.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    result = _run(args)
    added = json.loads(result.stdout)
    assert added["added"] == ["extra/nested/knative-adopter-interview-initech.md"]
    assert added["chunks_embedded"] == 2
    assert "broken.md" in added["skipped"] and "skipped broken.md" in result.stderr

    ask = _run(["ask", "What does Initech run with Knative?", "--json"], QABOT_INDEX_DIR=str(index_dir))
    assert ask.exit_code == 0, ask.output
    assert any(c["adopter"] == "Initech" for c in json.loads(ask.stdout)["citations"])

    new.unlink()
    (corpus / "broken.md").unlink()
    removed = json.loads(_run(args).stdout)
    assert removed["removed"] == ["extra/nested/knative-adopter-interview-initech.md"]
    assert removed["chunks_embedded"] == 0 and removed["chunks_total"] == report["chunks_total"]


def test_model_mismatch_is_refused(built) -> None:
    _, index_dir, _ = built
    result = _run(["ask", "anything", "--json"], QABOT_INDEX_DIR=str(index_dir), QABOT_MODEL=FAKE_MODEL)
    assert result.exit_code != 0
    assert "all-MiniLM-L6-v2" in result.output and "qabot index --full" in result.output


def test_python_dash_m_bot_runs_the_same_command(built) -> None:
    _, index_dir, _ = built
    env = {**os.environ, "QABOT_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "bot", "search", "scale to zero", "-k", "2"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(" 1. [")


def test_ask_without_index_explains_how_to_build(tmp_path: Path) -> None:
    result = _run(["ask", "why?"], QABOT_INDEX_DIR=str(tmp_path / "none"))
    assert result.exit_code != 0 and "qabot index" in result.output
