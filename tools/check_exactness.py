"""Check the ground-truth exactness rule on many samples of every bundled recipe.

    .venv/bin/python tools/check_exactness.py --n 10000 [--seed 0] [--workers 2]

Spreads N samples over the bundled recipes, prints each failure and the
failure count per recipe (goal: 0). The rule is synthtext_industrial.exactness.
"""
from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from synthtext_industrial import load_recipe, render_sample
from synthtext_industrial.exactness import check_sample

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


def check_range(job: tuple[str, int, int, int]) -> tuple[str, int, list[str]]:
    path, seed, start, stop = job
    recipe = load_recipe(path)
    failures = []
    for i in range(start, stop):
        problems = check_sample(render_sample(recipe, seed, i, keep_char_masks=True))
        failures += [f"{Path(path).stem} seed {seed} sample {i}: {p}" for p in problems]
    return Path(path).stem, stop - start, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="samples in all, spread over the bundled recipes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    # exactly N in all: the first N % len(RECIPES) recipes get one sample more
    per_recipe = [args.n // len(RECIPES) + (k < args.n % len(RECIPES)) for k in range(len(RECIPES))]
    chunk = 100
    jobs = [(str(p), args.seed, s, min(s + chunk, count)) for p, count in zip(RECIPES, per_recipe)
            for s in range(0, count, chunk)]
    totals: dict[str, list[int]] = {p.stem: [0, 0] for p in RECIPES}
    with ProcessPoolExecutor(args.workers) as pool:
        for name, count, failures in pool.map(check_range, jobs):
            totals[name][0] += count
            totals[name][1] += len(failures)
            for f in failures:
                print(f)
    for name, (count, failed) in totals.items():
        print(f"{name:20} samples {count:6d}  failures {failed}")
    print(f"total samples {sum(c for c, _ in totals.values())}  failures {sum(f for _, f in totals.values())}")


if __name__ == "__main__":
    main()
