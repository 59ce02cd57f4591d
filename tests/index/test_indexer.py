"""Incremental builds with the fake embedder: only new/changed files embedded, deletions drop out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.index import store
from tests.fakes import FakeEmbedder
from bot.index.build import build, is_stale


def _sources(index_dir: Path) -> set[str]:
    return {c.source for c in store.load(index_dir, "fake").chunks}


def test_first_build_then_no_change_embeds_nothing(fake_settings) -> None:
    emb = FakeEmbedder()
    first = build(fake_settings.corpus_dir, fake_settings.index_dir, emb)
    assert len(first.added) == 3 and first.chunks_embedded == first.chunks_total > 0
    calls = emb.calls
    second = build(fake_settings.corpus_dir, fake_settings.index_dir, emb)
    assert second.chunks_embedded == 0 and emb.calls == calls
    assert len(second.unchanged) == 3 and second.generation == first.generation and not second.wrote
    assert not is_stale(fake_settings.corpus_dir, fake_settings.index_dir, "fake")


def test_adding_changing_and_deleting_files(fake_settings) -> None:
    emb = FakeEmbedder()
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    base = build(corpus, index_dir, emb)
    new = corpus / "extra" / "extra-adopter-interview-initech.md"
    new.parent.mkdir()
    new.write_text("# Extra Adopter Interview - Initech\n\n## Usage\n\n### Why?\nTPS reports.\n\n### How?\nSlowly.\n")
    assert is_stale(corpus, index_dir, "fake")
    added = build(corpus, index_dir, emb)
    assert added.added == ["extra/extra-adopter-interview-initech.md"]
    assert added.chunks_embedded == 2 and added.chunks_total == base.chunks_total + 2

    acme = corpus / "knative" / "knative-adopter-interview-acme.md"
    acme.write_text(acme.read_text().replace("Since 2021", "Since 2020"))
    changed = build(corpus, index_dir, emb)
    assert changed.changed == ["knative/knative-adopter-interview-acme.md"]
    assert changed.chunks_embedded == 1  # only the edited answer; the file's other chunks are reused

    shutil.rmtree(new.parent)
    removed = build(corpus, index_dir, emb)
    assert removed.removed == ["extra/extra-adopter-interview-initech.md"]
    assert "extra/extra-adopter-interview-initech.md" not in _sources(index_dir)
    assert removed.chunks_total == base.chunks_total


def test_full_rebuild_embeds_everything_with_same_ids(fake_settings) -> None:
    emb = FakeEmbedder()
    build(fake_settings.corpus_dir, fake_settings.index_dir, emb)
    ids = [c.chunk_id for c in store.load(fake_settings.index_dir, "fake").chunks]
    report = build(fake_settings.corpus_dir, fake_settings.index_dir, emb, full=True)
    assert report.chunks_embedded == report.chunks_total == len(ids)
    assert [c.chunk_id for c in store.load(fake_settings.index_dir, "fake").chunks] == ids


def test_bad_files_are_skipped_by_name_and_the_rest_indexed(fake_settings) -> None:
    corpus = fake_settings.corpus_dir
    (corpus / "binary.md").write_bytes(b"\x00\x01\x02garbage")
    (corpus / "latin1.md").write_bytes(b"# T\n\ncaf\xe9\n")
    (corpus / "empty.txt").write_text("")
    skipped: list[str] = []
    report = build(corpus, fake_settings.index_dir, FakeEmbedder(), on_skip=lambda s, why: skipped.append(s))
    assert set(report.skipped) == {"binary.md", "latin1.md", "empty.txt"} == set(skipped)
    assert "binary" in report.skipped["binary.md"] and "UTF-8" in report.skipped["latin1.md"]
    assert len(report.added) == 3
    assert store.read_manifest(fake_settings.index_dir).skipped == report.skipped


def test_missing_corpus_is_a_clear_error(tmp_path: Path) -> None:
    from bot.ingest.files import CorpusError

    with pytest.raises(CorpusError, match="does not exist"):
        build(tmp_path / "nope", tmp_path / "index", FakeEmbedder())
