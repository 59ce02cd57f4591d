"""Store: generations switch atomically, old ones pruned, model mismatch and damage refused."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from bot.index import store

from bot.index import generations
from tests.fakes import FakeEmbedder
from bot.index.build import build


def test_generations_switch_and_prune(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    emb = FakeEmbedder()
    gens = []
    for i in range(4):
        (corpus / f"n{i}.md").write_text(f"# N Adopter Interview - N{i}\n\n## S\n\n### Q?\nAnswer {i}.\n")
        gens.append(build(corpus, index_dir, emb).generation)
    assert gens == [1, 2, 3, 4]
    assert generations.current_generation(index_dir) == 4
    assert sorted(p.name for p in index_dir.glob("gen-*")) == ["gen-000003", "gen-000004"]
    loaded = store.load(index_dir, "fake")
    assert loaded.generation == 4 and len(loaded.chunks) == loaded.faiss_index.ntotal


def _prune_threads_done() -> None:
    for thread in threading.enumerate():
        if thread.name == "qabot-prune":
            thread.join(10)


def test_old_generations_are_deleted_in_the_background_and_leftovers_of_a_killed_prune_too(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    emb = FakeEmbedder()
    build(corpus, index_dir, emb)
    leftover = index_dir / f"{generations.TRASH}gen-000000-999999"  # a prune killed while deleting
    (leftover / "sub").mkdir(parents=True)
    (leftover / "sub" / "vectors.npy").write_bytes(b"x" * 1000)
    for i in range(3):
        (corpus / f"n{i}.md").write_text(f"# N Adopter Interview - N{i}\n\n## S\n\n### Q?\nAnswer {i}.\n")
        build(corpus, index_dir, emb)
        # The old generation is out of the way as soon as the build returns.
        assert len(list(index_dir.glob("gen-*"))) == 2
    _prune_threads_done()
    assert sorted(p.name for p in index_dir.glob("gen-*")) == ["gen-000003", "gen-000004"]
    assert not list(index_dir.glob(f"{generations.TRASH}*"))


def test_model_mismatch_is_refused_with_rebuild_hint(fake_settings) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    with pytest.raises(store.StoreError, match=r"built with model 'fake'.*rebuild it with `qabot index --full`"):
        store.load(fake_settings.index_dir, "all-MiniLM-L6-v2")


def test_damaged_file_is_named(fake_settings) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    gen = fake_settings.index_dir / "gen-000001"
    with (gen / "passages.bin").open("ab") as f:
        f.write(b"{}\n")
    with pytest.raises(store.StoreError, match=r"passages\.bin is damaged"):
        store.load(fake_settings.index_dir, "fake")


def test_missing_index_says_how_to_build(tmp_path) -> None:
    with pytest.raises(store.IndexNotFound, match="qabot index"):
        store.load(tmp_path / "index", "fake")


def test_search_returns_inner_products_best_first(fake_answerer) -> None:
    index = fake_answerer.index
    q = np.asarray(index.vectors[0])
    hits = index.search(q, 3)
    assert hits[0][0] == 0 and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_build_lock_refuses_a_second_builder(tmp_path) -> None:
    with generations.build_lock(tmp_path):
        with pytest.raises(store.StoreError, match="another build is running"):
            with generations.build_lock(tmp_path, wait=False):
                pass


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_an_incremental_build_copies_unchanged_vectors_bit_for_bit(fake_settings, monkeypatch: pytest.MonkeyPatch,
                                                                   kernel_copy: bool) -> None:
    if not kernel_copy:  # another file system or an old kernel: read and written instead
        monkeypatch.setattr(os, "copy_file_range", lambda *a: (_ for _ in ()).throw(OSError(18, "EXDEV")))
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    build(corpus, index_dir, FakeEmbedder())
    before = store.load(index_dir, "fake")
    old = {c.chunk_id: np.array(before.vectors[i]) for i, c in enumerate(before.chunks)}
    (corpus / "a-first.md").write_text("# A Adopter Interview - A\n\n## S\n\n### Q?\nAnswer one.\n")
    report = build(corpus, index_dir, FakeEmbedder())
    assert report.added == ["a-first.md"] and report.chunks_embedded == 1
    after = store.load(index_dir, "fake")
    for i, c in enumerate(after.chunks):
        if c.source != "a-first.md":
            assert np.array_equal(after.vectors[i], old[c.chunk_id]), c.chunk_id
    emb = FakeEmbedder()
    new = [i for i, c in enumerate(after.chunks) if c.source == "a-first.md"]
    assert np.allclose(after.vectors[new[0]], emb.embed_documents([c.embed_text for c in
                                                                   _chunks_of(corpus, "a-first.md")])[0])


def _chunks_of(corpus, source: str) -> list:
    from bot.ingest.chunking import chunk_interview
    from bot.ingest.parse import parse_file

    return chunk_interview(parse_file(corpus / source, corpus))
