"""The fitted ranking: one fused score from the named per-passage signals and a weight vector fit from labelled
questions.

Every signal is a per-passage array on a common scale (standard scores, or 0/1 and 0-1 indicators), so the
fused score is a dot product: `fuse(features, weights)`. The weights are fit by `bench/fit_weights.py`
(pairwise logistic regression over k folds of the labelled questions; see its docstring) and shipped in
`weights.json` beside this module; nothing here is tuned by hand.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from bot.search.signals import SIGNAL_FUNCTIONS, Probe
from bot.tuning import Z_CAP

logger = logging.getLogger(__name__)

WEIGHTS_FILE = Path(__file__).resolve().parents[2] / "bench" / "fitted-weights.json"  # where the fit writes

# The signals, in column order. Each is a function of bot/search/signals.py.
SIGNALS = (
    "dense",            # cosine of question and passage (context header + text)
    "sentence",         # best cosine of question and one sentence of the passage
    "heading_dense",    # cosine of question and the interview question the passage answers
    "body",             # BM25 over the interview question + passage text
    "sentence_kw",      # BM25 of the passage's best-matching sentence
    "heading",          # BM25 over project, adopter, section and question
    "interview",        # cosine of question and the interview's centroid
    "profile",          # BM25 of question and who the interviewee is (title, preamble, first section)
    "interview_kw",     # BM25 of the question over the whole interview
    "described",        # BM25 of an adopter description ("the Dutch bank") over interview profiles
    "described_dense",  # best cosine of the description with a sentence of an interview's profile
    "named",            # 1 for passages of the adopter the question names (or the adopter filter)
    "project",          # share of the question's project mentions that name the passage's project
    "scope",            # the same when the question is about "<P> adopters"
    "local_dense",      # within a named adopter's interview: the signals standardised over its passages only,
    "local_sentence",   # so which of its passages answers is decided among them (0 elsewhere)
    "local_body",
    "local_heading",
)


@dataclass(frozen=True)
class FusionWeights:
    """A weight per signal plus the ranking's diversity penalty, and how they were fit."""

    weights: dict[str, float]
    repeat_penalty: float = 0.0  # subtracted per passage already ranked from the same interview
    fit: dict = field(default_factory=dict)  # method, folds, date, data: provenance only
    answerability: dict | None = None  # the answer stage's refusal model, fit with these weights (its own form)
    relevance: dict | None = None  # the answer stage's citation cut, likewise

    def vector(self) -> np.ndarray:
        """The weights in `SIGNALS` order (a signal the file does not name weighs 0)."""
        return np.array([float(self.weights.get(name, 0.0)) for name in SIGNALS], dtype=np.float32)

    def to_json(self) -> str:
        """The file form: weights rounded to 4 decimals, with the fit's provenance."""
        return json.dumps({"weights": {k: round(float(v), 4) for k, v in self.weights.items()},
                           "repeat_penalty": round(float(self.repeat_penalty), 4), "fit": self.fit,
                           "answerability": self.answerability, "relevance": self.relevance},
                          indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "FusionWeights":
        """Parse the file form; unknown signal names are an error (a typo must not weigh 0 silently)."""
        d = json.loads(text)
        unknown = set(d["weights"]) - set(SIGNALS)
        if unknown:
            raise ValueError(f"unknown signals in fusion weights: {sorted(unknown)}")
        return cls({k: float(v) for k, v in d["weights"].items()}, float(d.get("repeat_penalty", 0.0)),
                   d.get("fit", {}), d.get("answerability"), d.get("relevance"))


@lru_cache(maxsize=4)
def load_weights(path: Path | None) -> FusionWeights | None:
    """The fitted weights in `path` (None without a path: the hand-set params are used). A file that is
    missing or malformed is an error: a configured ranking must not silently fall back to another."""
    if path is None:
        return None
    try:
        return FusionWeights.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot use the fusion weights in {path} (QABOT_FUSION_WEIGHTS): {exc}") from exc


def fuse(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The fused score of every passage: its signals (n_passages × len(SIGNALS)) dotted with the weights."""
    return features @ weights


def feature_matrix(p: Probe, weights: np.ndarray | None) -> np.ndarray:
    """Every passage's signals (n_passages × len(SIGNALS)); a signal the index lacks is 0. `weights` (None: all
    ones) pick a large index's candidates for exact best-sentence BM25."""
    F = np.zeros((len(p.ix.index.chunks), len(SIGNALS)), dtype=np.float32)
    for i, name in enumerate(SIGNALS):
        x = SIGNAL_FUNCTIONS[name](p)
        if x is not None:
            F[:, i] = x
    if p.ix._sampled_kw is not None:
        # Large index: exact best-sentence BM25 only for the best candidates by everything else.
        key = fuse(F, weights if weights is not None else np.ones(len(SIGNALS), dtype=np.float32))
        for wanted in (p.named_rows, p.ix._project_filter(p.project)):
            if wanted is not None:
                key = key + 1e6 * wanted  # a filtered question ranks only these
        best_kw, mean, sd = p.ix._sampled_kw.scores(list(p.a.query_terms), p.body, key)
        if sd > 1e-9:
            F[:, SIGNALS.index("sentence_kw")] = np.clip((best_kw - mean) / sd, -Z_CAP, Z_CAP)
    return F
