"""The folds the bench scripts cross-validate on: k folds stratified by question kind, the same every run."""

from __future__ import annotations

import random
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def stratified_folds(items: Sequence[T], kind: Callable[[T], str], k: int = 5, seed: int = 0) -> list[list[T]]:
    """`items` dealt into k folds, each kind shuffled (seeded) and spread evenly over the folds."""
    rng = random.Random(seed)
    folds: list[list[T]] = [[] for _ in range(k)]
    for name in sorted({kind(x) for x in items}):
        group = [x for x in items if kind(x) == name]
        rng.shuffle(group)
        for n, x in enumerate(group):
            folds[n % k].append(x)
    return folds
