"""Charset, CTC label encoding and decoding, and the accuracy metrics of the published system (Table 2).

The CTC blank is the last class (index len(charset)), as TensorFlow's beam-search decoder expects.
Character accuracy is 1 - edit distance / max(len(truth), len(prediction)), clipped to [0, 1]
(the normalised edit distance of deep-text-recognition-benchmark).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein


@dataclass(frozen=True)
class Charset:
    chars: str  # index i <-> chars[i]; the blank is len(chars)

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars):
            raise ValueError(f"charset has repeated characters: {self.chars!r}")
        if not self.chars:
            raise ValueError("charset is empty")

    @property
    def blank(self) -> int:
        return len(self.chars)

    @property
    def num_classes(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        index = {c: i for i, c in enumerate(self.chars)}
        missing = sorted({c for c in text if c not in index})
        if missing:
            raise ValueError(f"text {text!r} has characters outside the charset: {''.join(missing)!r}")
        return [index[c] for c in text]

    def decode(self, labels: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in labels if 0 <= i < len(self.chars))


def ctc_greedy(logits: np.ndarray, blank: int, lengths: Sequence[int] | None = None) -> list[list[int]]:
    """Best path per sequence: argmax per step, repeats merged, blanks dropped. logits: [B, T, C]."""
    best = np.asarray(logits).argmax(axis=-1)
    out = []
    for b, path in enumerate(best):
        if lengths is not None:
            path = path[: lengths[b]]
        labels, previous = [], None
        for k in path.tolist():
            if k != previous and k != blank:
                labels.append(k)
            previous = k
        out.append(labels)
    return out


def ctc_beam(logits: np.ndarray, blank: int, beam_width: int = 8) -> tuple[list[list[int]], np.ndarray]:
    """Most probable labelling per sequence (CTC prefix beam search, TensorFlow's decoder) and its probability.

    Greedy decoding takes the best path; a labelling's probability is the sum over all its paths, so
    the two differ where several weaker paths agree. logits: [B, T, C] with the blank last.
    """
    import tensorflow as tf

    logits = np.asarray(logits, np.float32)
    if blank != logits.shape[-1] - 1:
        raise ValueError(f"TensorFlow's beam search needs the blank last (index {logits.shape[-1] - 1}), got {blank}")
    batch, steps = logits.shape[:2]
    log_probs = tf.nn.log_softmax(tf.transpose(logits, [1, 0, 2]), axis=-1)
    decoded, scores = tf.nn.ctc_beam_search_decoder(log_probs, tf.fill([batch], steps), beam_width=beam_width,
                                                    top_paths=1)
    dense = tf.sparse.to_dense(decoded[0], default_value=-1).numpy().reshape(batch, -1)
    return [[int(k) for k in row if k >= 0] for row in dense], np.exp(scores.numpy()[:, 0])


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1).

    rapidfuzz's C++ implementation: evaluation scores every line of a validation set
    each epoch, where the pure-Python version took most of the metric time.
    """
    return Levenshtein.distance(a, b)


def normalise(text: str, ignore_case: bool = False, only: str | None = None) -> str:
    """Text as compared: optionally case-folded and restricted to the characters in `only`."""
    if ignore_case:
        text = text.upper()
    if only is not None:
        allowed = set(only.upper() if ignore_case else only)
        text = "".join(c for c in text if c in allowed)
    return text


@dataclass(frozen=True)
class Accuracy:
    count: int
    string_accuracy: float  # share of texts read exactly
    char_accuracy: float  # mean of 1 - normalised edit distance
    rejected: int | None = None  # decoded with a grammar: lines no string it accepts explains (counted wrong)

    def as_dict(self) -> dict:
        out = {"count": self.count, "string_accuracy": self.string_accuracy, "char_accuracy": self.char_accuracy}
        if self.rejected is not None:
            out["rejected"] = self.rejected
        return out


def char_accuracy(truth: str, prediction: str) -> float:
    longest = max(len(truth), len(prediction))
    return 1.0 if longest == 0 else 1.0 - edit_distance(truth, prediction) / longest


def accuracy(truths: Sequence[str], predictions: Sequence[str], ignore_case: bool = False,
             only: str | None = None) -> Accuracy:
    if len(truths) != len(predictions):
        raise ValueError(f"{len(truths)} truths but {len(predictions)} predictions")
    if not truths:
        return Accuracy(0, 0.0, 0.0)
    pairs = [(normalise(t, ignore_case, only), normalise(p, ignore_case, only)) for t, p in zip(truths, predictions)]
    exact = sum(t == p for t, p in pairs)
    chars = sum(char_accuracy(t, p) for t, p in pairs)
    return Accuracy(len(pairs), exact / len(pairs), chars / len(pairs))
