"""Show that the spotter learns: generate pages, train the small spotter on CPU for minutes, evaluate on another seed.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/train_spotter_small.py [--pages 1500] [--minutes 12]
      [--width 400 --height 300] [--work /tmp/spotter-bench]
Steps: generate `--pages` pages of recipes/default.yaml (pages only, seed 0) for training, 60 pages (seed 1)
for validation and early stopping, `--test-pages` (seed 2) for the final figures; train within the time
budget; evaluate end to end (detect, then read the detections); print detection P/R/F1 at IoU 0.5,
end-to-end F1 and string accuracy, and training / inference pages per second.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from synthtext_industrial import load_recipe  # noqa: E402
from synthtext_industrial.generate import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--pages", type=int, default=1500, help="training pages (about 2 lines each)")
    parser.add_argument("--test-pages", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=12.0, help="training time budget")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backbone", default="small")
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--height", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--schedule", default="cosine", choices=["cosine", "plateau"],
                        help="cosine: decay over the time budget (a time-bound run anneals as it ends)")
    parser.add_argument("--work", default="/tmp/spotter-bench", help="scratch folder for datasets and the run")
    args = parser.parse_args()

    from synthtext_industrial.train.evaluate_spotter import evaluate_spotter
    from synthtext_industrial.train.fit_recognizer import TrainSettings
    from synthtext_industrial.train.fit_spotter import train_spotter
    from synthtext_industrial.train.spotter import SpotterConfig

    work = Path(args.work)
    if work.exists() and not (work / "train" / "manifest.json").exists() and any(work.iterdir()):
        raise SystemExit(f"{work} exists and does not look like this benchmark's scratch folder; choose --work")
    shutil.rmtree(work / "run", ignore_errors=True)
    recipe = load_recipe(args.recipe)
    t0 = time.perf_counter()
    for name, pages, seed in (("val", 60, 1), ("test", args.test_pages, 2), ("train", args.pages, 0)):
        summary = generate(recipe, work / name, pages, seed=seed, shard_size=250, with_crops=False)  # resumes
        print(f"{name}: {summary.images} pages (seed {seed})")
    print(f"generation: {time.perf_counter() - t0:.0f} s", flush=True)

    t0 = time.perf_counter()
    settings = TrainSettings(epochs=1000, batch_size=args.batch_size, steps_per_epoch=100, patience=1000,
                             val_lines=60, max_seconds=args.minutes * 60 - 30, learning_rate=args.learning_rate,
                             schedule=args.schedule)
    config = SpotterConfig(backbone=args.backbone, height=args.height, width=args.width, roi_width=0)
    metrics = train_spotter([work / "train"], work / "run", config, settings, val=work / "val")
    train_seconds = time.perf_counter() - t0
    seen = metrics["history"][-1]["step"] * args.batch_size

    t0 = time.perf_counter()
    result = evaluate_spotter(work / "run", work / "test", work / "run" / "eval-test")
    eval_seconds = time.perf_counter() - t0
    print()
    print(f"recipe {recipe.source}; backbone {args.backbone}; input {args.width}x{args.height}; "
          f"{os.cpu_count()} CPU cores; load average before evaluation {os.getloadavg()[0]:.1f}")
    print(f"training: {train_seconds / 60:.1f} min, {seen} pages seen ({seen / args.pages:.1f} epochs of data), "
          f"{seen / train_seconds:.1f} pages/s; best epoch {metrics['best']['epoch'] + 1} "
          f"(val end-to-end F1 {metrics['best']['e2e_f1']:.4f})")
    print(f"test set (seed 2, {result.pages} pages, {result.gt_lines} lines, {result.detections} detections): "
          f"detection P {result.precision:.4f} R {result.recall:.4f} F1 {result.f1:.4f} (IoU 0.5)")
    print(f"end to end: P {result.e2e_precision:.4f} R {result.e2e_recall:.4f} F1 {result.e2e_f1:.4f}; "
          f"string accuracy {result.string_accuracy:.4f}; page accuracy {result.page_accuracy:.4f}; "
          f"inference {result.pages / eval_seconds:.1f} pages/s")


if __name__ == "__main__":
    main()
