"""The ONNX query encoder: exported from the bundled model, close to it, and never imported torch to answer."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.config import ConfigError, Settings
from bot.embed.onnx import EncoderError, OnnxQueryEncoder, encoder_file, ensure_encoder, is_current

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = [
    "Why do adopters value scale to zero?",
    "What did the team use before Knative?",
    "How is model serving monitored in production?",
    "Which authorization model does the company use for its APIs?",
    "a",
    "supply chain " * 200,  # longer than the model's 256 word pieces: truncated, not an error
]


def test_query_encoder_setting_is_checked() -> None:
    assert Settings.from_env({}).query_encoder == "onnx-int8"
    assert Settings.from_env({"QABOT_QUERY_ENCODER": "Torch"}).query_encoder == "torch"
    with pytest.raises(ConfigError, match="QABOT_QUERY_ENCODER: Input should be 'onnx', 'onnx-int8' or 'torch'"):
        Settings.from_env({"QABOT_QUERY_ENCODER": "gpu"})
    assert Settings.from_env({"QABOT_INDEX_DIR": "ix"}).encoder_folder == Path("ix/encoder")
    assert Settings.from_env({"QABOT_ENCODER_DIR": "/models"}).encoder_folder == Path("/models")


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="unknown query encoder 'bf16'"):
        ensure_encoder(tmp_path, "all-MiniLM-L6-v2", tmp_path, "bf16")


def test_stale_export_is_redone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights v1")
    out = encoder_file(tmp_path / "enc", "m", "onnx")
    calls: list[Path] = []

    def fake_export(model_path: Path, path: Path) -> Path:
        from bot.embed import onnx as onnx_encoder
        calls.append(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"onnx")
        meta = {"format": onnx_encoder.FORMAT_VERSION, "model_xxh3": onnx_encoder._model_fingerprint(model_path)}
        path.with_suffix(".json").write_text(json.dumps(meta))
        return path

    monkeypatch.setattr("bot.embed.onnx.export_encoder", fake_export)
    assert ensure_encoder(tmp_path / "enc", "m", model, "onnx") == out and len(calls) == 1
    ensure_encoder(tmp_path / "enc", "m", model, "onnx")
    assert len(calls) == 1  # current: not exported again
    (model / "model.safetensors").write_bytes(b"weights v2")
    assert not is_current(out, model)
    ensure_encoder(tmp_path / "enc", "m", model, "onnx")
    assert len(calls) == 2


@pytest.mark.slow
def test_fp32_export_encodes_like_the_torch_model(real_embedder, encoder_dir: Path) -> None:
    from bot.embed.embedders import OnnxQueryEmbedder

    fp32 = OnnxQueryEmbedder(real_embedder._documents, encoder_dir, "onnx")
    torch_vectors = np.stack([real_embedder._documents.embed_query(q) for q in QUESTIONS])
    onnx_vectors = np.stack([fp32.embed_query(q) for q in QUESTIONS])
    assert onnx_vectors.shape == torch_vectors.shape and onnx_vectors.dtype == np.float32
    assert np.abs(onnx_vectors - torch_vectors).max() < 1e-4
    # Batches pad to the longest question; padding must not change a vector.
    path = encoder_file(encoder_dir, real_embedder.name, "onnx")
    batch = OnnxQueryEncoder(path, Path(real_embedder._documents.model_path())).encode(QUESTIONS)
    assert np.abs(batch - onnx_vectors).max() < 1e-4


@pytest.mark.slow
def test_int8_export_stays_close_to_the_torch_model(real_embedder, tmp_path: Path) -> None:
    model_path = Path(real_embedder._documents.model_path())
    path = ensure_encoder(tmp_path, real_embedder.name, model_path, "onnx-int8")
    assert is_current(path, model_path) and not list(tmp_path.glob(".*tmp*"))
    assert path.stat().st_size < 40e6  # int8 weights: about a quarter of the fp32 file's 90 MB
    vectors = OnnxQueryEncoder(path, model_path).encode(QUESTIONS)
    torch_vectors = real_embedder._documents.embed_documents(QUESTIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosine = (vectors * torch_vectors).sum(axis=1)
    assert cosine.min() > 0.98, cosine


@pytest.mark.slow
def test_damaged_export_falls_back_to_torch_and_names_the_file(real_embedder, encoder_dir: Path, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    from bot.embed.embedders import OnnxQueryEmbedder

    folder = tmp_path / "enc"
    shutil.copytree(encoder_dir, folder)
    damaged = encoder_file(folder, real_embedder.name, "onnx")
    damaged.write_bytes(damaged.read_bytes()[:1000])
    embedder = OnnxQueryEmbedder(real_embedder._documents, folder, "onnx")
    with caplog.at_level(logging.WARNING, logger="bot.embed.embedders"):
        vector = embedder.embed_query(QUESTIONS[0])
    assert str(damaged) in caplog.text and "torch model instead" in caplog.text
    assert np.allclose(vector, real_embedder._documents.embed_query(QUESTIONS[0]), atol=1e-5)


@pytest.mark.slow
def test_answering_never_imports_torch(real_settings: Settings, encoder_dir: Path) -> None:
    script = (
        "import sys\n"
        "from bot.answer.answerer import Answerer\n"
        "from bot.config import get_settings\n"
        "a = Answerer(get_settings()); a.reload()\n"
        "answer = a.ask('Why do adopters value scale to zero?', 5)\n"
        "assert answer.citations, answer\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)\n"
        "print('heavy modules:', heavy)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(QABOT_INDEX_DIR=str(real_settings.index_dir), QABOT_CORPUS_DIR=str(real_settings.corpus_dir),
               QABOT_ENCODER_DIR=str(encoder_dir), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "heavy modules: []" in out.stdout


@pytest.mark.slow
def test_a_few_passages_are_embedded_by_the_fp32_export_without_loading_torch(real_embedder, encoder_dir: Path) -> None:
    from bot.embed.embedders import OnnxQueryEmbedder, SentenceTransformerEmbedder

    ensure_encoder(encoder_dir, real_embedder.name, Path(real_embedder._documents.model_path()), "onnx")
    fresh = OnnxQueryEmbedder(SentenceTransformerEmbedder(), encoder_dir, "onnx-int8")
    vectors = fresh.embed_documents(QUESTIONS)
    assert fresh._documents._model is None  # the torch model was never loaded
    torch_vectors = real_embedder._documents.embed_documents(QUESTIONS)
    assert vectors.shape == torch_vectors.shape and vectors.dtype == np.float32
    assert np.abs(vectors - torch_vectors).max() < 1e-4  # in their order, despite batching by length


@pytest.mark.slow
def test_adding_an_interview_to_an_index_never_imports_torch(real_settings: Settings, encoder_dir: Path,
                                                             tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(real_settings.corpus_dir, corpus)
    shutil.copytree(real_settings.index_dir, index)
    shutil.copy(ROOT / "tests" / "fixtures" / "corpus" / "knative" / "knative-adopter-interview-acme.md", corpus)
    script = (
        "import sys\n"
        "from bot.cli import main\n"
        "try:\n"
        "    main(['index'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('heavy modules:', sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(QABOT_INDEX_DIR=str(index), QABOT_CORPUS_DIR=str(corpus), QABOT_ENCODER_DIR=str(encoder_dir),
               HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "1 added, 0 changed, 0 removed" in out.stdout, out.stdout
    assert "heavy modules: []" in out.stdout, out.stdout


@pytest.mark.slow
def test_bulk_passages_are_embedded_by_the_fp32_export_too(real_embedder, encoder_dir: Path) -> None:
    from bot.embed.embedders import OnnxQueryEmbedder, SentenceTransformerEmbedder

    ensure_encoder(encoder_dir, real_embedder.name, Path(real_embedder._documents.model_path()), "onnx")
    fresh = OnnxQueryEmbedder(SentenceTransformerEmbedder(), encoder_dir, "onnx-int8")
    texts = [f"{q} ({i})" for i in range(120) for q in QUESTIONS[:5]]  # 600: more than any old small-batch cut-off
    vectors = fresh.embed_documents(texts)
    assert fresh._documents._model is None  # a full build loads torch only to export
    sample = [0, 1, 299, 598, 599]
    torch_vectors = real_embedder._documents.embed_documents([texts[i] for i in sample])
    assert np.abs(vectors[sample] - torch_vectors).max() < 1e-4
