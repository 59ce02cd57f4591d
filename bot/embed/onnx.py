"""The model as ONNX files: exported once from the bundled model, then run on onnxruntime.

`qabot index` exports all-MiniLM-L6-v2 (transformer + mean pooling + L2 norm) with torch to `INDEX/encoder/`
(or QABOT_ENCODER_DIR) in fp32, and from that an int8 copy (dynamic, per channel). `qabot serve` encodes questions
with the int8 file (by default), onnxruntime and the fast tokenizer only: no torch or sentence-transformers
import, so it starts in seconds and a question costs a few milliseconds on one core. The fp32 file embeds every
passage, sentence and heading a build needs, with torch's vectors (within 1e-6); torch only makes the export.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import xxhash

from bot.checksums import file_xxh3

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3
KINDS = ("onnx", "onnx-int8")


class EncoderError(RuntimeError):
    """The ONNX encoder could not be exported or loaded."""


def encoder_file(folder: Path, model_name: str, kind: str) -> Path:
    """Where the exported encoder of `model_name` lives in the encoder folder (default INDEX/encoder)."""
    suffix = "int8" if kind == "onnx-int8" else "fp32"
    return Path(folder) / f"{model_name}-{suffix}.onnx"


def _model_fingerprint(model_path: Path) -> str:
    """xxh3 of the model's weights and tokenizer (checked at every start: 90 MB in ~20 ms): a new model means a
    new export."""
    digest = xxhash.xxh3_128()
    for name in ("model.safetensors", "pytorch_model.bin", "tokenizer.json", "config.json"):
        path = model_path / name
        if path.exists():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _max_seq_length(model_path: Path) -> int:
    """The model's max word pieces (sentence-transformers' setting), 256 when not given."""
    try:
        return int(json.loads((model_path / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256


def _meta_path(onnx_path: Path) -> Path:
    return onnx_path.with_suffix(".json")


def is_current(onnx_path: Path, model_path: Path) -> bool:
    """True when `onnx_path` exists and was exported from these weights by this format version."""
    try:
        meta = json.loads(_meta_path(onnx_path).read_text())
    except (OSError, ValueError):
        return False
    return (onnx_path.exists() and meta.get("format") == FORMAT_VERSION
            and meta.get("model_xxh3") == _model_fingerprint(model_path))


def damage(onnx_path: Path) -> str | None:
    """Why an export that `is_current` is damaged (truncated, edited, unloadable), or None when it is intact.

    Checked against the size and checksum its meta file recorded; an export made before they were recorded is
    loaded once instead, and recorded when it loads."""
    meta_path = _meta_path(onnx_path)
    try:
        meta = json.loads(meta_path.read_text())
        size = onnx_path.stat().st_size
        if "xxh3" in meta:
            if size != meta.get("size"):
                return f"{onnx_path} is damaged ({size} bytes, {meta.get('size')} when exported)"
            if file_xxh3(onnx_path) != meta["xxh3"]:
                return f"{onnx_path} is damaged (checksum mismatch)"
            return None
    except (OSError, ValueError) as exc:
        return f"{onnx_path} cannot be read ({exc})"
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime fails in many ways on a damaged file
        return f"{onnx_path} cannot be loaded ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    try:
        _write_meta(meta_path, {**meta, "size": size, "xxh3": file_xxh3(onnx_path)})
    except OSError:  # a read-only folder: loaded again next time, no harm
        pass
    return None


def _write_meta(meta_path: Path, meta: dict) -> None:
    tmp = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, meta_path)


def export_encoder(model_path: Path, out: Path) -> Path:
    """Export the model (transformer, mean pooling, L2 norm) in fp32 to `out`; atomic."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EncoderError(f"exporting the ONNX encoder needs torch and transformers: {exc}") from exc
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    class Encoder(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: D102 - traced, not called
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        model = AutoModel.from_pretrained(str(model_path), local_files_only=True,
                                          attn_implementation="eager").eval()
        example = torch.ones((1, 8), dtype=torch.long)
        import warnings

        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Encoder(model), (example, example, torch.zeros_like(example)), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "token_type_ids": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
                opset_version=17, dynamo=False)
        _install(tmp, out, model_path, False)
    except EncoderError:
        raise
    except Exception as exc:  # noqa: BLE001 - the exporter fails in many ways; name the file
        raise EncoderError(f"cannot export the ONNX encoder to {out}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("exported the fp32 query encoder to %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out


def _quantize(fp32: Path, out: Path) -> None:
    """Write `fp32` with int8 weights (dynamic, per channel) to `out`, FFN output projections kept in fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer warns through the root logger about pre-processing
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=_precision_sensitive(fp32))
    finally:
        root.setLevel(level)


def _install(tmp: Path, out: Path, model_path: Path, quantized: bool) -> None:
    """Move a finished export into place, then its meta file (which makes it current)."""
    # Size and checksum recorded so that `damage` finds a truncated or edited file: `is_current` only reads the meta.
    size, checksum = tmp.stat().st_size, file_xxh3(tmp)
    os.replace(tmp, out)
    meta = {"format": FORMAT_VERSION, "model_xxh3": _model_fingerprint(model_path),
            "quantized": quantized, "max_seq_length": _max_seq_length(model_path), "size": size, "xxh3": checksum}
    meta_tmp = tmp.with_name(tmp.name + ".json")
    meta_tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(meta_tmp, _meta_path(out))


def quantize_encoder(source: Path, out: Path, model_path: Path) -> Path:
    """The int8 export made from an existing fp32 export (no torch needed); atomic."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        _quantize(source, tmp)
        _install(tmp, out, model_path, True)
    except Exception as exc:  # noqa: BLE001 - name the file
        raise EncoderError(f"cannot quantize the ONNX encoder {source} to {out}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("quantized the query encoder to int8: %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out


def _precision_sensitive(onnx_path: Path) -> list[str]:
    """MatMuls left in fp32 when quantizing: each layer's FFN output projection, whose post-GELU inputs have
    the widest range (quantizing it costs most of the accuracy: query cosine to fp32 0.987 -> 0.993 min)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [n.name for n in graph.node
            if n.op_type == "MatMul" and "/output/dense/" in n.name and "/attention/" not in n.name]


def ensure_encoder(folder: Path, model_name: str, model_path: Path, kind: str, verify: bool = False) -> Path:
    """The exported encoder for `kind`, exporting it first when missing or stale.

    `verify` (what `qabot index` asks for): also check the files' contents and export a damaged one again; a
    process that only answers skips that and falls back to torch if the file does not load."""
    if kind not in KINDS:
        raise EncoderError(f"unknown query encoder {kind!r}; use one of {', '.join(KINDS)} or torch")
    path = encoder_file(folder, model_name, kind)
    current = is_current(path, model_path)
    if current and verify:
        why = damage(path)
        if why is not None:
            logger.warning("%s; exporting the query encoder again", why)
            current = False
    if kind == "onnx-int8" and (not current or verify):
        # Quantized from the fp32 export, which stays beside it: small batches of passages are embedded with it
        # (exact vectors), so it is checked too.
        fp32 = encoder_file(folder, model_name, "onnx")
        if not current or fp32.exists():
            fp32 = ensure_encoder(folder, model_name, model_path, "onnx", verify)
        if not current:
            quantize_encoder(fp32, path, model_path)
    elif not current:
        export_encoder(model_path, path)
    return path


class OnnxQueryEncoder:
    """Encodes queries with an exported ONNX file and the model's fast tokenizer; loaded once, lazily."""

    def __init__(self, onnx_path: Path, model_path: Path, threads: int = 1) -> None:
        self.path = Path(onnx_path)
        self._model_path = Path(model_path)
        self._threads = threads
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Open the session and the tokenizer (raises EncoderError naming the file)."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self._threads
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                opts.enable_cpu_mem_arena = False  # a lone session: 74 MB instead of 126 MB resident, same speed
                session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
                tokenizer = Tokenizer.from_file(str(self._model_path / "tokenizer.json"))
                tokenizer.no_padding()  # the file pads to a fixed 128; encode() pads to the longest instead
                tokenizer.enable_truncation(_max_seq_length(self._model_path))
            except Exception as exc:  # noqa: BLE001 - a damaged or missing file is named, not a traceback
                raise EncoderError(f"cannot load the ONNX query encoder {self.path}: {exc}") from exc
            self._tokenizer = tokenizer
            self._session = session

    def encode_many(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """Vectors of many texts in batches of similar length (little padding), in the order given."""
        self.load()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        lengths = [len(e.ids) for e in self._tokenizer.encode_batch(list(texts))]
        order = np.argsort(lengths, kind="stable")
        parts = [self.encode([texts[i] for i in order[k:k + batch_size]]) for k in range(0, len(texts), batch_size)]
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(parts)
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalized vectors, shape (len(texts), dim)."""
        self.load()
        encodings = self._tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, :len(enc.ids)] = enc.ids
            mask[row, :len(enc.ids)] = 1
        out = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                       "token_type_ids": np.zeros_like(ids)})[0]
        return np.ascontiguousarray(out, dtype=np.float32)
