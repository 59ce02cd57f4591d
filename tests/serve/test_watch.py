"""Watch: corpus changes are debounced into one incremental rebuild, swapped in, and reported."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
from watchfiles import Change

from bot.answer.answerer import Answerer
from bot.config import Settings
from bot.serve.maintainer import IndexMaintainer
from bot.serve.watch import InterviewFilter, start_watching


def interview(adopter: str, fact: str, project: str = "Knative") -> str:
    """A small well-formed interview whose motivation answer carries `fact`."""
    return (f"# {project} Adopter Interview - {adopter}\n\nInterviewee: Pat Doe, SRE, {adopter}\n\n"
            f"## Motivation\n\n### What drew you to the project?\n\n{fact}\n\n"
            f"### What key features do you use today?\n\n- Serving for {adopter} internal apps.\n")


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> float:
    """Poll until predicate() is true; return the seconds it took (fail on timeout)."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.05)
    return time.perf_counter() - started


def sources(answerer: Answerer, query: str, k: int = 3) -> list[str]:
    """The sources of the top-k passages for a query."""
    return [p.source for p in answerer.search(query, k)]


def test_added_file_becomes_searchable_and_status_says_what_changed(watching, fake_answerer: Answerer) -> None:
    maintainer, watcher = watching
    corpus = fake_answerer.settings.corpus_dir
    generation = fake_answerer.index.generation
    (corpus / "knative" / "knative-adopter-interview-zorblax.md").write_text(
        interview("Zorblax", "Zorblax picked it for quantum pretzel scheduling."))
    wait_for(lambda: fake_answerer.index.generation > generation)
    assert sources(fake_answerer, "quantum pretzel scheduling")[0] == "knative/knative-adopter-interview-zorblax.md"
    status = maintainer.status()
    assert status["last_build"]["added"] == ["knative/knative-adopter-interview-zorblax.md"]
    new_chunks = [c for c in fake_answerer.index.chunks if c.source == "knative/knative-adopter-interview-zorblax.md"]
    assert status["last_build"]["chunks_embedded"] == len(new_chunks) > 0  # only the new file's chunks
    assert status["generation"] == fake_answerer.index.generation and status["built_at"]
    assert status["watch"]["last_changes"] == [{"change": "added", "path": "knative/knative-adopter-interview-zorblax.md"}]
    assert status["watch"]["last_live_at"] >= status["watch"]["last_event_at"]


def test_burst_of_twenty_files_is_one_rebuild(watching, fake_answerer: Answerer, tmp_path: Path) -> None:
    maintainer, watcher = watching
    corpus = fake_answerer.settings.corpus_dir
    staging = tmp_path / "pull"
    staging.mkdir()
    for i in range(20):
        (staging / f"knative-adopter-interview-co{i}.md").write_text(interview(f"Co{i}", f"Reason number {i} tokenx{i}."))
    rebuilds = watcher.rebuilds
    for f in sorted(staging.iterdir()):  # like a git pull: many files within a fraction of a second
        shutil.copy(f, corpus / "knative" / f.name)
        time.sleep(0.005)
    wait_for(lambda: len(fake_answerer.index.manifest.files) == 3 + 20)
    time.sleep(1.0)  # a second rebuild, if any, would have started by now
    assert watcher.rebuilds == rebuilds + 1
    assert len(maintainer.last_report.added) == 20


def test_changed_renamed_and_deleted_files_follow(watching, fake_answerer: Answerer) -> None:
    maintainer, _ = watching
    corpus = fake_answerer.settings.corpus_dir
    acme = corpus / "knative" / "knative-adopter-interview-acme.md"
    generation = fake_answerer.index.generation
    acme.write_text(acme.read_text() + "\n### Anything else?\n\nWe also juggle flaming torchwood.\n")
    wait_for(lambda: fake_answerer.index.generation > generation)
    assert maintainer.last_report.changed == ["knative/knative-adopter-interview-acme.md"]
    assert "knative/knative-adopter-interview-acme.md" in sources(fake_answerer, "flaming torchwood")

    generation = fake_answerer.index.generation
    acme.rename(corpus / "knative" / "knative-adopter-interview-acme2.md")
    wait_for(lambda: "knative/knative-adopter-interview-acme2.md" in fake_answerer.index.manifest.files)
    assert "knative/knative-adopter-interview-acme.md" not in fake_answerer.index.manifest.files
    # The renamed file's text is unchanged: its vectors are reused, nothing is re-embedded.
    assert maintainer.last_report.chunks_embedded == 0

    (corpus / "knative" / "knative-adopter-interview-acme2.md").unlink()
    wait_for(lambda: "knative/knative-adopter-interview-acme2.md" not in fake_answerer.index.manifest.files)
    assert all(c.source != "knative/knative-adopter-interview-acme2.md" for c in fake_answerer.index.chunks)


