"""The hand-set fused score (the default ranking): `RetrievalParams`' weights over the signals, then the steering
of named and described adopters and named projects.

The weighted signals are added one by one in `ORDER`: the order the weights were tuned with, kept so the
float32 sums (and so every tie in the ranking) stay what they were.
"""

from __future__ import annotations

import logging

import numpy as np

from bot.search.signals import SIGNAL_FUNCTIONS, Probe, _z
from bot.tuning import Z_CAP, RetrievalParams

logger = logging.getLogger(__name__)

# (signal, RetrievalParams field), in the order they are added; `sentence_kw` first sums the three before it.
ORDER = (("dense", "dense"), ("body", "body"), ("heading", "heading"), ("sentence_kw", "sentence_kw"),
         ("heading_dense", "heading_dense"), ("sentence", "sentence"), ("interview", "interview"),
         ("profile_rest", "profile"), ("described", "described"), ("described_dense", "described_dense"))


def weighted(p: Probe, params: RetrievalParams) -> list[tuple[str, np.ndarray]]:
    """Each signal the index has, times its weight, in `ORDER` (weight 0: left out)."""
    out = []
    for name, field in ORDER:
        weight = getattr(params, field)
        if not weight:
            continue
        if name == "sentence_kw" and p.ix._sampled_kw is not None:
            out.append((name, np.zeros(0, dtype=np.float32)))  # a large index's: estimated by `hand_fused`
            continue
        x = SIGNAL_FUNCTIONS[name](p)
        if x is not None:
            out.append((name, weight * x))
    return out


def described_doc(p: Probe, params: RetrievalParams) -> int:
    """The interview a description clearly points at (its match this far above any other's), or -1."""
    match = p.described_match if params.described_dense else None
    if match is None or not params.described_local or len(match) <= 1:
        return -1
    first, second = np.sort(match)[::-1][:2]
    return int(np.argmax(match)) if first - second >= params.described_local else -1


def project_boost(p: Probe, params: RetrievalParams) -> np.ndarray | None:
    """What each passage gets for the projects the question names (None: it names none).

    Named projects share the boost by how often each is named: in "do Tekton adopters find Tekton harder to
    run than Kubernetes?" Tekton gets two thirds. With "<P> adopters" only those projects share it: "What do
    Tekton adopters think of Kubernetes?" is answered in Tekton interviews."""
    a = p.a
    if not a.projects:
        return None
    counts = {name: count for name, count in a.project_counts if not a.scoped or name in a.scoped}
    rows = p.adopter_rows
    if rows is not None and rows.any() and not a.scoped:
        # A named adopter's question names another project as its topic ("How does Cloudera use Knative?"):
        # only the adopter's own projects steer; the rest is for the keywords and cosines.
        own = set(p.ix._project_keys[rows])
        counts = {name: count for name, count in counts.items() if name in own}
        if not counts:
            return None
    total = sum(counts.values())
    boost = params.scope_boost if a.scoped else params.project_boost
    # Each passage has one project, so this sum adds to each passage exactly what adding name by name did.
    added = np.zeros(len(p.ix.index.chunks), dtype=np.float64)
    for name, count in counts.items():
        added += boost * count / total * (p.ix._project_keys == name)
    return added


def hand_fused(p: Probe, params: RetrievalParams) -> np.ndarray:
    """Every passage's fused score by the hand-set weights."""
    ix, a = p.ix, p.a
    fused = np.zeros(len(ix.index.chunks), dtype=np.float32)
    parts = weighted(p, params)
    at = next((i for i, (name, _) in enumerate(parts) if name == "sentence_kw"), None)
    for _, x in parts[:at]:
        fused += x
    later = [x for _, x in parts[at + 1:]] if at is not None else []
    doc = described_doc(p, params)
    boost = project_boost(p, params)
    adopters = p.adopter_rows
    if at is not None and ix._sampled_kw is not None:
        # Large index: the candidates for exact best-sentence scores are the best by everything else.
        key = fused + sum(later)
        if adopters is not None:
            key += params.adopter_boost * adopters
        elif doc >= 0:
            key += params.described_boost * (ix.doc_of == doc)
        if boost is not None:
            key += boost
        for wanted in (p.filter_rows, ix._project_filter(p.project)):
            if wanted is not None:
                key += 1e6 * wanted  # a filtered question ranks only these
        best_kw, mean, sd = ix._sampled_kw.scores(list(a.query_terms), p.body, key)
        if sd > 1e-9:
            fused += params.sentence_kw * np.clip((best_kw - mean) / sd, -Z_CAP, Z_CAP).astype(np.float32)
    elif at is not None:
        fused += parts[at][1]
    for contribution in later:
        fused += contribution
    named_rows = None
    if adopters is not None:
        named_rows = adopters
        fused += params.adopter_boost * named_rows
    if p.filter_rows is not None:
        named_rows = p.filter_rows
    if named_rows is None and doc >= 0:
        named_rows = ix.doc_of == doc
        fused += params.described_boost * named_rows
    if named_rows is not None and params.local_z and named_rows.sum() > 2:
        _local_mix(p, params, fused, named_rows, described_only=doc >= 0 and adopters is None and not p.adopter)
    if boost is not None:
        fused += boost
    return fused


def _local_mix(p: Probe, params: RetrievalParams, fused: np.ndarray, rows: np.ndarray, described_only: bool) -> None:
    """Rank the asked-about interview's passages among themselves (in place).

    Which of its passages answers is decided among its passages: standard scores over all passages would let
    the signal that varies most across interviews (not within this one) decide. The mix keeps the interview's
    mean and spread of fused scores."""
    parts = [(params.dense, p.local_dense), (params.body, p.body), (params.heading, p.heading_kw),
             (params.sentence, p.local_sentence)]
    if p.local_heading_cos is not None:
        parts.append((params.heading_dense, p.local_heading_cos))
    local = sum(w * _z(x[rows]) for w, x in parts)
    cur = fused[rows]
    sd = float(local.std()) or 1.0
    mixed = float(cur.mean()) + local * (float(cur.std()) / sd)
    if described_only:
        # Described, not named: no boost lifts the interview, so its best passage keeps its score.
        mixed += float(cur.max()) - float(mixed.max())
    fused[rows] = (1 - params.local_z) * cur + params.local_z * mixed
