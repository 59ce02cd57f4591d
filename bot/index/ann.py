"""The approximate index used above a size threshold: IVF lists with 8-bit codes, trained once and reused."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faiss
import numpy as np

logger = logging.getLogger(__name__)

ANN_PROBE_FRACTION = 4  # lists probed = nlist / this (at least 32): recall@10 >= 0.98 in bench/build_bench.py


def ann_nlist(rows: int) -> int:
    """IVF lists for this many rows: a power of two near 2·sqrt(rows), so it stays put as the index grows."""
    nlist = int(2 ** round(np.log2(min(4096.0, max(64.0, 2 * np.sqrt(rows))))))
    return max(1, min(nlist, rows // 16))  # k-means needs several points per list (tiny test indexes)


def ann_nprobe(nlist: int) -> int:
    """IVF lists probed per query."""
    return min(nlist, max(32, nlist // ANN_PROBE_FRACTION))


def _train_ivf(vectors: np.ndarray, nlist: int) -> Any:
    dim = vectors.shape[1]
    index = faiss.index_factory(dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.niter = 10  # k-means iterations: enough for list balance, a fraction of the default's cost
    ivf.cp.min_points_per_centroid = 16
    rng = np.random.default_rng(0)
    sample_rows = np.sort(rng.choice(len(vectors), size=min(len(vectors), nlist * 32), replace=False))
    index.train(np.ascontiguousarray(vectors[sample_rows], dtype=np.float32))
    return index


def build_ann(vectors: np.ndarray, lists: np.ndarray | None = None,
              previous: Path | None = None) -> tuple[Any, np.ndarray]:
    """An IVF-SQ8 index over `vectors` and each row's list; reuses a previous training and known lists (>= 0)."""
    n, dim = vectors.shape
    nlist = ann_nlist(n)
    index = None
    if previous is not None and previous.exists():
        try:
            old = faiss.read_index(str(previous))
            if old.d == dim and faiss.extract_index_ivf(old).nlist == nlist:
                old.reset()
                index = old
        except RuntimeError:  # not an IVF index (e.g. the previous generation was flat)
            index = None
    if index is None:
        logger.info("training an IVF%d index over %d vectors", nlist, n)
        index = _train_ivf(vectors, nlist)
        lists = None
    lists = np.full(n, -1, dtype=np.int64) if lists is None or len(lists) != n else lists.astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = ann_nprobe(nlist)
    todo = np.flatnonzero(lists < 0)
    for start in range(0, len(todo), 65536):
        rows = todo[start:start + 65536]
        _, assigned = ivf.quantizer.search(np.ascontiguousarray(vectors[rows], dtype=np.float32), 1)
        lists[rows] = assigned[:, 0]
    from faiss.contrib.ivf_tools import add_preassigned

    for start in range(0, n, 65536):
        stop = min(n, start + 65536)
        # Keep our own references: add_preassigned hands raw pointers to FAISS.
        block = np.ascontiguousarray(vectors[start:stop], dtype=np.float32)
        block_lists = np.ascontiguousarray(lists[start:stop])
        block_ids = np.arange(start, stop, dtype=np.int64)
        add_preassigned(ivf, block, block_lists, ids=block_ids)
    return index, lists