def test_file_that_fails_to_parse_is_named_and_the_rest_goes_live(watching, fake_answerer: Answerer,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    maintainer, _ = watching
    corpus = fake_answerer.settings.corpus_dir
    caplog.set_level(logging.WARNING)
    (corpus / "knative" / "knative-adopter-interview-broken.md").write_bytes(b"# Title\n\xff\xfe not utf-8\n")
    (corpus / "knative" / "knative-adopter-interview-good.md").write_text(
        interview("Goodco", "Goodco wanted hyperdrive lemonade."))
    wait_for(lambda: "knative/knative-adopter-interview-good.md" in fake_answerer.index.manifest.files)
    status = maintainer.status()
    assert "knative/knative-adopter-interview-broken.md" in status["skipped"]
    assert "UTF-8" in status["skipped"]["knative/knative-adopter-interview-broken.md"]
    assert "knative-adopter-interview-broken.md" in caplog.text
    assert sources(fake_answerer, "hyperdrive lemonade")[0] == "knative/knative-adopter-interview-good.md"


def test_changes_made_while_not_watching_are_caught_up_at_start(fake_answerer: Answerer) -> None:
    corpus = fake_answerer.settings.corpus_dir
    (corpus / "knative" / "knative-adopter-interview-late.md").write_text(interview("Late", "Late saw moonbeam pipelines."))
    maintainer = IndexMaintainer(fake_answerer, poll_seconds=0)
    watcher = start_watching(fake_answerer.settings, maintainer)
    try:
        assert watcher.wait_ready(10)
        assert maintainer.watcher is watcher
        assert "knative/knative-adopter-interview-late.md" in fake_answerer.index.manifest.files
    finally:
        watcher.stop()
    assert not watcher.status()["watching"]


def test_watching_loads_the_passage_model_ahead_of_the_first_rebuild(fake_answerer: Answerer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = threading.Event()
    monkeypatch.setattr(fake_answerer.embedder, "warm_up_documents", loaded.set, raising=False)
    watcher = start_watching(fake_answerer.settings, IndexMaintainer(fake_answerer, poll_seconds=0))
    try:
        assert loaded.wait(5), "the passage model was not loaded at start"
    finally:
        watcher.stop()


@pytest.mark.parametrize("how", ["delete-and-recreate", "move-away-and-copy-back"])
def test_watcher_survives_the_corpus_folder_being_replaced(watching, fake_answerer: Answerer, tmp_path: Path,
                                                           how: str) -> None:
    maintainer, watcher = watching
    corpus = fake_answerer.settings.corpus_dir
    saved = tmp_path / "saved"
    shutil.copytree(corpus, saved)
    if how == "delete-and-recreate":
        shutil.rmtree(corpus)
        wait_for(lambda: (maintainer.status()["watch"]["error"] or "").startswith("the corpus folder is missing"))
        assert maintainer.status()["watch"]["watching"]
        shutil.copytree(saved, corpus)
    else:
        corpus.rename(tmp_path / "old-corpus")
        shutil.copytree(saved, corpus)
    (corpus / "knative" / "knative-adopter-interview-phoenix.md").write_text(
        interview("Phoenix", "Phoenix rose from ashen sprockets."))
    wait_for(lambda: "knative/knative-adopter-interview-phoenix.md" in fake_answerer.index.manifest.files, 20)
    assert sources(fake_answerer, "ashen sprockets")[0] == "knative/knative-adopter-interview-phoenix.md"
    # The interviews that were there before are answerable again, not hidden as deleted.
    assert sources(fake_answerer, "scale to zero")
    assert not getattr(fake_answerer, "hidden_sources", ())
    assert maintainer.status()["watch"]["error"] is None


def test_a_dead_watcher_thread_is_reported_as_an_error(fake_answerer: Answerer, monkeypatch) -> None:
    import bot.serve.watch

    def broken(*args, **kwargs):
        raise RuntimeError("inotify limit reached")
        yield  # pragma: no cover - makes this a generator like watchfiles.watch

    monkeypatch.setattr(bot.serve.watch, "watch", broken)
    maintainer = IndexMaintainer(fake_answerer, poll_seconds=0)
    watcher = start_watching(fake_answerer.settings, maintainer)
    try:
        wait_for(lambda: not watcher.status()["watching"])
        assert "inotify limit reached" in maintainer.status()["watch"]["error"]
    finally:
        watcher.stop()


def test_a_corpus_folder_mounted_after_the_start_is_waited_for(fake_answerer: Answerer, tmp_path: Path) -> None:
    corpus = fake_answerer.settings.corpus_dir
    shutil.move(corpus, tmp_path / "volume")  # the volume is not mounted yet when the service starts
    maintainer = IndexMaintainer(fake_answerer, poll_seconds=0)
    watcher = start_watching(fake_answerer.settings, maintainer)
    try:
        assert watcher.wait_ready(5)  # a start waiting on the watcher goes on serving the index it has
        status = maintainer.status()["watch"]
        assert status["watching"] and status["error"].startswith("the corpus folder is missing")
        assert sources(fake_answerer, "scale to zero")  # the index it has is still served
        shutil.copytree(tmp_path / "volume", corpus)
        (corpus / "knative" / "knative-adopter-interview-mounted.md").write_text(
            interview("Mounted", "Mounted brought velvet turbines."))
        wait_for(lambda: "knative/knative-adopter-interview-mounted.md" in fake_answerer.index.manifest.files, 20)
        assert sources(fake_answerer, "velvet turbines")[0] == "knative/knative-adopter-interview-mounted.md"
        assert maintainer.status()["watch"]["error"] is None
    finally:
        watcher.stop()


@pytest.mark.parametrize("path, wanted", [
    ("/c/knative/a.md", True), ("/c/notes.txt", True), ("/c/newfolder", True),
    ("/c/.a.md.swp", False), ("/c/a.md~", False), ("/c/.git/index", False), ("/c/image.png", False),
    ("/c/README.md", False), ("/c/.hidden.md", False),
])
def test_filter_passes_interviews_and_folders_only(path: str, wanted: bool) -> None:
    assert InterviewFilter()(Change.modified, path) is wanted


def test_settings_read_watch_tuning_from_env() -> None:
    s = Settings.from_env({"QABOT_WATCH_QUIET_MS": "150", "QABOT_WATCH_MAX_WAIT_MS": "900", "QABOT_WATCH_POLLING": "1"})
    assert (s.watch_quiet_ms, s.watch_max_wait_ms, s.watch_polling) == (150, 900, True)


@pytest.mark.slow
def test_real_model_new_interview_answerable_within_five_seconds(real_settings: Settings, real_embedder,
                                                                 tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(real_settings.corpus_dir, corpus)
    shutil.copytree(real_settings.index_dir, tmp_path / "index")
    settings = real_settings.replace(corpus_dir=corpus, index_dir=tmp_path / "index")
    answerer = Answerer(settings, embedder=real_embedder)
    answerer.reload()
    maintainer = IndexMaintainer(answerer, poll_seconds=0)
    watcher = start_watching(settings, maintainer)
    try:
        assert watcher.wait_ready(20)
        assert maintainer.status()["watch"]["rebuilds"] == 0  # a copied, up-to-date index is not rebuilt
        path = corpus / "knative" / "knative-adopter-interview-fjordfish.md"
        path.write_text(interview("Fjordfish", "Fjordfish moved its salmon-farm telemetry to event-driven "
                                  "functions because idle sensors cost too much to keep warm."))
        took = wait_for(lambda: "knative/knative-adopter-interview-fjordfish.md" in answerer.index.manifest.files)
        answer = answerer.ask("Why did Fjordfish adopt Knative for salmon farm telemetry?")
        assert answer.answered
        assert answer.citations[0].source == "knative/knative-adopter-interview-fjordfish.md"
        assert took <= 5.0
        new_chunks = [c for c in answerer.index.chunks if c.source == "knative/knative-adopter-interview-fjordfish.md"]
        assert maintainer.last_report.chunks_embedded == len(new_chunks) > 0
    finally:
        watcher.stop()


def test_a_deleted_file_is_not_cited_even_before_the_rebuild_lands(watching, fake_answerer: Answerer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    maintainer, watcher = watching
    corpus = fake_answerer.settings.corpus_dir
    release = threading.Event()
    real_rebuild = maintainer.rebuild_now
    monkeypatch.setattr(maintainer, "rebuild_now", lambda full=False: release.wait(10) and real_rebuild(full))
    acme = "knative/knative-adopter-interview-acme.md"
    assert acme in sources(fake_answerer, "Acme Rockets launch hardware desert", 5)
    (corpus / acme).unlink()
    wait_for(lambda: acme in fake_answerer.hidden_sources)
    assert acme in fake_answerer.index.manifest.files  # still in the served generation (rebuild held back)...
    assert acme not in sources(fake_answerer, "Acme Rockets launch hardware desert", 5)  # ...but never returned
    answer = fake_answerer.ask("What does Acme Rockets build for desert logistics?")
    assert all(c.source != acme for c in answer.citations) and all(p.source != acme for p in answer.related)
    assert maintainer.status()["watch"]["hidden_until_rebuilt"] == [acme]
    release.set()
    wait_for(lambda: acme not in fake_answerer.index.manifest.files)
    wait_for(lambda: not fake_answerer.hidden_sources)


def test_a_file_deleted_then_restored_is_cited_again(watching, fake_answerer: Answerer) -> None:
    corpus = fake_answerer.settings.corpus_dir
    acme = corpus / "knative" / "knative-adopter-interview-acme.md"
    text = acme.read_text()
    acme.unlink()
    wait_for(lambda: "knative/knative-adopter-interview-acme.md" not in fake_answerer.index.manifest.files)
    acme.write_text(text)
    wait_for(lambda: "knative/knative-adopter-interview-acme.md" in fake_answerer.index.manifest.files)
    assert not fake_answerer.hidden_sources
    assert "knative/knative-adopter-interview-acme.md" in sources(fake_answerer, "Acme Rockets launch hardware desert", 5)
