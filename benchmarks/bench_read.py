"""Read throughput on one core: the training readers against plain JPEG decoding of the same bytes.

Run by hand:  .venv/bin/python benchmarks/bench_read.py [--n 200] [--data /tmp/synthtext-bench-read] [--profile]

Makes 200 default.yaml pages (1600x1200 JPEG q95) as LMDB and as TFRecord in
DATA/lmdb and DATA/tfrecord, rendering on every core (or reads what is there).
Then it pins itself to ONE core before importing OpenCV or TensorFlow
(os.sched_setaffinity, like `taskset -c`; every thread created later inherits
it, so tf.data's pools see one schedulable CPU), sets cv2.setNumThreads(1) and
TensorFlow's intra-op and inter-op threads to 1 (tf.data keeps its defaults:
AUTOTUNE, on the one CPU it can see), and measures pages per wall-clock second
and per CPU-second of the process (all its threads; the steadier figure on a
shared machine, and the same on an idle core), best of --passes full passes over
the pages (files already in the page cache), taken round robin after one
warm-up round:

  raw cv2.imdecode / raw tf.io.decode_jpeg   the page bytes (tf: as tensors) held in memory, decode only
  LmdbDataset                                 ds[i] for every i: read, sha256 check, decode, ground truth
  tf_dataset(lmdb), tf_dataset(tfrecord)      default arguments (AUTOTUNE), consumed in the graph
                                              (dataset.reduce, as Keras fit does)
  ..., in order                               num_parallel_calls=None: no parallel stages
  ..., for-loop                               defaults, consumed by `for element in dataset` in Python

Each reader's ratio is of CPU time, to the raw decode by the same library
(target >= 90%); `faults` is minor page faults per page in the last pass
(fresh memory the kernel had to map). The script re-runs itself with glibc's
mmap and trim thresholds raised (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_):
with the defaults, whether a 1.9 MB decoded page reuses heap memory or faults
in ~900 fresh pages depends on the process's allocation history and swings
every figure, raw decode included, by about 1 ms; --plain-malloc keeps them.
--profile prints a cProfile of one LmdbDataset pass.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.90
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(256 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def make_datasets(data: Path, n: int, cpus: set[int]) -> dict[str, Path]:
    """DATA/lmdb and DATA/tfrecord: n default.yaml pages (no crops) rendered on every core, or what is there."""
    folders = {}
    for fmt in ("lmdb", "tfrecord"):
        folder = data / fmt
        manifest = folder / "manifest.json"
        if not (manifest.exists() and json.loads(manifest.read_text()).get("complete")):
            cmd = [sys.executable, "-m", "synthtext_industrial.cli", "generate", str(REPO / "recipes/default.yaml"),
                   "-n", str(n), "-o", str(folder), "--format", fmt, "--shard-size", "50", "--no-crops",
                   "--workers", str(len(cpus))]
            print(f"generating {n} pages as {fmt} in {folder} ...", flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        folders[fmt] = folder
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="pages per format, when DATA has no dataset yet")
    parser.add_argument("--data", type=Path, default=Path("/tmp/synthtext-bench-read"))
    parser.add_argument("--passes", type=int, default=6)
    parser.add_argument("--profile", action="store_true", help="cProfile one LmdbDataset pass")
    parser.add_argument("--plain-malloc", action="store_true", help="keep glibc's default malloc thresholds")
    args = parser.parse_args()
    if not args.plain_malloc and any(os.environ.get(k) != v for k, v in STEADY_MALLOC.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **STEADY_MALLOC})

    cpus = os.sched_getaffinity(0)
    folders = make_datasets(args.data, args.n, cpus)
    core = min(cpus)
    os.sched_setaffinity(0, {core})
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import cv2
    import numpy as np
    import tensorflow as tf

    from synthtext_industrial.data import LmdbDataset, tf_dataset
    from synthtext_industrial.store.format import load_manifest
    from synthtext_industrial.store.shards import iter_shard

    cv2.setNumThreads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    manifest = load_manifest(folders["lmdb"])
    pages = [record.image for entry in manifest["shards"] if entry["kind"] == "images"
             for record in iter_shard("lmdb", "images", folders["lmdb"] / entry["path"])]
    n = len(pages)
    print(f"{n} pages, {sum(map(len, pages)) / n / 1e3:.0f} kB each on average, "
          f"{manifest['canvas']['width']}x{manifest['canvas']['height']} {manifest['canvas']['encoding']}; "
          f"pinned to CPU {core} of {sorted(cpus)}; cv2 threads 1, TF intra/inter-op threads 1; "
          f"best of {args.passes} passes; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"malloc {'glibc defaults' if args.plain_malloc else 'thresholds raised'}")

    def raw_cv2():
        for data in pages:
            cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)

    page_tensors = [tf.constant(data) for data in pages]

    def raw_tf():
        for data in page_tensors:
            tf.io.decode_jpeg(data, channels=1, dct_method="INTEGER_ACCURATE")

    lmdb_pages = LmdbDataset(folders["lmdb"])

    def lmdb_dataset():
        for i in range(len(lmdb_pages)):
            lmdb_pages[i]

    def in_graph(fmt, **options):
        return lambda: tf_dataset(folders[fmt], **options).reduce(0, lambda count, _: count + 1)

    def python_loop(fmt):
        def run():
            for _ in tf_dataset(folders[fmt]):
                pass
        return run

    readers = {  # name: (run, the raw decode it is compared with)
        "raw cv2.imdecode": (raw_cv2, None),
        "raw tf.io.decode_jpeg": (raw_tf, None),
        "LmdbDataset": (lmdb_dataset, "raw cv2.imdecode"),
        "tf_dataset(lmdb)": (in_graph("lmdb"), "raw tf.io.decode_jpeg"),
        "tf_dataset(lmdb), in order": (in_graph("lmdb", num_parallel_calls=None), "raw tf.io.decode_jpeg"),
        "tf_dataset(tfrecord)": (in_graph("tfrecord"), "raw tf.io.decode_jpeg"),
        "tf_dataset(tfrecord), in order": (in_graph("tfrecord", num_parallel_calls=None), "raw tf.io.decode_jpeg"),
        "tf_dataset(tfrecord), for-loop": (python_loop("tfrecord"), "raw tf.io.decode_jpeg"),
    }
    wall = {name: float("inf") for name in readers}
    cpu = dict(wall)
    faults = {}
    for _ in range(args.passes + 1):  # round robin, so that a busy spell on the machine hits every reader alike
        for name, (run, _) in readers.items():
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            run()
            cpu[name] = min(cpu[name], time.process_time() - cpu_start)
            wall[name] = min(wall[name], time.perf_counter() - wall_start)
            faults[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / n

    print(f"{'reader':31s} {'pages/s':>8s} {'pages/CPU-s':>11s} {'CPU ms/page':>11s} {'faults':>6s}  "
          f"CPU time of raw decode / reader's (target {TARGET:.0%})")
    for name, (_, reference) in readers.items():
        ratio = ""
        if reference:
            value = cpu[reference] / cpu[name]
            ratio = f"{value:6.1%} of {reference}{'' if value >= TARGET else '  BELOW TARGET'}"
        print(f"{name:31s} {n / wall[name]:8.1f} {n / cpu[name]:11.1f} {1e3 * cpu[name] / n:11.2f} "
              f"{faults[name]:6.0f}  {ratio}")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(lmdb_dataset)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
