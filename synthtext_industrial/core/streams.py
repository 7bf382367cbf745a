"""Random streams: every draw of a sample comes from generators that are functions of (seed, index) only.

Each stage draws from its own stream (`SampleStreams`): one per stage for the page (background, camera,
the number of blocks, effects) and one per stage for each text block (its text, font, typography and
glyphs, layout, marking), derived from `SeedSequence([seed, index, stage number(, block + 1)])`. So a draw added
to one stage changes no other stage's draws, and one block's draws do not depend on how many numbers the
blocks before it took. `uniform`, `integer`, `choose` and `choose_key` are the draws the stages make;
`child_seed` seeds libraries that keep their own random state.
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


# The number of each stage's stream. The numbers are part of every page's identity: they never change, and a new
# stage gets a new number.
STAGE_STREAMS = {"background": 1, "camera": 2, "layout": 3, "text": 4, "fonts": 5, "typeset": 6, "marking": 7,
                 "effects": 8, "display": 9, "crops": 10, "surface": 11,
                 "context": 12}


def stage_rng(seed: int, index: int, stage: str, block: int | None = None) -> np.random.Generator:
    """The generator of one stage of sample `index` under master `seed`: for the page, or for text block `block`
    (the blocks drawn on the page, counted from 0, placed or not)."""
    # block k adds k + 1: SeedSequence pads entropy with zeros, so a trailing 0 would give the page's stream
    entropy = [int(seed), int(index), STAGE_STREAMS[stage]] + ([int(block) + 1] if block is not None else [])
    return np.random.default_rng(np.random.SeedSequence(entropy))


class SampleStreams:
    """The random streams of one sample: `page(stage)` (the same generator on every call) and
    `block(stage, k)` (a new generator for block k: call it once per block)."""

    def __init__(self, seed: int, index: int):
        self.seed, self.index = int(seed), int(index)
        self._page: dict[str, np.random.Generator] = {}

    def page(self, stage: str) -> np.random.Generator:
        if stage not in self._page:
            self._page[stage] = stage_rng(self.seed, self.index, stage)
        return self._page[stage]

    def block(self, stage: str, block: int) -> np.random.Generator:
        return stage_rng(self.seed, self.index, stage, block)


def child_seed(rng: np.random.Generator) -> int:
    """A seed for a library that keeps its own random state (albumentations, cv2's signed 32-bit int)."""
    return int(rng.integers(0, 2**31 - 1))
