"""Shared fixtures: isolated environment, a tiny fixture corpus indexed with the fake embedder,
and (session-scoped, built once) a real-model index of ../shared/corpus."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.config import Settings, get_settings
from tests.fakes import FAKE_MODEL

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_CORPUS = ROOT / "tests" / "fixtures" / "corpus"
SHARED = Path(os.environ.get("QABOT_SHARED_DIR", ROOT.parent / "shared"))
SHARED_CORPUS = SHARED / "corpus"
DEV_SET = SHARED / "eval" / "dev.jsonl"


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX query-encoder folder per test session (an export takes ~10 s), shared by every real index."""
    return tmp_path_factory.mktemp("encoder")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, encoder_dir: Path) -> None:
    """No test sees the developer's QABOT_*/SLACK_* variables or writes outside tmp_path."""
    for name in list(os.environ):
        if name.startswith(("QABOT_", "SLACK_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("QABOT_ENCODER_DIR", str(encoder_dir))
    monkeypatch.setenv("QABOT_STATE_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def fixture_corpus(tmp_path: Path) -> Path:
    """A writable copy of the small fixture corpus."""
    dest = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, dest)
    return dest


@pytest.fixture
def fake_settings(tmp_path: Path, fixture_corpus: Path) -> Settings:
    """Settings over the fixture corpus with the fake embedder and an empty index folder."""
    return Settings(corpus_dir=fixture_corpus, index_dir=tmp_path / "index", state_dir=tmp_path / "var",
                    model_name=FAKE_MODEL)


@pytest.fixture
def fake_answerer(fake_settings: Settings):
    """An Answerer over the fixture corpus, indexed with the fake embedder."""
    from bot.answer.answerer import Answerer
    from tests.fakes import FakeEmbedder
    from bot.index.build import build

    embedder = FakeEmbedder()
    build(fake_settings.corpus_dir, fake_settings.index_dir, embedder)
    answerer = Answerer(fake_settings, embedder=embedder)
    answerer.reload()
    return answerer


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    """../shared/corpus (the real interviews)."""
    if not SHARED_CORPUS.is_dir():
        pytest.fail(f"{SHARED_CORPUS} is missing; set QABOT_SHARED_DIR to the shared folder")
    return SHARED_CORPUS


@pytest.fixture(scope="session")
def real_embedder(encoder_dir: Path):
    """The product's embedder, loaded once per test session: the bundled all-MiniLM-L6-v2 for passages and
    its ONNX export (made here, in `encoder_dir`, of the default kind) for questions."""
    from bot.embed.embedders import OnnxQueryEmbedder, SentenceTransformerEmbedder

    documents = SentenceTransformerEmbedder()
    documents.warm_up()
    embedder = OnnxQueryEmbedder(documents, encoder_dir, Settings().query_encoder)
    embedder.prepare()
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory: pytest.TempPathFactory, shared_corpus: Path, real_embedder) -> Settings:
    """Settings whose index_dir holds a real-model index of ../shared/corpus, built once per session."""
    from bot.index.build import build

    base = tmp_path_factory.mktemp("real")
    settings = Settings(corpus_dir=shared_corpus, index_dir=base / "index", state_dir=base / "var")
    build(settings.corpus_dir, settings.index_dir, real_embedder)
    return settings


@pytest.fixture(scope="session")
def real_answerer(real_settings: Settings, real_embedder):
    """An Answerer over the real index of ../shared/corpus (read-only: don't rebuild it in tests)."""
    from bot.answer.answerer import Answerer

    answerer = Answerer(real_settings, embedder=real_embedder)
    answerer.reload()
    return answerer


@pytest.fixture
def fake_slack():
    """The fake Slack Web API (tests/slack_fake.py), running for one test."""
    from slack_fake import FakeSlack

    fake = FakeSlack().start()
    yield fake
    fake.settle(quiet=0.1)  # let work still running after the test finish against a live server
    fake.stop()


@pytest.fixture
def watching(fake_answerer):
    """A maintainer and a running watcher over the fixture corpus (quiet 200 ms)."""
    from bot.serve.maintainer import IndexMaintainer
    from bot.serve.watch import CorpusWatcher

    maintainer = IndexMaintainer(fake_answerer, poll_seconds=0)
    watcher = CorpusWatcher(fake_answerer.settings, maintainer, quiet_ms=200, max_wait_ms=3000)
    maintainer.watcher = watcher
    watcher.start()
    assert watcher.wait_ready(10)
    yield maintainer, watcher
    watcher.stop()
