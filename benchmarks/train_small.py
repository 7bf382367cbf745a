"""Show that the small recognizer learns: generate, train on CPU for at most 15 minutes, evaluate on another seed.

Run:  .venv/bin/python benchmarks/train_small.py [--pages 3000] [--minutes 15] [--work /tmp/train-small]
Steps: generate `--pages` pages of recipes/default.yaml with line crops (seed 0) for training, 300 pages
(seed 1) for validation and early stopping, and `--test-pages` pages (seed 2) for the final figure; train the
`small` backbone within the time budget; evaluate; print string and character accuracy and lines/s.
Target: >= 95% string accuracy on the seed-2 set.
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
    parser.add_argument("--pages", type=int, default=3000, help="training pages (about 2 lines each)")
    parser.add_argument("--test-pages", type=int, default=500)
    parser.add_argument("--minutes", type=float, default=15.0, help="training time budget")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backbone", default="small")
    parser.add_argument("--learning-rate", type=float, default=1.5e-3, help="peak learning rate")
    parser.add_argument("--schedule", default="cosine", choices=["cosine", "plateau"],
                        help="cosine: decay over the time budget (a time-bound run anneals as it ends)")
    parser.add_argument("--width", type=int, default=0, help="0: from the longest line (as the CLI)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (weights, shuffling); data seeds are fixed")
    parser.add_argument("--run", default="run", help="run folder name inside --work (replaced)")
    parser.add_argument("--work", default="/tmp/train-small", help="scratch folder for datasets and the run")
    args = parser.parse_args()

    from synthtext_industrial.train.evaluate import dataset_lines, evaluate_recognizer
    from synthtext_industrial.train.fit_recognizer import TrainSettings, train_recognizer
    from synthtext_industrial.train.recognizer import RecognizerConfig

    work = Path(args.work)
    if work.exists() and not (work / "train" / "manifest.json").exists() and any(work.iterdir()):
        raise SystemExit(f"{work} exists and does not look like this benchmark's scratch folder; choose --work")
    run = work / args.run
    shutil.rmtree(run, ignore_errors=True)
    recipe = load_recipe(args.recipe)
    t0 = time.perf_counter()
    for name, pages, seed in (("train", args.pages, 0), ("val", 300, 1), ("test", args.test_pages, 2)):
        summary = generate(recipe, work / name, pages, seed=seed, shard_size=500)  # resumes if already there
        print(f"{name}: {summary.images} pages, {summary.crops} line crops (seed {seed})")
    print(f"generation: {time.perf_counter() - t0:.0f} s")

    t0 = time.perf_counter()
    settings = TrainSettings(epochs=1000, batch_size=args.batch_size, steps_per_epoch=200, patience=1000,
                             max_seconds=args.minutes * 60 - 60, learning_rate=args.learning_rate,
                             schedule=args.schedule, seed=args.seed)
    metrics = train_recognizer([work / "train"], run, RecognizerConfig(backbone=args.backbone,
                                                                                width=args.width),
                               settings, val=work / "val")
    train_seconds = time.perf_counter() - t0
    seen = metrics["history"][-1]["step"] * args.batch_size

    t0 = time.perf_counter()
    result = evaluate_recognizer(run, dataset_lines(work / "test"), run / "eval-test")
    eval_seconds = time.perf_counter() - t0
    print()
    print(f"recipe {recipe.source}; backbone {args.backbone}; {os.cpu_count()} CPU cores")
    print(f"training: {train_seconds / 60:.1f} min, {seen} lines seen, {seen / train_seconds:.0f} lines/s; "
          f"best epoch {metrics['best']['epoch'] + 1} (val string accuracy {metrics['best']['string_accuracy']:.4f})")
    print(f"test set (seed 2, {result.count} lines): string accuracy {result.string_accuracy:.4f}, "
          f"character accuracy {result.char_accuracy:.4f}; inference {result.count / eval_seconds:.0f} lines/s")
    print(f"target >= 0.95 string accuracy: {'met' if result.string_accuracy >= 0.95 else 'NOT met'}")


if __name__ == "__main__":
    main()
