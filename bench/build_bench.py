"""Index build benchmarks: full build chunks/s, the cost of adding 1 interview to a big index, ANN recall.

    python bench/build_bench.py [--sizes 1000 10000] [--work /tmp/qabot-bench] [--recall-extra 150]
    python bench/build_bench.py --compare [--corpus ../shared/corpus] [--rounds 3] --sizes --recall-extra 0

What is measured how (also written into BENCHMARKS.md):
- --compare: full builds of a corpus with the torch model (sentence-transformers) and with the fp32 ONNX export,
  side by side in one run, alternating, `--rounds` times each: in-process (model loaded, export made once,
  untimed) and as a fresh `qabot index --full` process (QABOT_QUERY_ENCODER=torch is today's torch path; the
  default embeds on the export). Medians, and the largest difference between the two indexes' vectors.
- full build: the 23 real interviews with the real model (all-MiniLM-L6-v2), model already loaded.
- big indexes: N synthetic interviews (bench/gen_corpus.py). Embedding ~17 chunks x N with the real model would
  take hours on 2 cores, so the *base* index is built with a stand-in embedder: hashed bag-of-words vectors of
  dimension 384 that carry the real model's name, so the next incremental build reuses them as it would reuse
  real vectors. The measured step, adding 1 interview, embeds with the product's embedder (a few passages go
  through the fp32 ONNX export of the real model, as under --watch and `qabot index`), in-process and then
  again through the `qabot index` command (a fresh process).
- ANN recall@10 vs exact search: on the big stand-in indexes, and on real-model vectors of the real corpus plus
  `--recall-extra` synthetic interviews (IVF forced on, with the same nlist rule).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gen_corpus import DEFAULT_SOURCE, generate, read_pools, synthesize  # noqa: E402
from bot.index import store  # noqa: E402
from bot.index.ann import ann_nlist, ann_nprobe  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.embed.embedders import SentenceTransformerEmbedder, make_embedder  # noqa: E402
from tests.fakes import FakeEmbedder  # noqa: E402
from bot.index.build import build  # noqa: E402

MODEL = "all-MiniLM-L6-v2"


def rss_mb() -> float:
    """Peak RSS of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def recall_at_10(vectors: np.ndarray, ann_index: object, queries: np.ndarray) -> float:
    """Mean overlap of the ANN top 10 (with exact re-rank, as served) and the exact top 10."""
    index = store.LoadedIndex(store.Manifest(0, "", vectors.shape[1], "", 0.0, {}, ann="ivf-sq8"),
                              [None] * len(vectors), vectors, ann_index, Path("."))  # type: ignore[list-item]
    hits = []
    for q in queries:
        exact = set(np.argsort(-(vectors @ q))[:10].tolist())
        got = {r for r, _ in index.search(q, 10)}
        hits.append(len(exact & got) / 10)
    return float(np.mean(hits))


