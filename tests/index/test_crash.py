"""Crash safety: a `qabot index` killed with SIGKILL at any moment leaves the previous generation served,
the next build completes, old generations are pruned, and two builds at once cannot corrupt the index."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.index import store

from bot.index import generations
from bot.config import Settings
from tests.fakes import FAKE_MODEL, FakeEmbedder
from bot.index.build import build
from tests.conftest import ROOT, SHARED_CORPUS

# Runs `qabot index` in a child that SIGKILLs itself when the build reaches the named step.
CHILD = r"""
import os, signal, sys
import numpy as np
import bot.index.generations, bot.index.store, tests.fakes
step, nth = os.environ["CRASH_AT"], int(os.environ.get("CRASH_NTH", "1"))
bot.index.store.ANN_THRESHOLD = int(os.environ.get("CRASH_ANN_THRESHOLD", bot.index.store.ANN_THRESHOLD))
seen = {}
def die_at(name, fn):
    def wrapper(*a, **k):
        seen[name] = seen.get(name, 0) + 1
        if name == step and seen[name] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*a, **k)
    return wrapper
tests.fakes.FakeEmbedder.embed_documents = die_at("embed", tests.fakes.FakeEmbedder.embed_documents)
np.save = die_at("save", np.save)
os.replace = die_at("replace", os.replace)
bot.index.generations.fsync = die_at("fsync", bot.index.generations.fsync)
bot.index.generations.prune = die_at("prune", bot.index.generations.prune)
from bot.cli import main
sys.argv = ["qabot", "index"] + sys.argv[1:]
main()
"""

# (step, nth call): before embedding; while writing vectors; after the files, before they are synced;
# after the generation folder is renamed into place but before CURRENT moves; after CURRENT moved.
STEPS = [("embed", 1), ("save", 1), ("fsync", 2), ("replace", 1), ("replace", 2), ("prune", 1)]


def env_for(corpus: Path, index: Path) -> dict[str, str]:
    """A child environment that builds with the fake embedder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_"))}
    env.update(QABOT_MODEL=FAKE_MODEL, QABOT_CORPUS_DIR=str(corpus), QABOT_INDEX_DIR=str(index),
               PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return env


def run_index(corpus: Path, index: Path, *args: str, crash_at: tuple[str, int] | None = None,
              timeout: float = 60, ann_threshold: int | None = None) -> subprocess.CompletedProcess:
    """`python -m bot index` (optionally killing itself at a step, optionally with a low ANN threshold)."""
    env = env_for(corpus, index)
    if crash_at or ann_threshold:
        env.update(CRASH_AT=crash_at[0] if crash_at else "never", CRASH_NTH=str(crash_at[1] if crash_at else 1))
        if ann_threshold:
            env["CRASH_ANN_THRESHOLD"] = str(ann_threshold)
        cmd = [sys.executable, "-c", CHILD, *args]
    else:
        cmd = [sys.executable, "-m", "bot", "index", *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def chunk_ids(index_dir: Path) -> list[str]:
    """The chunk ids of the current generation, verified."""
    return [c.chunk_id for c in store.load(index_dir, "fake").chunks]


def change_corpus(corpus: Path, tag: str) -> None:
    """Add one interview and edit another so the next build has work to do."""
    (corpus / "knative" / f"knative-adopter-interview-{tag}.md").write_text(
        f"# Knative Adopter Interview - {tag}\n\n## Motivation\n\n### Why?\n\nBecause of {tag} reasons.\n")
    notes = corpus / "widgetd" / "notes.txt"
    notes.write_text(notes.read_text() + f"\nAlso {tag}.\n")


@pytest.mark.parametrize("step", STEPS, ids=[f"{s}-{n}" for s, n in STEPS])
def test_sigkill_at_each_step_keeps_previous_generation_and_next_build_completes(
        step: tuple[str, int], fake_settings: Settings, tmp_path: Path) -> None:
    corpus, index = fake_settings.corpus_dir, fake_settings.index_dir
    first = run_index(corpus, index)
    assert first.returncode == 0, first.stderr
    before_gen, before_ids = generations.current_generation(index), chunk_ids(index)
    change_corpus(corpus, "crashco")

    crashed = run_index(corpus, index, crash_at=step)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    # Whatever the moment, CURRENT names a complete generation that loads and verifies.
    after_gen = generations.current_generation(index)
    loaded = store.load(index, "fake")
    if after_gen == before_gen:
        assert [c.chunk_id for c in loaded.chunks] == before_ids
    else:  # killed after the switch: the new generation is complete
        assert step in {("replace", 2), ("prune", 1)}
        assert any(c.source.endswith("crashco.md") for c in loaded.chunks)

    done = run_index(corpus, index)
    assert done.returncode == 0, done.stderr
    clean = tmp_path / "clean"
    build(corpus, clean, FakeEmbedder())
    assert chunk_ids(index) == chunk_ids(clean)
    gens = sorted(p.name for p in index.glob("gen-*"))
    assert len(gens) <= generations.KEEP_GENERATIONS and f"gen-{generations.current_generation(index):06d}" in gens
    assert not list(index.glob(".tmp-*")), "temp folders of the killed build are cleaned up"


def test_sigkill_at_random_moments_of_a_bigger_build(tmp_path: Path) -> None:
    from bench.gen_corpus import generate

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    generate(150, corpus, SHARED_CORPUS, seed=3)
    assert run_index(corpus, index).returncode == 0
    reference = chunk_ids(index)
    rng = random.Random(11)
    env = env_for(corpus, index)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "bot", "index", "--full"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert chunk_ids(index) == reference  # a --full build of the same files has the same ids
    assert run_index(corpus, index).returncode == 0
    assert chunk_ids(index) == reference


@pytest.mark.parametrize("step", [("save", 2), ("replace", 1)], ids=["writing-ivf-lists", "before-switch"])
def test_sigkill_during_an_approximate_index_build(step: tuple[str, int], tmp_path: Path) -> None:
    from bench.gen_corpus import generate

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    generate(60, corpus, SHARED_CORPUS, seed=4)
    assert run_index(corpus, index, ann_threshold=200).returncode == 0
    assert store.read_manifest(index).ann == "ivf-sq8"
    before = chunk_ids(index)
    change_corpus_flat(corpus)
    assert run_index(corpus, index, crash_at=step, ann_threshold=200).returncode == -signal.SIGKILL
    assert chunk_ids(index) == before
    assert run_index(corpus, index, ann_threshold=200).returncode == 0
    loaded = store.load(index, "fake")
    assert loaded.manifest.ann == "ivf-sq8" and any(c.source.endswith("crashco.md") for c in loaded.chunks)


def change_corpus_flat(corpus: Path) -> None:
    """Add one interview to a generated corpus."""
    (corpus / "knative" / "knative-adopter-interview-crashco.md").write_text(
        "# Knative Adopter Interview - crashco\n\n## Motivation\n\n### Why?\n\nBecause of crashco reasons.\n")


def test_two_builds_at_once_do_not_corrupt(fake_settings: Settings) -> None:
    corpus, index = fake_settings.corpus_dir, fake_settings.index_dir
    assert run_index(corpus, index).returncode == 0
    start = generations.current_generation(index)
    procs = [subprocess.Popen([sys.executable, "-m", "bot", "index", "--full"], env=env_for(corpus, index),
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert generations.current_generation(index) == start + 2  # one after the other, never interleaved
    store.load(index, "fake")  # checksums verify


def test_second_builder_that_will_not_wait_gets_a_clear_message(tmp_path: Path) -> None:
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with generations.build_lock(tmp_path):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(5)
        with pytest.raises(store.StoreError, match="another build is running"):
            with generations.build_lock(tmp_path, wait=False):
                pass
    finally:
        release.set()
        t.join()
