"""Evaluation metrics on one core: rapidfuzz's edit distance against the pure-Python one it replaced.

Run by hand:  .venv/bin/python benchmarks/bench_metrics.py [--lines 5000]

Every evaluation (each validation epoch, `evaluate`, the export parity check) scores
each line with `char_accuracy`, i.e. one edit distance. The lines are product-code
like strings of 5-25 characters with one substitution, as a trained model reads them.
CTC greedy decoding is timed beside it (argmax alone, then with the Python merge
loop) to show whether that loop is worth replacing too (it was not: the argmax,
already NumPy, is most of it).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import numpy as np

    from tests.test_trainer_text import reference_edit_distance
    from synthtext_industrial.train.text import ctc_greedy, edit_distance

    rng = random.Random(0)
    truths = ["".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789-/ ") for _ in range(rng.randint(5, 25)))
              for _ in range(args.lines)]
    pairs = [(t, t[:2] + "0" + t[3:]) for t in truths]
    assert all(edit_distance(a, b) == reference_edit_distance(a, b) for a, b in pairs)

    def best(fn) -> float:
        return min(timeit.repeat(fn, number=1, repeat=5))

    old = best(lambda: [reference_edit_distance(a, b) for a, b in pairs])
    new = best(lambda: [edit_distance(a, b) for a, b in pairs])
    print(f"edit distance, {args.lines} lines: pure Python {old * 1e6 / args.lines:.2f} us/line, "
          f"rapidfuzz {new * 1e6 / args.lines:.2f} us/line ({old / new:.0f}x)")
    logits = np.random.default_rng(0).normal(size=(256, 96, 40)).astype(np.float32)
    argmax = best(lambda: logits.argmax(-1))
    greedy = best(lambda: ctc_greedy(logits, 39))
    print(f"ctc_greedy, 256 lines x 96 steps: argmax {argmax * 1e3:.2f} ms, whole decode {greedy * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
