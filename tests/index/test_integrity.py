"""Integrity: damaged index files are detected at load by name; a running service keeps the old generation."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from bot.index import store

from bot.index import generations
from bot.answer.answerer import Answerer
from bot.cli import main
from bot.config import Settings
from tests.fakes import FAKE_MODEL, FakeEmbedder
from bot.index.build import build
from bot.serve.maintainer import IndexMaintainer


def truncate(path: Path) -> None:
    """Cut a file in half."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_byte(path: Path) -> None:
    """Change one byte in the middle of a file (same size)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def edit_manifest(path: Path) -> None:
    """Change what the manifest says about a source file, keeping it valid JSON."""
    d = json.loads(path.read_text())
    first = sorted(d["files"])[0]
    d["files"][first]["adopter"] = "Somebody Else"
    path.write_text(json.dumps(d))


DAMAGE: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "truncated vectors": (store.VECTORS, truncate, "damaged"),
    "truncated faiss": (store.FAISS_FILE, truncate, "damaged"),
    "edited passages": ("passages.bin", flip_byte, "damaged"),
    "edited text vectors": (store.TEXT_VECTORS, flip_byte, "damaged"),
    "edited vectors": (store.VECTORS, flip_byte, "damaged"),
    "deleted faiss": (store.FAISS_FILE, lambda p: p.unlink(), "missing"),
    "edited manifest": (store.MANIFEST, edit_manifest, "damaged"),
    "garbage manifest": (store.MANIFEST, lambda p: p.write_text("{not json"), "damaged"),
}


def gen_dir(index_dir: Path) -> Path:
    """The folder of the current generation."""
    return index_dir / f"gen-{generations.current_generation(index_dir):06d}"


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_damage_is_detected_at_load_naming_the_file(name: str, fake_settings: Settings) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    filename, damage, word = DAMAGE[name]
    target = gen_dir(fake_settings.index_dir) / filename
    damage(target)
    with pytest.raises(store.StoreError) as err:
        store.load(fake_settings.index_dir, "fake")
    message = str(err.value)
    assert str(target) in message and word in message and "rebuild" in message


def test_damaged_current_pointer_is_named(fake_settings: Settings) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    (fake_settings.index_dir / generations.CURRENT).write_text("gen-banana\n")
    with pytest.raises(store.StoreError, match=r"CURRENT is damaged.*rebuild"):
        store.load(fake_settings.index_dir, "fake")


def test_cli_reports_damage_and_how_to_fix_it(fake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    truncate(gen_dir(fake_settings.index_dir) / store.VECTORS)
    for key, value in {"QABOT_MODEL": FAKE_MODEL, "QABOT_CORPUS_DIR": str(fake_settings.corpus_dir),
                       "QABOT_INDEX_DIR": str(fake_settings.index_dir)}.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["search", "scale to zero"])
    assert result.exit_code == 1
    assert "vectors.npy is damaged" in result.output and "qabot index --full" in result.output
    # The next build does not reuse the damaged generation; it rebuilds from scratch and loads again.
    fixed = CliRunner().invoke(main, ["index"])
    assert fixed.exit_code == 0, fixed.output
    assert store.load(fake_settings.index_dir, "fake").chunks


def write_bad_generation(settings: Settings, corpus_tag: str) -> int:
    """Build a new generation (with one more interview) and damage it; return its number."""
    (settings.corpus_dir / "knative" / f"knative-adopter-interview-{corpus_tag}.md").write_text(
        f"# Knative Adopter Interview - {corpus_tag}\n\n## Motivation\n\n### Why?\n\nBecause {corpus_tag} said so.\n")
    report = build(settings.corpus_dir, settings.index_dir, FakeEmbedder())
    truncate(gen_dir(settings.index_dir) / store.FAISS_FILE)
    return report.generation


def test_running_service_keeps_serving_the_old_generation_and_reports_the_failure(fake_answerer: Answerer) -> None:
    settings = fake_answerer.settings
    maintainer = IndexMaintainer(fake_answerer, poll_seconds=0.05)
    old = fake_answerer.index.generation
    before = [p.chunk_id for p in fake_answerer.search("scale to zero", 3)]
    bad = write_bad_generation(settings, "brokenco")
    maintainer.start()
    try:
        deadline = time.time() + 10
        while maintainer.status()["bad_generation"] != bad and time.time() < deadline:
            time.sleep(0.05)
        status = maintainer.status()
        assert status["bad_generation"] == bad
        assert "index.faiss is damaged" in status["last_error"]
        assert status["generation"] == old and fake_answerer.index.generation == old
        assert [p.chunk_id for p in fake_answerer.search("scale to zero", 3)] == before
        # A good generation written afterwards is picked up and clears the error.
        good = build(settings.corpus_dir, settings.index_dir, FakeEmbedder(), full=True).generation
        # The maintainer clears the error just after the swap: wait for both, not only the swap.
        while ((fake_answerer.index.generation != good or maintainer.status()["last_error"] is not None)
               and time.time() < deadline):
            time.sleep(0.05)
        assert fake_answerer.index.generation == good
        assert maintainer.status()["last_error"] is None and maintainer.status()["bad_generation"] is None
    finally:
        maintainer.stop()


def test_bad_generation_is_not_rechecked_on_every_poll(fake_answerer: Answerer, monkeypatch: pytest.MonkeyPatch) -> None:
    maintainer = IndexMaintainer(fake_answerer, poll_seconds=0)
    write_bad_generation(fake_answerer.settings, "brokenco")
    loads = []
    real_load = store.load
    monkeypatch.setattr(store, "load", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    assert maintainer.try_reload() is False
    assert maintainer.try_reload() is False
    assert len(loads) == 1


@pytest.mark.slow
def test_real_index_truncated_faiss_file_is_refused(real_settings: Settings, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(real_settings.index_dir, index_dir)
    store.load(index_dir, real_settings.model_name)  # the copy is fine
    target = gen_dir(index_dir) / store.FAISS_FILE
    truncate(target)
    with pytest.raises(store.StoreError, match=rf"{target}.*damaged.*rebuild"):
        store.load(index_dir, real_settings.model_name)
