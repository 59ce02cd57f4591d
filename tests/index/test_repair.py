"""Self-repair: a plain `qabot index` replaces a damaged generation or CURRENT, loading falls back to the newest
intact generation, pruning counts generations by number, an unwritable lock is one line, a damaged ONNX export
is exported again."""

from __future__ import annotations

import json
import logging
import pathlib
import shutil
import time
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner, Result

from bot.answer.answerer import Answerer
from bot.cli import main
from bot.config import Settings, get_settings
from tests.fakes import FAKE_MODEL, FakeEmbedder
from bot.index import generations, store
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


def gen_dir(index_dir: Path, generation: int | None = None) -> Path:
    """A generation's folder (default: the current one)."""
    return generations.generation_dir(index_dir, generation or generations.current_generation(index_dir))


def add_interview(corpus: Path, tag: str) -> str:
    """Add a one-answer interview; return its source name."""
    path = corpus / "knative" / f"knative-adopter-interview-{tag}.md"
    path.write_text(f"# Knative Adopter Interview - {tag}\n\n## Motivation\n\n### Why?\n\nBecause {tag} said so.\n")
    return f"knative/{path.name}"


def index_cli(settings: Settings, *args: str) -> Result:
    """`qabot index ARGS` with the fake model over the settings' folders."""
    get_settings.cache_clear()
    env = {"QABOT_MODEL": FAKE_MODEL, "QABOT_CORPUS_DIR": str(settings.corpus_dir),
           "QABOT_INDEX_DIR": str(settings.index_dir), "HF_HUB_OFFLINE": "1"}
    return CliRunner().invoke(main, ["index", *args], env=env)


def report_of(result: Result) -> dict:
    """The --json build report of a CLI run (stderr carries skips and warnings)."""
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout[result.stdout.index("{"):])


def renumber(index_dir: Path, source: int, target: int) -> None:
    """Copy generation `source` as generation `target` (its manifest says so, digest made again)."""
    dest = generations.generation_dir(index_dir, target)
    shutil.copytree(generations.generation_dir(index_dir, source), dest)
    manifest = store.read_manifest(index_dir, target)
    manifest.generation = target
    manifest.digest = manifest.compute_digest()
    (dest / store.MANIFEST).write_text(manifest.to_json(), encoding="utf-8")


def numbers(index_dir: Path) -> list[int]:
    """The generations in the folder (gen-<digits> folders with a manifest), by number."""
    return sorted(int(p.name[4:]) for p in index_dir.glob("gen-*") if (p / store.MANIFEST).is_file())


def point_at(index_dir: Path, generation: int) -> None:
    (index_dir / generations.CURRENT).write_text(f"gen-{generation:06d}\n")


# --- 1. a damaged file of the current generation is repaired by a plain `qabot index` -------------------------

def _delete(path: Path) -> None:
    path.unlink()


