"""Per-file limits: an oversized file is skipped unread, a pathological one costs bounded work, builds show progress."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import bot.index.build
import bot.index.progress
from bot.answer.answerer import Answerer
from bot.cli import main
from bot.config import Settings, get_settings
from tests.fakes import FAKE_MODEL, FakeEmbedder
from bot.index import store
from bot.index.build import Limits, build
from bot.ingest.chunking import ChunkBudgetExceeded, chunk_interview
from bot.ingest.files import CorpusError, FileTooLarge, discover, read_text
from bot.ingest.parse import parse_text
from bot.serve.maintainer import IndexMaintainer

HEAD = "# Knative Adopter Interview - Bigco\n\nInterviewee: Pat Doe\n\n## Usage\n\n### What do you run?\n\n"
VOCAB = ("cluster", "serving", "autoscaling", "latency", "tenant", "gateway", "revision", "eventing", "pods")
LIMIT = 512 * 1024  # a small QABOT_MAX_FILE_BYTES keeps the tests fast; the pathological files sit just under it


def _words(n: int, seed: int = 0) -> str:
    return " ".join(VOCAB[(i * 7 + seed) % len(VOCAB)] for i in range(n))


def _just_under(kind: str, limit: int = LIMIT) -> str:
    """An interview of `kind` just under `limit` bytes: one huge line of words, one of sentences, or many lines."""
    room = limit - len(HEAD) - 100
    if kind == "one line of words":
        body = (_words(room // 8) + " ")[:room]
    elif kind == "one line of sentences":
        body = "".join(f"Sentence {i} is about {_words(12, i)}. " for i in range(room // 100))[:room]
    else:  # many lines, one sentence each, no blank line: one paragraph of ~5,000 lines
        body = "".join(f"Line {i} is about {_words(12, i)}.\n" for i in range(room // 100))[:room]
    text = HEAD + body.rsplit(" ", 1)[0] + "\n"
    assert limit - 200 < len(text.encode()) <= limit
    return text


def test_oversized_file_is_skipped_unread_and_its_size_named(fake_settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = fake_settings.corpus_dir
    big = corpus / "knative" / "knative-adopter-interview-huge.md"
    big.write_text(HEAD + "x" * (5000 - len(HEAD)))
    read: list[str] = []
    real_sha = bot.index.build.file_sha256
    monkeypatch.setattr(bot.index.build, "file_sha256", lambda path, *a: read.append(path.name) or real_sha(path, *a))
    report = build(corpus, fake_settings.index_dir, FakeEmbedder(), limits=Limits(max_file_bytes=4096))
    why = report.skipped["knative/knative-adopter-interview-huge.md"]
    assert "5,000 bytes" in why and "4,096 bytes" in why and "QABOT_MAX_FILE_BYTES" in why
    assert big.name not in read  # judged from stat: never read, not even to hash it
    assert len(report.added) == 3 and "knative/knative-adopter-interview-huge.md" not in store.read_manifest(
        fake_settings.index_dir).files
    assert discover(corpus, 4096).skipped["knative/knative-adopter-interview-huge.md"] == why


def test_size_limit_comes_from_the_environment_and_shows_in_qabot_index(fake_settings: Settings,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env({}).max_file_bytes == 4 * 1024 * 1024
    assert Settings.from_env({"QABOT_MAX_FILE_BYTES": "2048"}).max_file_bytes == 2048
    corpus = fake_settings.corpus_dir
    (corpus / "knative" / "knative-adopter-interview-huge.md").write_text(HEAD + "y" * 3000)
    monkeypatch.setenv("QABOT_MAX_FILE_BYTES", "2048")
    monkeypatch.setenv("QABOT_MODEL", FAKE_MODEL)
    get_settings.cache_clear()
    result = CliRunner().invoke(main, ["index", "--corpus", str(corpus), "--index", str(fake_settings.index_dir)])
    assert result.exit_code == 0, result.output
    assert "skipped knative/knative-adopter-interview-huge.md: file is" in result.stderr
    assert "over the limit of 2.0 KiB (2,048 bytes)" in result.stderr


def test_oversized_file_shows_in_admin_status(fake_answerer: Answerer) -> None:
    corpus = fake_answerer.settings.corpus_dir
    (corpus / "knative" / "knative-adopter-interview-huge.md").write_text(HEAD + "z" * 9000)
    maintainer = IndexMaintainer(fake_answerer, poll_seconds=0)
    maintainer.settings = maintainer.settings.replace(max_file_bytes=8192)
    assert maintainer.rebuild_now() is not None
    why = maintainer.status()["skipped"]["knative/knative-adopter-interview-huge.md"]
    assert "over the limit of 8.0 KiB (8,192 bytes)" in why


def test_a_file_that_grew_past_the_limit_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(HEAD + "w" * 5000)
    with pytest.raises(FileTooLarge, match=r"over the limit of 4.0 KiB \(4,096 bytes\)"):
        read_text(path, max_bytes=4096)
    assert read_text(path, max_bytes=1 << 20)[0].startswith(HEAD)


@pytest.mark.parametrize("kind, reason", [
    ("one line of words", "with no sentence end inside"),
    ("one line of sentences", "more than 200 passages (QABOT_MAX_PASSAGES_PER_FILE)"),
    ("many lines", "more than 200 passages (QABOT_MAX_PASSAGES_PER_FILE)"),
])
def test_pathological_file_just_under_the_size_limit_is_skipped_by_the_passage_budget(
        fake_settings: Settings, kind: str, reason: str) -> None:
    corpus = fake_settings.corpus_dir
    (corpus / "knative" / "knative-adopter-interview-bigco.md").write_text(_just_under(kind))
    emb = FakeEmbedder()
    report = build(corpus, fake_settings.index_dir, emb, limits=Limits(LIMIT, 200))
    assert reason in report.skipped["knative/knative-adopter-interview-bigco.md"]
    assert len(report.added) == 3 and report.chunks_total < 50  # only the three small interviews
    assert emb.calls < 500  # their passages and sentences: nothing of the big file was embedded


def test_passage_budget_stops_chunking_early_and_says_where() -> None:
    interview = parse_text(_just_under("many lines"), "knative/bigco.md")
    assert len(chunk_interview(interview)) > 400  # no budget: the whole file (linear now, was quadratic)
    with pytest.raises(ChunkBudgetExceeded) as caught:
        chunk_interview(interview, max_passages=100)
    line, total = (int(n.replace(",", "")) for n in str(caught.value).rsplit("line ", 1)[1].split(" of "))
    assert line < total / 4  # it stopped counting well before the end of the file


def test_a_heading_longer_than_any_real_one_makes_the_file_unusable(fake_settings: Settings) -> None:
    with pytest.raises(CorpusError, match=r"line 5 is a heading of 1,\d{3} characters \(at most 1,000\)"):
        parse_text(HEAD.replace("## Usage", "## " + _words(200)), "knative/a.md")
    corpus = fake_settings.corpus_dir
    (corpus / "knative" / "knative-adopter-interview-wide.md").write_text(
        HEAD + "\n## Title" + " " * 20_000 + "end\n\nBody.\n")  # a run of spaces made the heading regex cubic
    report = build(corpus, fake_settings.index_dir, FakeEmbedder(), limits=Limits(LIMIT, 500))
    assert report.skipped["knative/knative-adopter-interview-wide.md"].startswith("line 10 is a heading of 20,")


def test_settings_read_the_passage_budget_from_env() -> None:
    assert Settings.from_env({}).max_passages_per_file == 200
    assert Settings.from_env({"QABOT_MAX_PASSAGES_PER_FILE": "40"}).max_passages_per_file == 40


def test_long_build_shows_moving_progress_in_status_and_log(fake_answerer: Answerer, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    corpus = fake_answerer.settings.corpus_dir
    for n in range(4):  # 4 files x 40 one-sentence passages: 160 passages, 5 embedding batches
        body = " ".join(f"Fact {n}-{i} says {_words(100, i + n)}." for i in range(40))
        (corpus / "knative" / f"knative-adopter-interview-co{n}.md").write_text(HEAD + body + "\n")
    real = fake_answerer.embedder.embed_documents
    monkeypatch.setattr(fake_answerer.embedder, "embed_documents",
                        lambda texts, progress=False: time.sleep(0.01 * len(texts)) or real(texts, progress))
    monkeypatch.setattr(bot.index.progress, "PROGRESS_EVERY_S", 0.2)
    caplog.set_level(logging.INFO, logger="bot.index")
    maintainer = IndexMaintainer(fake_answerer, poll_seconds=0)
    assert maintainer.status()["progress"] is None
    assert maintainer.reindex()
    seen: list[dict] = []
    deadline = time.monotonic() + 30
    while maintainer.building and time.monotonic() < deadline:
        progress = maintainer.status()["progress"]
        if progress is not None and progress["phase"] == "embedding passages":
            seen.append(progress)
        time.sleep(0.05)
    assert not maintainer.building
    assert seen, "no progress seen while the passages were embedded"
    total = maintainer.last_report.passages_to_embed
    assert total == maintainer.last_report.passages_embedded == maintainer.last_report.chunks_embedded > 160
    assert all(p["files_total"] == p["files_done"] == 7 and p["passages_to_embed"] == total for p in seen)
    embedded = [p["passages_embedded"] for p in seen]
    assert embedded == sorted(embedded) and embedded[0] < embedded[-1] <= total  # it moved
    assert maintainer.status()["progress"] is None
    lines = [r.getMessage() for r in caplog.records if "passages embedded" in r.getMessage()]
    assert lines and len(lines) < 30  # every few tenths of a second here (every 5 s by default), not per batch
