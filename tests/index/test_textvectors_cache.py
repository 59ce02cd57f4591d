"""Sentence and heading vectors live inside each generation: written before the switch, reused by the next build."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.fakes import FakeEmbedder
from bot.index import store, textvectors
from bot.index.build import build


def test_round_trip_keeps_keys_ending_in_nul(tmp_path: Path) -> None:
    keys = [b"\x01" * 19 + b"\x00", b"\x00" * 20, b"abcdefghijklmnopqrst"]
    cache = {k: np.full(4, i, dtype=np.float32) for i, k in enumerate(keys)}
    path = tmp_path / "cache.npz"
    textvectors.save_vectors(path, cache, 4)
    loaded = textvectors.load_vectors(path, 4)
    assert set(loaded) == set(keys)
    assert all(np.array_equal(loaded[k], cache[k]) for k in keys)


def _generation(index_dir: Path) -> Path:
    return store.load(index_dir, "fake").path


def test_vectors_are_written_inside_the_generation_and_checksummed(fake_settings) -> None:
    index_dir = fake_settings.index_dir
    (index_dir).mkdir(parents=True, exist_ok=True)
    legacy = index_dir / "text-vectors-fake.npz"  # format 4 kept them beside the generations
    legacy.write_bytes(b"old")
    build(fake_settings.corpus_dir, index_dir, FakeEmbedder())
    gen = _generation(index_dir)
    assert (gen / textvectors.FILE).is_file() and not legacy.exists()
    assert not list(index_dir.glob("*.npz"))
    assert textvectors.FILE in store.read_manifest(index_dir).checksums
    index = store.load(index_dir, "fake")
    embedder = FakeEmbedder()
    aux = textvectors.text_vectors(gen, index.chunks, embedder)
    assert embedder.calls == 0  # everything came from the generation
    assert len(aux.heading_vectors) == len(index.chunks) and len(aux.sentence_owner) == len(aux.sentence_vectors)
    sentences, _, headings = textvectors.aux_texts(index.chunks)
    fresh = FakeEmbedder()
    assert np.allclose(aux.sentence_vectors, fresh.embed_documents(sentences), atol=1e-6)
    assert np.allclose(aux.heading_vectors, fresh.embed_documents(headings), atol=1e-6)


def test_an_incremental_build_embeds_only_new_sentences_and_keeps_the_old_generation_intact(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    build(corpus, index_dir, FakeEmbedder())
    old_gen = _generation(index_dir)
    old_bytes = (old_gen / textvectors.FILE).read_bytes()
    text = "# A Adopter Interview - A\n\n## S\n\n### Why a brand new question?\nA wholly new answer sentence here.\n"
    (corpus / "a-new.md").write_text(text)
    embedder = FakeEmbedder()
    report = build(corpus, index_dir, embedder)
    assert report.added == ["a-new.md"] and report.chunks_embedded == 1
    assert report.sentences_to_embed == embedder.calls - 1 <= 3  # its sentences and heading, nothing else
    new_gen = _generation(index_dir)
    assert new_gen != old_gen and (old_gen / textvectors.FILE).read_bytes() == old_bytes
    index = store.load(index_dir, "fake")
    before = embedder.calls
    textvectors.text_vectors(new_gen, index.chunks, embedder)
    assert embedder.calls == before  # the new generation holds the old files' vectors too
    # Removing the file drops its texts from the next generation's file.
    (corpus / "a-new.md").unlink()
    build(corpus, index_dir, FakeEmbedder())
    latest = textvectors.load_vectors(_generation(index_dir) / textvectors.FILE, FakeEmbedder().dim)
    assert textvectors.text_key("Why a brand new question?") not in latest


def test_a_damaged_text_vector_file_is_remade_by_the_next_build(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    build(corpus, index_dir, FakeEmbedder())
    (_generation(index_dir) / textvectors.FILE).write_bytes(b"garbage")
    report = build(corpus, index_dir, FakeEmbedder())
    assert report.repaired and textvectors.FILE in report.repaired and report.chunks_embedded == 0
    assert report.sentences_to_embed > 0
    store.load(index_dir, "fake")  # verifies every checksum, the new file's too