# name -> (file, damage, vectors reusable from the damaged generation itself)
DAMAGE: dict[str, tuple[str, Callable[[Path], None], bool]] = {
    "truncated faiss": (store.FAISS_FILE, truncate, True),
    "edited faiss": (store.FAISS_FILE, flip_byte, True),
    "deleted faiss": (store.FAISS_FILE, _delete, True),
    "edited text vectors": (store.TEXT_VECTORS, flip_byte, True),
    "edited keys": (store.KEYS, flip_byte, False),
    "edited passages": ("passages.bin", flip_byte, False),
    "edited passage rows": ("passage-rows.bin", flip_byte, False),
    "truncated vectors": (store.VECTORS, truncate, False),
    "garbage manifest": (store.MANIFEST, lambda p: p.write_text("{not json"), False),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_plain_index_repairs_a_damaged_file_of_the_current_generation(
        name: str, fake_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    first = build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    filename, damage, reusable = DAMAGE[name]
    target = gen_dir(fake_settings.index_dir) / filename
    damage(target)
    with caplog.at_level(logging.WARNING, logger="bot.index.build"):
        report = report_of(index_cli(fake_settings, "--json"))
    assert report["wrote"] and report["generation"] == first.generation + 1
    assert filename in report["repaired"] and str(target) in caplog.text
    # Derived files are made again from the intact passages and vectors; without those, everything is embedded.
    assert report["chunks_embedded"] == (0 if reusable else first.chunks_total)
    loaded = store.load(fake_settings.index_dir, "fake")  # every checksum verifies
    assert len(loaded.chunks) == first.chunks_total
    again = report_of(index_cli(fake_settings, "--json"))
    assert not again["wrote"] and again["repaired"] is None and again["generation"] == report["generation"]


def test_repair_summary_says_what_was_repaired(fake_settings: Settings) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    truncate(gen_dir(fake_settings.index_dir) / store.FAISS_FILE)
    result = index_cli(fake_settings)
    assert result.exit_code == 0, result.output
    assert "repaired:" in result.stdout and "index.faiss is damaged" in result.stdout


def test_repair_reuses_the_vectors_of_an_older_intact_generation(fake_settings: Settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    embedder = FakeEmbedder()
    build(corpus, index_dir, embedder)
    add_interview(corpus, "newco")
    second = build(corpus, index_dir, embedder)
    truncate(gen_dir(index_dir) / store.VECTORS)
    report = build(corpus, index_dir, embedder)
    assert report.repaired and "vectors.npy" in report.repaired and report.wrote
    assert report.chunks_embedded == 1  # only the interview generation 1 does not hold
    assert len(store.load(index_dir, "fake").chunks) == second.chunks_total


def test_damaged_ivf_lists_are_assigned_again(fake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "ANN_THRESHOLD", 1)
    first = build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    assert store.read_manifest(fake_settings.index_dir).ann == "ivf-sq8"
    flip_byte(gen_dir(fake_settings.index_dir) / store.LISTS)
    report = build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    assert report.repaired and "lists.npy" in report.repaired and report.chunks_embedded == 0
    assert len(store.load(fake_settings.index_dir, "fake").chunks) == first.chunks_total


# --- 2. loading falls back to the newest intact generation -------------------------------------------------------

def two_generations_second_damaged(settings: Settings) -> tuple[int, int]:
    """Build generation 1, then 2 with one more interview, and truncate 2's FAISS file."""
    embedder = FakeEmbedder()
    good = build(settings.corpus_dir, settings.index_dir, embedder).generation
    add_interview(settings.corpus_dir, "brokenco")
    bad = build(settings.corpus_dir, settings.index_dir, embedder).generation
    truncate(gen_dir(settings.index_dir, bad) / store.FAISS_FILE)
    return good, bad


def test_restarted_service_serves_the_newest_intact_generation(fake_settings: Settings,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    good, bad = two_generations_second_damaged(fake_settings)
    answerer = Answerer(fake_settings, embedder=FakeEmbedder())
    with caplog.at_level(logging.WARNING, logger="bot.answer.answerer"):
        assert answerer.reload() is True
    assert answerer.index.generation == good and answerer.search("scale to zero", 3)
    assert "index.faiss is damaged" in answerer.fallback and answerer.damaged_generation == bad
    assert "index.faiss is damaged" in caplog.text and f"serving generation {good}" in caplog.text
    maintainer = IndexMaintainer(answerer, poll_seconds=0)
    status = maintainer.status()
    assert status["ready"] and status["generation"] == good and status["bad_generation"] == bad
    assert "index.faiss is damaged" in status["fallback"] and "index.faiss is damaged" in status["last_error"]
    assert maintainer.try_reload() is False  # the damaged generation is not checksummed again
    # A plain build repairs it; the service picks the new generation up and the error clears.
    fixed = build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    assert fixed.repaired and fixed.generation == bad + 1
    assert maintainer.try_reload() is True
    status = maintainer.status()
    assert status["generation"] == fixed.generation and status["fallback"] is None
    assert status["bad_generation"] is None and status["last_error"] is None


def test_restarted_api_is_ready_on_the_intact_generation(fake_settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from bot.serve.app import create_app

    good, _ = two_generations_second_damaged(fake_settings)
    answerer = Answerer(fake_settings, embedder=FakeEmbedder())
    with TestClient(create_app(fake_settings, answerer, poll_seconds=0)) as client:
        deadline = time.time() + 20
        while client.get("/readyz").status_code != 200 and time.time() < deadline:
            time.sleep(0.05)
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["generation"] == good


def test_restarted_api_with_no_intact_generation_builds_a_new_one(fake_settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from bot.serve.app import create_app

    first = build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    truncate(gen_dir(fake_settings.index_dir) / store.VECTORS)
    answerer = Answerer(fake_settings, embedder=FakeEmbedder())
    with TestClient(create_app(fake_settings, answerer, poll_seconds=0)) as client:
        deadline = time.time() + 20
        while client.get("/readyz").status_code != 200 and time.time() < deadline:
            time.sleep(0.05)
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["generation"] == first.generation + 1 and ready.json()["chunks"] == first.chunks_total


def test_fallback_picks_the_newest_intact_generation_by_number(fake_settings: Settings) -> None:
    index_dir = fake_settings.index_dir
    build(fake_settings.corpus_dir, index_dir, FakeEmbedder())
    for number in (999_999, 1_000_000, 1_000_001):  # by name gen-999999 sorts last
        renumber(index_dir, 1, number)
    point_at(index_dir, 1_000_001)
    truncate(gen_dir(index_dir, 1_000_001) / store.VECTORS)
    answerer = Answerer(fake_settings, embedder=FakeEmbedder())
    assert answerer.reload() and answerer.index.generation == 1_000_000


def test_nothing_intact_is_no_index_and_names_the_damage(fake_settings: Settings) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    truncate(gen_dir(fake_settings.index_dir) / store.VECTORS)
    with pytest.raises(store.IndexNotFound, match=r"vectors\.npy is damaged"):
        Answerer(fake_settings, embedder=FakeEmbedder()).reload()


# --- 3. CURRENT in any bad state ---------------------------------------------------------------------------------

def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "stray.txt").write_text("not a pointer")


BAD_CURRENT: dict[str, Callable[[Path], None]] = {
    "garbage": lambda p: p.write_text("gen-banana\n"),
    "empty": lambda p: p.write_text(""),
    "binary": lambda p: p.write_bytes(b"\xff\xfe\x00gen\x9c"),
    "folder": _folder,
    "missing generation": lambda p: p.write_text("gen-000042\n"),
}


@pytest.mark.parametrize("full", [False, True], ids=["plain", "full"])
@pytest.mark.parametrize("state", sorted(BAD_CURRENT))
def test_a_build_replaces_a_bad_current(state: str, full: bool, fake_settings: Settings) -> None:
    index_dir = fake_settings.index_dir
    first = build(fake_settings.corpus_dir, index_dir, FakeEmbedder())
    BAD_CURRENT[state](index_dir / generations.CURRENT)
    report = report_of(index_cli(fake_settings, "--json", *(["--full"] if full else [])))
    assert report["wrote"] and "CURRENT" in report["repaired"]
    assert (index_dir / generations.CURRENT).is_file()
    assert generations.current_generation(index_dir) == report["generation"] > first.generation
    assert len(store.load(index_dir, "fake").chunks) == first.chunks_total
    if not full:  # generation 1 is intact: its vectors are reused
        assert report["chunks_embedded"] == 0


@pytest.mark.parametrize("state", sorted(BAD_CURRENT))
def test_loading_with_a_bad_current_serves_the_newest_intact_generation(state: str, fake_settings: Settings) -> None:
    index_dir = fake_settings.index_dir
    embedder = FakeEmbedder()
    build(fake_settings.corpus_dir, index_dir, embedder)
    add_interview(fake_settings.corpus_dir, "newco")
    newest = build(fake_settings.corpus_dir, index_dir, embedder).generation
    BAD_CURRENT[state](index_dir / generations.CURRENT)
    answerer = Answerer(fake_settings, embedder=embedder)
    assert answerer.reload() is True and answerer.index.generation == newest
    assert "CURRENT" in answerer.fallback


@pytest.mark.parametrize("state", sorted(BAD_CURRENT))
def test_a_bad_current_without_a_generation_is_no_index_and_never_advises_full(
        state: str, fake_settings: Settings) -> None:
    index_dir = fake_settings.index_dir
    index_dir.mkdir(parents=True)
    (index_dir / generations.CURRENT).write_text("gen-000001\n")
    BAD_CURRENT[state](index_dir / generations.CURRENT)
    with pytest.raises(store.IndexNotFound) as err:
        Answerer(fake_settings, embedder=FakeEmbedder()).reload()
    assert "CURRENT" in str(err.value) and "`qabot index`" in str(err.value) and "--full" not in str(err.value)


# --- 4. generation numbers are numbers ---------------------------------------------------------------------------

def test_junk_generation_folders_are_left_alone_and_never_cost_the_previous_one(fake_settings: Settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    embedder = FakeEmbedder()
    build(corpus, index_dir, embedder)
    (index_dir / "gen-999999").mkdir()  # not a generation: no manifest
    (index_dir / "gen-abc").mkdir()
    (index_dir / "gen-abc" / "notes.txt").write_text("mine")
    add_interview(corpus, "one")
    second = build(corpus, index_dir, embedder)
    assert second.generation == 1_000_000  # above every numbered folder: none is written over
    assert numbers(index_dir) == [1, 1_000_000]
    add_interview(corpus, "two")
    third = build(corpus, index_dir, embedder)
    assert numbers(index_dir) == [1_000_000, 1_000_001] and third.generation == 1_000_001
    assert (index_dir / "gen-999999").is_dir() and (index_dir / "gen-abc" / "notes.txt").read_text() == "mine"
    truncate(gen_dir(index_dir) / store.FAISS_FILE)  # the previous generation is there to fall back to
    answerer = Answerer(fake_settings, embedder=embedder)
    assert answerer.reload() and answerer.index.generation == 1_000_000


def test_prune_orders_generations_by_number(fake_settings: Settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    embedder = FakeEmbedder()
    build(corpus, index_dir, embedder)
    renumber(index_dir, 1, 999_999)
    point_at(index_dir, 999_999)
    shutil.rmtree(generations.generation_dir(index_dir, 1))
    for tag in ("one", "two"):
        add_interview(corpus, tag)
        build(corpus, index_dir, embedder)
    # By name, gen-999999 sorts after gen-1000000 and gen-1000001: the previous generation would be deleted.
    assert numbers(index_dir) == [1_000_000, 1_000_001]
    assert sorted(p.name for p in index_dir.glob("gen-*")) == ["gen-1000000", "gen-1000001"]


def test_prune_never_deletes_the_current_generation(fake_settings: Settings) -> None:
    index_dir = fake_settings.index_dir
    build(fake_settings.corpus_dir, index_dir, FakeEmbedder())
    for number in (2, 3, 4):
        renumber(index_dir, 1, number)
    point_at(index_dir, 1)
    generations.prune(index_dir)
    assert numbers(index_dir) == [1, 3, 4]


def test_prune_deletes_no_generation_while_current_is_bad(fake_settings: Settings) -> None:
    index_dir = fake_settings.index_dir
    build(fake_settings.corpus_dir, index_dir, FakeEmbedder())
    for number in (2, 3):
        renumber(index_dir, 1, number)
    (index_dir / generations.CURRENT).write_text("garbage")
    generations.prune(index_dir)
    assert numbers(index_dir) == [1, 2, 3]


# --- 5. an unwritable index folder or lock -----------------------------------------------------------------------

def _deny(monkeypatch: pytest.MonkeyPatch, method: str, when: Callable[[Path], bool]) -> None:
    """Make Path.<method> raise PermissionError for the paths `when` picks (root ignores chmod)."""
    real = getattr(pathlib.Path, method)

    def denied(self: Path, *args, **kwargs):
        if when(self):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, method, denied)


DENIED: dict[str, tuple[str, Callable[[Path], bool], str]] = {
    "lock file": ("open", lambda p: p.name == generations.LOCK, generations.LOCK),
    "index folder": ("mkdir", lambda p: p.name == "index", "index"),
    "new generation": ("mkdir", lambda p: p.name.startswith(".tmp-gen-"), "index"),
}


@pytest.mark.parametrize("name", sorted(DENIED))
def test_unwritable_index_is_one_line_naming_the_path(name: str, fake_settings: Settings,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    method, when, named = DENIED[name]
    _deny(monkeypatch, method, when)
    result = index_cli(fake_settings)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    # The fixture corpus's notes.txt is named in a warning line first (no questions): the failure is one line.
    error = "\n".join(line for line in result.output.strip().splitlines() if not line.startswith("warning: "))
    assert error.startswith("Error: ") and len(error.splitlines()) == 1, error
    assert str(fake_settings.index_dir) in error and named in error and "Permission denied" in error
    assert "--full" not in error and "Traceback" not in result.output


# --- 6. a damaged ONNX export is exported again --------------------------------------------------------------------

class _Documents:
    """What OnnxQueryEmbedder needs of the torch embedder to export: a name, a dimension and the model folder."""

    name = "m"
    dim = 4

    def __init__(self, model_path: Path) -> None:
        self._path = model_path

    def model_path(self) -> str:
        return str(self._path)


@pytest.fixture
def fake_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Path]]:
    """export_encoder and the quantizer replaced by ones that write a small file the way the real ones install it."""
    from bot.embed import onnx

    calls: dict[str, list[Path]] = {"export": [], "quantize": []}

    def export(model_path: Path, out: Path) -> Path:
        calls["export"].append(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(b"fp32 weights " * 1000)
        onnx._install(tmp, out, model_path, False)
        return out

    def quantize(fp32: Path, out: Path) -> None:
        calls["quantize"].append(out)
        out.write_bytes(fp32.read_bytes()[:4000])

    monkeypatch.setattr(onnx, "export_encoder", export)
    monkeypatch.setattr(onnx, "_quantize", quantize)
    return calls


def _onnx_embedder(tmp_path: Path, kind: str):
    from bot.embed.embedders import OnnxQueryEmbedder

    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "model.safetensors").write_bytes(b"weights")
    return OnnxQueryEmbedder(_Documents(model), tmp_path / "enc", kind)


@pytest.mark.parametrize("damage", [truncate, flip_byte], ids=["truncated", "edited"])
def test_a_damaged_export_is_exported_again(damage: Callable[[Path], None], tmp_path: Path,
                                            fake_exports: dict[str, list[Path]],
                                            caplog: pytest.LogCaptureFixture) -> None:
    from bot.embed.onnx import encoder_file

    embedder = _onnx_embedder(tmp_path, "onnx")
    embedder.prepare()
    embedder.prepare()
    assert len(fake_exports["export"]) == 1  # intact: not exported again
    path = encoder_file(tmp_path / "enc", "m", "onnx")
    damage(path)
    with caplog.at_level(logging.WARNING, logger="bot.embed.onnx"):
        embedder.prepare()
    assert len(fake_exports["export"]) == 2 and str(path) in caplog.text and "again" in caplog.text
    assert path.read_bytes() == b"fp32 weights " * 1000


def test_int8_and_fp32_exports_are_each_checked(tmp_path: Path, fake_exports: dict[str, list[Path]]) -> None:
    from bot.embed.onnx import encoder_file

    embedder = _onnx_embedder(tmp_path, "onnx-int8")
    embedder.prepare()
    assert len(fake_exports["export"]) == 1 and len(fake_exports["quantize"]) == 1
    truncate(encoder_file(tmp_path / "enc", "m", "onnx-int8"))
    embedder.prepare()
    assert len(fake_exports["export"]) == 1 and len(fake_exports["quantize"]) == 2  # quantized again, not exported
    truncate(encoder_file(tmp_path / "enc", "m", "onnx"))  # embeds the passages of small updates
    embedder.prepare()
    assert len(fake_exports["export"]) == 2 and len(fake_exports["quantize"]) == 2


def test_an_export_made_before_checksums_were_recorded_is_checked_by_loading_it(
        tmp_path: Path, fake_exports: dict[str, list[Path]]) -> None:
    from bot.embed import onnx

    embedder = _onnx_embedder(tmp_path, "onnx")
    path = onnx.encoder_file(tmp_path / "enc", "m", "onnx")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x08\x07truncated protobuf")
    meta = {"format": onnx.FORMAT_VERSION, "model_xxh3": onnx._model_fingerprint(tmp_path / "model")}
    path.with_suffix(".json").write_text(json.dumps(meta))
    assert onnx.is_current(path, tmp_path / "model")  # the meta alone says it is fine
    embedder.prepare()
    assert fake_exports["export"] == [path]
