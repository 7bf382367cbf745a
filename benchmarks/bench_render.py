"""Pages per second on one core for every bundled recipe, including image encoding.

Run pinned to one core:  taskset -c 0 .venv/bin/python benchmarks/bench_render.py [--n 60] [--profile default]
Prints pages/s per recipe (render only, and render + encode as the recipe says, and + JPEG q95),
the ratio to the 40 pages/s target, and optionally a cProfile of one recipe.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402

cv2.setNumThreads(1)

from synthtext_industrial import encode_image, load_recipe, render_sample  # noqa: E402

TARGET_PAGES_PER_S = 40.0
RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


def measure(recipe, n: int) -> dict:
    render_sample(recipe, 0, 10_000)  # warm caches (fonts, photos, effect pipelines)
    render_s = encode_s = jpeg_s = 0.0
    enc = recipe.canvas.encoding
    for i in range(n):
        t0 = time.perf_counter()
        sample = render_sample(recipe, 0, i)
        t1 = time.perf_counter()
        encode_image(sample.image, enc.format, enc.quality)
        t2 = time.perf_counter()
        encode_image(sample.image, "jpeg", 95)
        t3 = time.perf_counter()
        render_s += t1 - t0
        encode_s += t2 - t1
        jpeg_s += t3 - t2
    return {"render_ms": 1000 * render_s / n, "encode_ms": 1000 * encode_s / n, "jpeg95_ms": 1000 * jpeg_s / n,
            "pages_per_s": n / (render_s + encode_s), "pages_per_s_jpeg95": n / (render_s + jpeg_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60, help="pages per recipe")
    parser.add_argument("--profile", metavar="RECIPE", help="also print a cProfile of this recipe (stem)")
    args = parser.parse_args()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"cores available to this process: {affinity} (pin with taskset -c 0 for per-core figures)")
    print(f"{'recipe':20} {'render ms':>10} {'encode ms':>10} {'jpeg95 ms':>10} {'pages/s':>8} "
          f"{'pages/s jpeg95':>15} {'vs target':>10}")
    for path in RECIPES:
        recipe = load_recipe(path)
        r = measure(recipe, args.n)
        print(f"{path.stem:20} {r['render_ms']:10.1f} {r['encode_ms']:10.1f} {r['jpeg95_ms']:10.1f} "
              f"{r['pages_per_s']:8.1f} {r['pages_per_s_jpeg95']:15.1f} "
              f"{r['pages_per_s_jpeg95'] / TARGET_PAGES_PER_S:9.2f}x")
    if args.profile:
        recipe = load_recipe(next(p for p in RECIPES if p.stem == args.profile))
        render_sample(recipe, 0, 10_000)
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(args.n):
            encode_image(render_sample(recipe, 0, i).image, "jpeg", 95)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()