def query_vectors(vectors: np.ndarray, n: int = 200, seed: int = 1) -> np.ndarray:
    """Queries near the data: random rows mixed with noise, normalized."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(n, len(vectors)), replace=False)
    q = np.asarray(vectors[rows], dtype=np.float32) + 0.6 * rng.standard_normal((len(rows), vectors.shape[1])).astype(np.float32) / np.sqrt(vectors.shape[1])
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def new_interview(corpus: Path, i: int, seed: int = 99) -> Path:
    """Write one more synthetic interview (from another seed) into the corpus."""
    folder, name, text = synthesize(i, read_pools(DEFAULT_SOURCE), seed)
    path = corpus / folder / name.replace(".md", f"-new{i}.md")
    path.write_text(text, encoding="utf-8")
    return path


def bench_full_real(embedder: SentenceTransformerEmbedder, work: Path) -> dict:
    """Full build of the 23 real interviews with the loaded real model."""
    index = work / "index-real23"
    shutil.rmtree(index, ignore_errors=True)
    report = build(DEFAULT_SOURCE, index, embedder, full=True)
    return {"bench": "full build, 23 real interviews, real model", "seconds": round(report.seconds, 2),
            "chunks": report.chunks_total, "chunks_per_s": round(report.chunks_embedded / report.embed_seconds, 1),
            "embed_seconds": report.embed_seconds}


def bench_size(n: int, embedder: SentenceTransformerEmbedder, work: Path, reuse_base: bool = False) -> dict:
    """Base index of n synthetic interviews (stand-in vectors), then add 1 interview with the real model."""
    corpus, index = work / f"corpus-{n}", work / f"index-{n}"
    if not corpus.exists() or sum(1 for _ in corpus.rglob("*.md")) != n:
        generate(n, corpus, DEFAULT_SOURCE, seed=7)
    for extra in corpus.rglob("*-new*.md"):
        extra.unlink()
    if not reuse_base:
        shutil.rmtree(index, ignore_errors=True)
    started = time.perf_counter()
    base = build(corpus, index, FakeEmbedder(name=MODEL, dim=384))  # with --reuse-base: drops earlier extras
    out: dict = {"bench": f"{n} interviews", "base_chunks": base.chunks_total,
                 "base_build_s_standin": round(time.perf_counter() - started, 1), "base_reused": reuse_base,
                 "ann": store.read_manifest(index).ann}
    # The product's embedder, as `qabot index` and `--watch` use it: a few passages go through the fp32 ONNX
    # export (made here once, untimed, as the index's first real build would have).
    product = make_embedder(MODEL, query_encoder=Settings().query_encoder, encoder_dir=index / "encoder")
    product._documents = embedder  # share the loaded torch model
    product.prepare()
    product.warm_up_documents()  # `--watch` loads it at start
    time.sleep(2.1)  # let the files' mtimes age past the racy window, as they would in real life
    path = new_interview(corpus, 1)
    report = build(corpus, index, product)
    assert report.added == [path.relative_to(corpus).as_posix()] and len(report.unchanged) == n, report.summary()
    out.update(add1_warm_s=round(report.seconds, 2), add1_chunks_embedded=report.chunks_embedded,
               add1_embed_s=report.embed_seconds, add1_unchanged=len(report.unchanged))
    # Through the CLI: a fresh `qabot index` process that loads the model first.
    path2 = new_interview(corpus, 2)
    env = {**os.environ, "QABOT_CORPUS_DIR": str(corpus), "QABOT_INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bot", "index", "--json"], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=True)
    cli = json.loads(proc.stdout)
    assert cli["added"] == [path2.relative_to(corpus).as_posix()], cli
    out.update(add1_cli_wall_s=round(time.perf_counter() - started, 2), add1_cli_build_s=round(cli["seconds"], 2),
               add1_cli_chunks_embedded=cli["chunks_embedded"],
               index_cli_peak_rss_mb=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
    loaded_started = time.perf_counter()
    loaded = store.load(index, MODEL)
    out["load_s"] = round(time.perf_counter() - loaded_started, 2)
    if loaded.manifest.ann != "flat":
        vectors = np.asarray(loaded.vectors)
        out["recall_at_10_standin"] = round(recall_at_10(vectors, loaded.faiss_index, query_vectors(vectors)), 4)
        q = query_vectors(vectors, 50)
        started = time.perf_counter()
        for v in q:
            loaded.search(v, 10)
        out["ann_search_ms"] = round((time.perf_counter() - started) / len(q) * 1000, 2)
        started = time.perf_counter()
        for v in q:
            np.argsort(-(vectors @ v))[:10]
        out["exact_numpy_search_ms"] = round((time.perf_counter() - started) / len(q) * 1000, 2)
    return out


def bench_recall_real(embedder: SentenceTransformerEmbedder, extra: int, work: Path) -> dict:
    """Recall@10 of the IVF index on real-model vectors (real corpus + `extra` synthetic interviews)."""
    corpus = work / f"corpus-recall-{extra}"
    generate(extra, corpus, DEFAULT_SOURCE, seed=5)
    shutil.copytree(DEFAULT_SOURCE, corpus / "real", ignore=shutil.ignore_patterns("README.md"))
    index = work / f"index-recall-{extra}"
    shutil.rmtree(index, ignore_errors=True)
    report = build(corpus, index, embedder, full=True)
    vectors = np.asarray(store.load(index, MODEL).vectors)
    ann, _ = store.build_ann(vectors)
    rng = np.random.default_rng(3)
    questions = [json.loads(line)["question"] for line in (DEFAULT_SOURCE.parent / "eval" / "dev.jsonl").open()]
    q_real = np.stack([embedder.embed_query(q) for q in questions])
    return {"bench": "ANN recall on real-model vectors", "vectors": len(vectors), "nlist": ann_nlist(len(vectors)),
            "nprobe": ann_nprobe(ann_nlist(len(vectors))), "embed_chunks_per_s": round(report.chunks_embedded / report.embed_seconds, 1),
            "recall_at_10_dev_questions": round(recall_at_10(vectors, ann, q_real), 4),
            "recall_at_10_near_passages": round(recall_at_10(vectors, ann, query_vectors(vectors, 200, int(rng.integers(99)))), 4)}


def _full_build(corpus: Path, index: Path, embedder: object) -> dict:
    shutil.rmtree(index, ignore_errors=True)
    report = build(corpus, index, embedder, full=True)
    return {"build_s": report.seconds, "embed_passages_s": report.embed_seconds, "passages": report.chunks_embedded,
            "sentences": report.sentences_to_embed}


def _cli_full_build(corpus: Path, index: Path, encoder_dir: Path, query_encoder: str) -> dict:
    shutil.rmtree(index, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(QABOT_CORPUS_DIR=str(corpus), QABOT_INDEX_DIR=str(index), QABOT_ENCODER_DIR=str(encoder_dir),
               QABOT_QUERY_ENCODER=query_encoder, HF_HUB_OFFLINE="1")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bot", "index", "--full", "--json"], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "build_s": json.loads(proc.stdout)["seconds"]}


def _median(rows: list[dict], key: str) -> float:
    return round(float(np.median([r[key] for r in rows])), 2)


def bench_compare(corpus: Path, work: Path, rounds: int) -> dict:
    """Full builds of `corpus`, torch vs the fp32 ONNX export, alternating, in-process and as a `qabot index`."""
    from bot.embed.embedders import OnnxQueryEmbedder
    from bot.index import textvectors

    encoder_dir = work / "encoder"
    torch_embedder = SentenceTransformerEmbedder()
    torch_embedder.warm_up()
    onnx_embedder = OnnxQueryEmbedder(SentenceTransformerEmbedder(), encoder_dir, "onnx-int8")
    onnx_embedder._documents = torch_embedder  # only for the one-time export
    onnx_embedder.prepare()
    onnx_embedder.warm_up_documents()
    runs: dict[str, list[dict]] = {"torch": [], "onnx": [], "torch_cli": [], "onnx_cli": []}
    for _ in range(rounds):
        runs["torch"].append(_full_build(corpus, work / "full-torch", torch_embedder))
        runs["onnx"].append(_full_build(corpus, work / "full-onnx", onnx_embedder))
        runs["torch_cli"].append(_cli_full_build(corpus, work / "cli-torch", encoder_dir, "torch"))
        runs["onnx_cli"].append(_cli_full_build(corpus, work / "cli-onnx", encoder_dir, "onnx-int8"))
    a, b = store.load(work / "full-torch", MODEL), store.load(work / "full-onnx", MODEL)
    va = textvectors.load_vectors(a.path / textvectors.FILE, 384)
    vb = textvectors.load_vectors(b.path / textvectors.FILE, 384)
    out = {"bench": f"full build of {corpus}, torch vs fp32 ONNX, {rounds} rounds alternating",
           "passages": runs["onnx"][0]["passages"], "sentences_and_headings": runs["onnx"][0]["sentences"],
           "max_abs_diff_passage_vectors": float(np.abs(np.asarray(a.vectors) - np.asarray(b.vectors)).max()),
           "max_abs_diff_sentence_vectors": float(max(np.abs(va[k] - vb[k]).max() for k in va)),
           "same_sentence_keys": set(va) == set(vb)}
    for name in ("torch", "onnx"):
        out[f"{name}_build_s_median"] = _median(runs[name], "build_s")
        out[f"{name}_embed_passages_s_median"] = _median(runs[name], "embed_passages_s")
        out[f"{name}_cli_wall_s_median"] = _median(runs[f"{name}_cli"], "wall_s")
        out[f"{name}_cli_build_s_median"] = _median(runs[f"{name}_cli"], "build_s")
    out["speedup_in_process"] = round(out["torch_build_s_median"] / out["onnx_build_s_median"], 2)
    out["speedup_cli_wall"] = round(out["torch_cli_wall_s_median"] / out["onnx_cli_wall_s_median"], 2)
    out["runs"] = {k: [{kk: round(vv, 2) if isinstance(vv, float) else vv for kk, vv in r.items()} for r in v]
                   for k, v in runs.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the build benchmarks and print one JSON object per result."""
    ap = argparse.ArgumentParser(description="qabot index build benchmarks")
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/qabot-bench"))
    ap.add_argument("--recall-extra", type=int, default=150, help="synthetic interviews embedded for real recall (0: skip)")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--reuse-base", action="store_true", help="keep an existing stand-in base index in --work")
    ap.add_argument("--compare", action="store_true", help="torch vs ONNX full builds of --corpus, then stop")
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cores", "python": platform.python_version(),
                      "load_avg": os.getloadavg()}))
    if args.compare:
        print(json.dumps(bench_compare(args.corpus, args.work, args.rounds)), flush=True)
        print(json.dumps({"load_avg_after": os.getloadavg()}))
        return 0
    embedder = SentenceTransformerEmbedder()
    embedder.warm_up()
    if not args.skip_full:
        print(json.dumps(bench_full_real(embedder, args.work)), flush=True)
    for n in args.sizes:
        print(json.dumps(bench_size(n, embedder, args.work, args.reuse_base)), flush=True)
    if args.recall_extra:
        print(json.dumps(bench_recall_real(embedder, args.recall_extra, args.work)), flush=True)
    print(json.dumps({"peak_rss_mb_bench_process": round(rss_mb())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
