"""Throughput of `generate` end to end: render, encode, crop, write shards, hash, manifest.

Run:  .venv/bin/python benchmarks/bench_generate.py [--n 200] [--recipe default] [--formats lmdb,tfrecord]
For each format and worker count (1 and 2 by default) it generates into a fresh temporary folder and prints
pages/s, MB/s written, crops/s, and the speed-up over the first worker count. Run it on an idle machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from synthtext_industrial import load_recipe
from synthtext_industrial.generate import generate


def run(recipe, n: int, fmt: str, workers: int, crops: bool, root: Path) -> dict:
    out = root / f"{fmt}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    summary = generate(recipe, out, n, seed=0, fmt=fmt, shard_size=max(1, n // 4), workers=workers,
                       with_crops=crops)
    seconds = time.perf_counter() - start  # wall time of the whole call, pool start-up included
    shutil.rmtree(out, ignore_errors=True)
    return {"pages/s": n / seconds, "MB/s": summary.bytes / 1e6 / seconds, "crops/s": summary.crops / seconds,
            "MB/page": summary.bytes / 1e6 / max(n, 1), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="pages per run")
    parser.add_argument("--recipe", default="default", help="bundled recipe name or path")
    parser.add_argument("--formats", default="lmdb,tfrecord")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--no-crops", action="store_true")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    workers = [int(w) for w in args.workers.split(",")]
    print(f"recipe {recipe.source}, n={args.n}, crops={'off' if args.no_crops else 'on'}, "
          f"cores={os.cpu_count()}")
    print(f"{'format':9} {'workers':>7} {'pages/s':>8} {'MB/s':>7} {'crops/s':>8} {'MB/page':>8} {'speed-up':>9}")
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        for fmt in args.formats.split(","):
            base = None
            for w in workers:
                r = run(recipe, args.n, fmt, w, not args.no_crops, Path(tmp))
                base = base or r["pages/s"]
                print(f"{fmt:9} {w:7d} {r['pages/s']:8.1f} {r['MB/s']:7.1f} {r['crops/s']:8.1f} "
                      f"{r['MB/page']:8.2f} {r['pages/s'] / base:8.2f}x")


if __name__ == "__main__":
    main()
