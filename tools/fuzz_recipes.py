"""Fuzz recipe loading and rendering: count the cases that crash instead of rendering or being refused.

    PYTHONPATH=. .venv/bin/python tools/fuzz_recipes.py --n 10000 [--seed 0] [--no-render]

Cases come from tests/recipe_fuzz.py (the same strategies the tests use, here
with many more examples). Each case must either render sample 0 or raise one
RecipeError that starts with the file name; anything else (another exception,
a traceback in the message, a wrong image, more than 60 s) is a crash and is
printed. Some cases hold values that pass the schema but fail in use (an
impossible date, an empty line, text too large, a font that draws letters as
garbage: tests/recipe_fuzz.FAILS_IN_USE); rendering one of those is a crash
too. A rendered sample is also checked against the exactness rule
(`inexact`: rendered, but the ground truth breaks it). The last line gives the
counts (goal: 0 crashes, 0 inexact).
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.recipe_fuzz import outcome, recipe_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="number of cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-render", action="store_true", help="validate only (faster)")
    args = parser.parse_args()
    counts: collections.Counter = collections.Counter()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as folder:
        @seed(args.seed)
        @settings(max_examples=args.n, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(recipe_case)
        def run(case):
            what, text = case
            result = outcome(text, Path(folder), render=not args.no_render)
            if what.startswith("fails in use") and result.result == "rendered":
                result.result, result.message = "crash", "a value that fails in use was accepted"
            counts[result.result] += 1
            if result.result == "inexact":
                print(f"INEXACT [{what}] {result.message}\n  recipe: {text[:300]!r}", flush=True)
            if result.result == "crash":
                print(f"CRASH [{what}] {result.message} {result.details}\n  recipe: {text[:300]!r}", flush=True)
            done = sum(counts.values())
            if done % 500 == 0:
                print(f"... {done} cases, {dict(counts)}, {time.perf_counter() - started:.0f} s", flush=True)

        run()
    print(f"cases {sum(counts.values())}  rendered {counts['rendered']}  refused {counts['refused']}  "
          f"inexact {counts['inexact']}  crashes {counts['crash']}  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
