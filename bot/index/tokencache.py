"""Passage token ids kept on disk beside a large index, so the next start does not tokenize every passage again.

At 10,000 interviews tokenizing the 171k passage texts is 4-5 s of a serve start. The ids are kept in the index
folder by the hash of each text (like the sentence-vector cache, bot/index/textvectors.py), with the terms they stand
for, so they survive new generations: a start after one interview was added tokenizes only its passages. A
read-only index folder still serves (the cache is just not written); a cache made by other tokenizer rules (stop
words, stemmer, word pattern) is ignored.
"""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import xxhash

from bot.index import keyword
from bot.index.keyword import Tokens, tokenize

logger = logging.getLogger(__name__)

CACHE_NAME = "passage-tokens.npz"
KEY_BYTES = 16
REWRITE_SHARE = 0.01  # the cache is rewritten when more than this share of texts is new (or of its entries old)


def fingerprint() -> str:
    """What the ids depend on: the word pattern, the stop words, the stemmer and how a word becomes terms."""
    import Stemmer

    from bot.ingest import text
    h = xxhash.xxh3_64()
    for part in (text._WORD.pattern, " ".join(sorted(keyword.STOP_WORDS)), str(Stemmer.version()),
                 inspect.getsource(keyword._terms_of_word)):
        h.update(part.encode("utf-8"))
    return h.hexdigest()


def _keys(texts: Sequence[str]) -> list[bytes]:
    return [xxhash.xxh3_128_digest(t.encode("utf-8", "surrogatepass")) for t in texts]


def _load(path: Path) -> tuple[dict[bytes, int], np.ndarray, np.ndarray] | None:
    """(row of each key, global ids, row offsets) of a usable cache, else None."""
    try:
        with np.load(path) as data:
            if bytes(data["fingerprint"]).decode() != fingerprint():
                logger.info("passage token cache %s was made by other tokenizer rules; ignored", path)
                return None
            keys, ids, ptr, names = data["keys"], data["ids"], data["ptr"], bytes(data["terms"]).decode("utf-8")
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt, never fatal
        logger.warning("ignoring unreadable passage token cache %s: %s", path, exc)
        return None
    terms = names.split("\n") if names else []
    if keys.ndim != 2 or keys.shape[1] != KEY_BYTES or len(ptr) != len(keys) + 1 or (len(ids) and (
            int(ids.min()) < 0 or int(ids.max()) >= len(terms))) or int(ptr[-1]) != len(ids):
        logger.warning("ignoring inconsistent passage token cache %s", path)
        return None
    with keyword._vocab_lock:
        to_global = np.array([keyword._term_id(t) for t in terms], dtype=np.int32)
    flat = keys.tobytes()
    rows = {flat[i * KEY_BYTES:(i + 1) * KEY_BYTES]: i for i in range(len(keys))}
    return rows, to_global[ids] if len(ids) else np.zeros(0, dtype=np.int32), ptr


def _save(path: Path, keys: list[bytes], tokens: Tokens) -> None:
    used = np.flatnonzero(np.bincount(tokens.ids)) if len(tokens.ids) else np.zeros(0, dtype=np.int64)
    local = np.zeros(int(used[-1]) + 1 if len(used) else 0, dtype=np.int32)
    local[used] = np.arange(len(used), dtype=np.int32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            np.savez(f, fingerprint=np.frombuffer(fingerprint().encode(), dtype=np.uint8),
                     keys=np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, KEY_BYTES),
                     ids=local[tokens.ids], ptr=tokens.ptr,
                     terms=np.frombuffer("\n".join(keyword._names[g] for g in used.tolist()).encode("utf-8"),
                                         dtype=np.uint8))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only index folder still serves; the ids just aren't kept
        logger.warning("cannot write passage token cache %s: %s", path, exc)
        tmp.unlink(missing_ok=True)


def passage_tokens(index_dir: Path, texts: Sequence[str]) -> Tokens:
    """`keyword.tokenize(texts)`, from the cache in `index_dir` where it has the texts; the cache is rewritten
    with exactly these texts when it lacked some or held others."""
    keys = _keys(texts)
    path = index_dir / CACHE_NAME
    cached = _load(path)
    rows, ids, ptr = cached if cached is not None else ({}, np.zeros(0, dtype=np.int32), np.zeros(1, np.int64))
    where = np.fromiter((rows.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
    missing = np.flatnonzero(where < 0)
    lengths = np.zeros(len(texts), dtype=np.int64)
    found = np.flatnonzero(where >= 0)
    lengths[found] = ptr[where[found] + 1] - ptr[where[found]]
    fresh = tokenize([texts[i] for i in missing.tolist()]) if len(missing) else None
    if fresh is not None:
        lengths[missing] = fresh.lengths()
    out_ptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_ptr[1:])
    out = np.empty(int(out_ptr[-1]), dtype=np.int32)
    for source_ids, source_ptr, rows_in_source, rows_out in (
            (ids, ptr, where[found], found),
            *(((fresh.ids, fresh.ptr, np.arange(len(missing)), missing),) if fresh is not None else ())):
        n = lengths[rows_out]
        total = int(n.sum())
        if not total:
            continue
        ends = np.cumsum(n)
        take = np.repeat(source_ptr[rows_in_source] - (ends - n), n) + np.arange(total)
        put = np.repeat(out_ptr[rows_out] - (ends - n), n) + np.arange(total)
        out[put] = source_ids[take]
    tokens = Tokens(out, out_ptr)
    # Rewritten (~1 s at 10,000 interviews) when it saves a start real work: a few new passages (an interview
    # added under --watch) cost less to tokenize again than the cache to write.
    stale = len(rows) - len({k for k in keys if k in rows})
    if len(missing) > REWRITE_SHARE * len(texts) or stale > REWRITE_SHARE * max(len(rows), 1) or not path.exists():
        logger.info("passage token cache: %d of %d texts tokenized", len(missing), len(texts))
        _save(path, keys, tokens)
    return tokens
