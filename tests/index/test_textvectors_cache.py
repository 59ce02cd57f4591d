"""The sentence-vector cache keeps every key, including digests that end in NUL bytes."""

from __future__ import annotations

import numpy as np

from bot.index import textvectors
def test_cache_round_trip_keeps_keys_ending_in_nul(tmp_path) -> None:
    keys = [b"\x01" * 19 + b"\x00", b"\x00" * 20, b"abcdefghijklmnopqrst"]
    cache = {k: np.full(4, i, dtype=np.float32) for i, k in enumerate(keys)}
    path = tmp_path / "cache.npz"
    textvectors._save(path, cache, 4)
    loaded = textvectors._load(path, 4)
    assert set(loaded) == set(keys)
    assert all(np.array_equal(loaded[k], cache[k]) for k in keys)


def test_second_warm_embeds_nothing(fake_settings) -> None:
    from bot.embed.embedders import FakeEmbedder
    from bot.index.build import build

    embedder = FakeEmbedder()
    build(fake_settings.corpus_dir, fake_settings.index_dir, embedder)
    calls = embedder.calls
    assert textvectors.warm(fake_settings.index_dir, embedder) == 0
    assert embedder.calls == calls
