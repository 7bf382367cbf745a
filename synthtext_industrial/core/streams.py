"""Random streams: every draw of a sample comes from a generator that is a function of (seed, index).

`sample_rng` gives the generator of one sample; `uniform`, `integer`, `choose` and `choose_key` are the
draws every stage makes from it; `child_seed` seeds libraries that keep their own random state.
"""
from __future__ import annotations

from typing import Mapping, Sequence, TypeVar

import numpy as np

T = TypeVar("T")
K = TypeVar("K")


def uniform(rng: np.random.Generator, pair: tuple[float, float]) -> float:
    """Draw from a float range; a degenerate range still consumes one draw so streams stay aligned."""
    a, b = pair
    return float(a + (b - a) * rng.random())


def integer(rng: np.random.Generator, pair: tuple[int, int]) -> int:
    """Draw from an inclusive integer range."""
    a, b = pair
    return int(rng.integers(a, b + 1))


def choose(rng: np.random.Generator, items: Sequence[T], weights: Sequence[float] | None = None) -> T:
    """Pick one item, optionally weighted (weights need not sum to 1)."""
    if not items:
        raise ValueError("nothing to choose from")
    if weights is None:
        return items[int(rng.integers(len(items)))]
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if total <= 0:
        raise ValueError("weights must have a positive sum")
    idx = int(np.searchsorted(np.cumsum(w) / total, rng.random(), side="right"))
    return items[min(idx, len(items) - 1)]


def choose_key(rng: np.random.Generator, weights: Mapping[K, float]) -> K:
    """Pick a key of a mapping of weights, drawn over the keys in sorted order.

    A mapping's order is how it happened to be written: the same weights in another order,
    or after a YAML round trip (which sorts keys), must draw the same key.
    """
    keys = sorted(weights)
    return choose(rng, keys, [weights[k] for k in keys])


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample `index` under master `seed`: a function of (seed, index) only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def child_seed(rng: np.random.Generator) -> int:
    """A seed for a library that keeps its own random state (albumentations, cv2's signed 32-bit int)."""
    return int(rng.integers(0, 2**31 - 1))
