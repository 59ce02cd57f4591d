"""How many passages an answer cites: each one past the first must be likely to hold evidence itself.

A logistic model of "this ranked passage holds evidence for the question", over a few of its scores taken
relative to the best passage, fit on labelled questions (bench/fit_weights.py) and cut at the probability
that maximised the F1 of citations on the training questions. The first passage of an answered question is
always cited; the refusal decision (coverage.py) is what guards it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from bot.search.retriever import Hit

# What the model reads from a hit, in order (all relative to the answer's first passage where it says so).
HIT_FEATURES = ("fused_behind_first", "sentence", "sentence_behind_first", "dense", "rank", "same_interview")


def hit_features(hit: Hit, first: Hit, rank: int) -> list[float]:
    """One candidate citation as numbers, in `HIT_FEATURES` order (`rank` counts from 0)."""
    return [first.score - hit.score, hit.sentence, first.sentence - hit.sentence, hit.dense, math.log1p(rank),
            float(hit.chunk.source == first.chunk.source)]


@dataclass(frozen=True)
class RelevanceCut:
    """The fitted model and its cut."""

    coef: tuple[float, ...]
    intercept: float
    threshold: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def probability(self, hit: Hit, first: Hit, rank: int) -> float:
        """How likely this passage holds evidence for the question."""
        x = [(v - m) / s for v, m, s in zip(hit_features(hit, first, rank), self.mean, self.scale)]
        z = self.intercept + sum(c * v for c, v in zip(self.coef, x))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def cut(self, hits: Sequence[Hit]) -> list[Hit]:
        """The first hit, and each later one that reaches the threshold."""
        if not hits:
            return []
        first = hits[0]
        return [first] + [h for r, h in enumerate(hits[1:], 1) if self.probability(h, first, r) >= self.threshold]

    def to_dict(self) -> dict[str, Any]:
        """The weights-file form."""
        return {"features": list(HIT_FEATURES), "coef": [round(c, 5) for c in self.coef],
                "intercept": round(self.intercept, 5), "threshold": round(self.threshold, 5),
                "mean": [round(m, 5) for m in self.mean], "scale": [round(v, 5) for v in self.scale]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RelevanceCut":
        """Parse the weights-file form; a model fit on other features is refused."""
        if tuple(d["features"]) != HIT_FEATURES:
            raise ValueError("the citation model was fit on other features; refit it (bench/fit_weights.py)")
        return cls(tuple(d["coef"]), float(d["intercept"]), float(d["threshold"]), tuple(d["mean"]),
                   tuple(d["scale"]))
