"""Scale: the ANN switch above a threshold, incremental builds that copy unchanged files without parsing
or re-hashing them, and reading generations written by the previous store format."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from bench.gen_corpus import generate
from bot.index import ann
from bot.index import build as indexer
from bot.index import store
from bot.index import generations
from tests.fakes import FakeEmbedder
from bot.index.build import build
from tests.conftest import SHARED_CORPUS


def age(corpus: Path, seconds: float = 3600) -> None:
    """Make every file's mtime older, as files are in real life between builds."""
    old = os.path.getmtime(corpus) - seconds
    for p in corpus.rglob("*"):
        os.utime(p, (old, old))


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch to the approximate index from 200 passages on."""
    monkeypatch.setattr(store, "ANN_THRESHOLD", 200)


def test_above_threshold_the_index_is_ivf_and_matches_exact_search(small_threshold, tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    generate(60, corpus, SHARED_CORPUS, seed=2)
    emb = FakeEmbedder(dim=64)
    build(corpus, index_dir, emb)
    loaded = store.load(index_dir, "fake")
    assert loaded.manifest.ann == "ivf-sq8" and len(loaded.chunks) >= 200
    assert (loaded.path / store.LISTS).exists()
    vectors = np.asarray(loaded.vectors)
    rng = np.random.default_rng(0)
    overlap = []
    for row in rng.choice(len(vectors), 40, replace=False):
        q = emb.embed_query(loaded.chunks[row].text.split(".")[0])
        exact = set(np.argsort(-(vectors @ q))[:10].tolist())
        got = loaded.search(q, 10)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        assert all(abs(s - float(vectors[r] @ q)) < 1e-4 for r, s in got)  # scores are exact
        overlap.append(len(exact & {r for r, _ in got}) / 10)
    assert np.mean(overlap) >= 0.9  # hashed 64-d test vectors; recall on real-size indexes: bench/build_bench.py


def test_large_index_ranks_from_ivf_candidates_like_a_full_scan(small_threshold, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.search import retriever as retrieval
    from bot.search import state
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    generate(60, corpus, SHARED_CORPUS, seed=3)
    emb = FakeEmbedder(dim=64)
    build(corpus, index_dir, emb)
    loaded = store.load(index_dir, "fake")
    exact = retrieval.Retriever(loaded, emb)
    monkeypatch.setattr(state, "DENSE_CANDIDATES", 60)
    monkeypatch.setattr(state, "DENSE_SAMPLE", 200)
    approx = retrieval.Retriever(store.load(index_dir, "fake"), emb)
    assert approx._dense_sample is not None and exact._dense_sample is None
    rng = np.random.default_rng(1)
    agree = []
    for row in rng.choice(len(loaded.chunks), 30, replace=False):
        query = loaded.chunks[row].text.split(".")[0]
        qv = emb.embed_query(query)
        dense, z = approx._dense(qv)
        full = np.asarray(loaded.vectors) @ qv
        top = np.argsort(-dense)[:5]
        assert np.abs(dense[top] - full[top]).max() < 0.05  # 8-bit codes: close to the exact cosines
        assert z.max() <= state.Z_CAP and np.isfinite(z).all()
        got = [h.row for h in approx.retrieve(query, k=5).hits]
        want = [h.row for h in exact.retrieve(query, k=5).hits]
        agree.append(len(set(got) & set(want)) / 5)
    assert np.mean(agree) >= 0.8


def test_incremental_ivf_build_reuses_training_and_lists(small_threshold, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    generate(60, corpus, SHARED_CORPUS, seed=2)
    build(corpus, index_dir, FakeEmbedder(dim=64))
    before = store.load(index_dir, "fake")
    trained = []
    real_train = ann._train_ivf
    monkeypatch.setattr(ann, "_train_ivf", lambda *a: trained.append(1) or real_train(*a))
    (corpus / "knative" / "knative-adopter-interview-newco.md").write_text(
        "# Knative Adopter Interview - Newco\n\n## Motivation\n\n### Why?\n\nNewco liked zebra functions.\n")
    report = build(corpus, index_dir, FakeEmbedder(dim=64))
    after = store.load(index_dir, "fake")
    assert report.added and not trained, "the previous generation's IVF training is reused"
    old_lists = np.load(before.path / store.LISTS)
    new_lists = np.load(after.path / store.LISTS)
    old_rows = {c.chunk_id: i for i, c in enumerate(before.chunks)}
    for i, c in enumerate(after.chunks):
        if c.chunk_id in old_rows:
            assert new_lists[i] == old_lists[old_rows[c.chunk_id]]
    assert after.search(FakeEmbedder(dim=64).embed_query("Newco zebra functions"), 1)[0][0] in {
        i for i, c in enumerate(after.chunks) if c.source.endswith("newco.md")}


def test_unchanged_files_are_neither_parsed_nor_hashed(fake_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    age(corpus)
    build(corpus, index_dir, FakeEmbedder())
    parsed, hashed = [], []
    real_parse, real_hash = indexer.parse_file, indexer.file_sha256
    monkeypatch.setattr(indexer, "parse_file", lambda p, c, *a, **k: parsed.append(p.name) or real_parse(p, c, *a, **k))
    monkeypatch.setattr(indexer, "file_sha256", lambda p, *a, **k: hashed.append(p.name) or real_hash(p, *a, **k))
    new = corpus / "knative" / "knative-adopter-interview-newco.md"
    new.write_text("# Knative Adopter Interview - Newco\n\n## Motivation\n\n### Why?\n\nBecause.\n")
    report = build(corpus, index_dir, FakeEmbedder())
    assert parsed == hashed == [new.name]
    assert len(report.unchanged) == 3
    loaded = store.load(index_dir, "fake")
    by_source = {s: e for s, e in loaded.manifest.files.items()}
    for source, entry in by_source.items():  # spans recorded in the manifest locate each file's rows
        assert {c.source for c in loaded.chunks[entry.row:entry.row + entry.chunks]} == {source}


def test_a_changed_file_with_an_unchanged_size_and_a_fresh_mtime_is_still_noticed(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    for p in corpus.rglob("*.md"):
        os.utime(p)  # saved just now: too close to the build to trust their mtime later
    build(corpus, index_dir, FakeEmbedder())
    acme = corpus / "knative" / "knative-adopter-interview-acme.md"
    st = acme.stat()
    acme.write_text(acme.read_text().replace("Acme Rockets builds", "Acme Rockets mends "))
    os.utime(acme, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    report = build(corpus, index_dir, FakeEmbedder())
    assert report.changed == ["knative/knative-adopter-interview-acme.md"]


def test_a_generation_of_an_older_format_is_refused_and_rebuilt(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    emb = FakeEmbedder()
    build(corpus, index_dir, emb)
    gen = index_dir / f"gen-{generations.current_generation(index_dir):06d}"
    # Rewrite it as format 1 wrote it: no spans, no keys file, sha256 checksums.
    manifest = json.loads((gen / store.MANIFEST).read_text())
    for entry in manifest["files"].values():
        for key in ("row", "size", "mtime_ns"):
            entry.pop(key)
    (gen / store.KEYS).unlink()
    manifest.update(format_version=1, digest="", ann="flat")
    manifest["checksums"] = {n: hashlib.sha256((gen / n).read_bytes()).hexdigest()
                             for n in (store.VECTORS, store.FAISS_FILE)}
    manifest.pop("ann")
    (gen / store.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(store.StoreError, match=r"has format 1, this qabot reads format \d+; rebuild it with "
                                               r"`qabot index --full`"):
        store.load(index_dir, "fake")
    assert indexer.is_stale(corpus, index_dir, "fake")
    report = build(corpus, index_dir, emb)  # a plain build makes a current generation from scratch
    assert report.chunks_embedded == report.chunks_total > 0
    assert store.read_manifest(index_dir).format_version == store.FORMAT_VERSION
    assert len(store.load(index_dir, "fake").chunks) == report.chunks_total
