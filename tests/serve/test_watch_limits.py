"""Under --watch a long build never holds back a small update: changes cancel it, big files go live last."""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

from bot.answer.answerer import Answerer
from tests.fakes import FakeEmbedder
from bot.index import generations, store
from bot.index.build import BuildCancelled, BuildMemo, CancelToken, build

BIG = "knative/knative-adopter-interview-bigco.md"
SMALL = "knative/knative-adopter-interview-tinyco.md"
WORDS = ("cluster", "serving", "autoscaling", "latency", "tenant", "gateway", "revision", "eventing", "pods", "node")


def interview(adopter: str, fact: str) -> str:
    """A small well-formed interview whose answer carries `fact`."""
    return (f"# Knative Adopter Interview - {adopter}\n\nInterviewee: Pat Doe, SRE, {adopter}\n\n"
            f"## Motivation\n\n### What drew you to the project?\n\n{fact}\n")


def big_interview(passages: int = 150) -> str:
    """An interview of `passages` one-sentence passages (each sentence ~100 words, so one per window)."""
    body = " ".join(f"Fact {i} says " + " ".join(WORDS[(i * 3 + k) % len(WORDS)] for k in range(100)) + "."
                    for i in range(passages))
    return "# Knative Adopter Interview - Bigco\n\n## Usage\n\n### What do you run?\n\n" + body + "\n"


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll until predicate() is true (fail on timeout)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.05)


def slow_embedding(monkeypatch: pytest.MonkeyPatch, embedder: FakeEmbedder, per_text: float) -> threading.Event:
    """Make passage and sentence embedding cost `per_text` seconds a text; the event is set by a call of 20+."""
    real = embedder.embed_documents
    busy = threading.Event()

    def slow(texts, progress=False):
        if len(texts) >= 20:
            busy.set()
        time.sleep(per_text * len(texts))
        return real(texts, progress)

    monkeypatch.setattr(embedder, "embed_documents", slow)
    return busy


def indexed(answerer: Answerer, source: str) -> bool:
    """True when the served generation holds `source`."""
    return source in answerer.index.manifest.files


def test_small_file_goes_live_while_a_slow_build_is_cancelled_and_its_file_deleted(
        watching, fake_answerer: Answerer, monkeypatch: pytest.MonkeyPatch) -> None:
    maintainer, watcher = watching
    corpus = fake_answerer.settings.corpus_dir
    busy = slow_embedding(monkeypatch, fake_answerer.embedder, 0.05)  # the big file: ~300 texts, 15 s
    (corpus / BIG).write_text(big_interview())
    assert busy.wait(10), "the big file's build did not start embedding"
    (corpus / SMALL).write_text(interview("Tinyco", "Tinyco chose it for marmalade telemetry."))
    (corpus / BIG).unlink()
    wait_for(lambda: indexed(fake_answerer, SMALL))
    assert [p.source for p in fake_answerer.search("marmalade telemetry", 1)] == [SMALL]
    status = maintainer.status()
    assert status["builds_cancelled"] >= 1 and status["watch"]["cancelled"] >= 1
    assert status["last_cancelled"]["reason"].startswith("the corpus changed: ")
    wait_for(lambda: not maintainer.status()["watch"]["pending"])
    assert not indexed(fake_answerer, BIG)


def test_small_file_goes_live_before_a_big_one_that_stays(watching, fake_answerer: Answerer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    maintainer, watcher = watching
    corpus = fake_answerer.settings.corpus_dir
    busy = slow_embedding(monkeypatch, fake_answerer.embedder, 0.02)  # the big file: ~300 texts, ~6 s
    (corpus / BIG).write_text(big_interview())
    assert busy.wait(10), "the big file's build did not start embedding"
    (corpus / SMALL).write_text(interview("Tinyco", "Tinyco chose it for marmalade telemetry."))
    wait_for(lambda: indexed(fake_answerer, SMALL))
    assert not indexed(fake_answerer, BIG)  # the small file did not wait for the big one
    assert maintainer.status()["watch"]["deferred"] == [BIG]
    wait_for(lambda: indexed(fake_answerer, BIG), 60)  # nor did the big one starve: its vectors were kept
    # The watcher clears its deferred list after the swap it waited for (another thread): wait for it too.
    wait_for(lambda: maintainer.status()["watch"]["deferred"] == [])
    assert len([c for c in fake_answerer.index.chunks if c.source == BIG]) == 150
    assert maintainer.builds_cancelled >= 1


def test_deleting_the_big_file_cancels_its_build(watching, fake_answerer: Answerer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    maintainer, watcher = watching
    corpus = fake_answerer.settings.corpus_dir
    generation = fake_answerer.index.generation
    busy = slow_embedding(monkeypatch, fake_answerer.embedder, 0.05)
    (corpus / BIG).write_text(big_interview())
    assert busy.wait(10), "the big file's build did not start embedding"
    (corpus / BIG).unlink()
    wait_for(lambda: maintainer.status()["builds_cancelled"] >= 1)
    assert maintainer.status()["last_cancelled"]["reason"] == f"the corpus changed: deleted {BIG}"
    wait_for(lambda: not maintainer.status()["watch"]["pending"])
    assert not indexed(fake_answerer, BIG) and fake_answerer.index.generation == generation  # nothing written


def test_a_cancelled_build_writes_nothing_and_the_next_one_reuses_its_vectors(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    emb = FakeEmbedder()
    first = build(corpus, index_dir, emb)
    (corpus / BIG).write_text(big_interview(100))
    token, memo, calls = CancelToken(), BuildMemo(), []
    real = emb.embed_documents

    def cancel_on_third_batch(texts, progress=False):
        calls.append(len(texts))
        if len(calls) == 3:
            token.cancel("test says stop")
        return real(texts, progress)

    emb.embed_documents = cancel_on_third_batch
    with pytest.raises(BuildCancelled, match="test says stop"):
        build(corpus, index_dir, emb, cancel=token, memo=memo)
    assert generations.current_generation(index_dir) == first.generation
    assert generations.generation_numbers(index_dir) == [first.generation]
    assert BIG not in store.read_manifest(index_dir).files
    assert sum(calls) == 96  # three batches of 32 passages, then it stopped
    calls.clear()
    report = build(corpus, index_dir, emb, memo=memo)
    assert report.added == [BIG] and report.chunks_embedded == 100
    assert sum(calls) < 100 + 101  # the 96 passages of the cancelled build were not embedded again


def test_a_deferred_file_keeps_its_previous_version_until_the_follow_up(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    emb = FakeEmbedder()
    (corpus / BIG).write_text(big_interview(20))
    build(corpus, index_dir, emb)
    (corpus / BIG).write_text(big_interview(60))
    (corpus / SMALL).write_text(interview("Tinyco", "Tinyco chose it for marmalade telemetry."))
    interim = build(corpus, index_dir, emb, defer_over=30)
    assert interim.deferred == [BIG] and interim.added == [SMALL] and BIG not in interim.changed
    assert store.read_manifest(index_dir).files[BIG].chunks == 20  # still the old version
    follow_up = build(corpus, index_dir, emb)
    assert follow_up.changed == [BIG] and not follow_up.deferred
    assert store.read_manifest(index_dir).files[BIG].chunks == 60
