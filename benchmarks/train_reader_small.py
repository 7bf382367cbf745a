"""Train a frame reader on CPU within a time budget: the oriented detector and the line recognizer, then score the
reader on synthetic test pages as frames, next to a spotter's figures on the same frames.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/train_reader_small.py [--pages 8000 | --lines N] [--detector-minutes 20]
      [--recognizer-minutes 15] [--width 400 --height 300] [--spotter RUN] [--work /tmp/reader-bench]
      [--mixed-precision auto]
Steps: generate `--pages` pages of the recipe (pages and line crops, seed 0) for training (with `--lines N`, as many
pages as give about N lines at the validation pages' lines per page: a recipe of one plate per page needs more pages
than one of two codes per page for its recognizer to see as many lines), VAL_PAGES pages (seed 1) for validation,
`--test-pages` (seed 2) written as frames with labels.jsonl; train the detector (`train detector`) and the
recognizer (`train recognizer`, on the training pages' crops) each within its budget; make a reader of the two (it
cuts its detections with the recognizer's mean training margins) and evaluate it on the test frames (`evaluate
READER --frames`): detection P/R/F1 at polygon IoU 0.5, end-to-end F1 with exact strings.

A detector's line ends land a fraction of a line height off either way, so a recognizer trained on tight crops
loses end characters: unless the recipe frames its own crops (a `crops` section), the training crops are cut as a
detector's are (DETECTOR_FRAMING; `--tight-crops` keeps 0.15 line heights on every side). The pages are the same
either way: framing has its own random stream. With `--spotter RUN` (a spotter trained on the same recipe, e.g. by
train_spotter_small.py), the spotter alone and a reader on the spotter's detection head are scored on the same
frames, for the comparison table of docs/reader.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import yaml  # noqa: E402

from synthtext_industrial import load_recipe, recipe_from_dict  # noqa: E402
from synthtext_industrial.generate import generate  # noqa: E402

# Line crops framed as a trained detector's boxes fall: each end a third of a line height off either way (measured
# on default.yaml test pages), seen a little turned; the reader then cuts with the mean, 0.4 and 0.2 line heights.
# Validation pages: the detector scores 60 of them per epoch (val_lines), the recognizer every line of all of them
# (about 330), so that its best epoch is not picked by the noise of a hundred lines.
VAL_PAGES = 150
DETECTOR_FRAMING = {"margin_x": [0.0, 0.8], "margin_y": [0.05, 0.35], "box": 0.3, "box_rotation": [-2, 2]}


def framed_like_a_detector(recipe):
    """The recipe with DETECTOR_FRAMING as its `crops`, unless it frames its own crops."""
    data = yaml.safe_load(recipe.raw_text) or {}
    if "crops" in data:
        return recipe
    data["crops"] = DETECTOR_FRAMING
    text = recipe.raw_text.rstrip() + "\n\n# train_reader_small.py: crops framed as a detector's boxes fall\n" + \
        yaml.safe_dump({"crops": DETECTOR_FRAMING}, default_flow_style=None)
    return recipe_from_dict(data, recipe.source, Path(recipe.source).parent, text=text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--pages", type=int, default=8000,
                        help="training pages (about 2 lines each; 1500 read 0.85, 4000 0.88, 8000 0.89 e2e F1; "
                             "8000 take 5.4 min to make)")
    parser.add_argument("--lines", type=int, default=None,
                        help="instead of --pages: train on about this many lines, as many pages as the recipe needs "
                             "for them (its lines per page measured on the validation pages)")
    parser.add_argument("--test-pages", type=int, default=600,
                        help="test pages (seed 2) read as frames; 600 hold about 1300 lines, so the e2e F1 is known "
                             "to about +-0.008")
    parser.add_argument("--detector-minutes", type=float, default=20.0,
                        help="20: a 14-minute detector (and a 21-minute recognizer) read fewer lines right, "
                             "0.8928 against 0.9065 on the same 200 frames (docs/reader.md)")
    parser.add_argument("--recognizer-minutes", type=float, default=15.0)
    parser.add_argument("--batch-size", type=int, default=8, help="detector batch (pages)")
    parser.add_argument("--width", type=int, default=400, help="detector input width")
    parser.add_argument("--height", type=int, default=300, help="detector input height")
    parser.add_argument("--spotter", default=None, help="a trained spotter run to score on the same frames")
    parser.add_argument("--work", default="/tmp/reader-bench", help="scratch folder for datasets and runs")
    parser.add_argument("--mixed-precision", default="auto", choices=["auto", "off", "bfloat16", "float16"],
                        help="auto: bfloat16 where the CPU computes it natively and no GPU is seen (more steps in "
                             "the same minutes), else off")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="both models keep, validate and save a moving average of their weights (decay per step)")
    parser.add_argument("--tight-crops", action="store_true",
                        help="train the recognizer on the recipe's own crops even when it has no crops section")
    args = parser.parse_args()

    from synthtext_industrial.train.detector import DetectorConfig
    from synthtext_industrial.train.fit_detector import train_detector
    from synthtext_industrial.train.fit_recognizer import train_recognizer
    from synthtext_industrial.train.frames import evaluate_frames, load_frames, write_frame_labels
    from synthtext_industrial.train.loop import TrainSettings, auto_precision
    from synthtext_industrial.train.reader import create_reader, load_reader, read_frames, spot_frames
    from synthtext_industrial.train.recognizer import RecognizerConfig
    from synthtext_industrial.train.runs import load_spotter

    work = Path(args.work)
    if work.exists() and not (work / "train" / "manifest.json").exists() and any(work.iterdir()):
        raise SystemExit(f"{work} exists and does not look like this benchmark's scratch folder; choose --work")
    for run in ("detector", "recognizer"):
        if (work / run).exists():
            raise SystemExit(f"{work / run} exists: remove it (or choose another --work) to train again")
    precision = auto_precision() if args.mixed_precision == "auto" else args.mixed_precision
    recipe = load_recipe(args.recipe)
    crops_recipe = recipe if args.tight_crops else framed_like_a_detector(recipe)
    t0 = time.perf_counter()
    for name, pages, seed in (("val", VAL_PAGES, 1), ("test", args.test_pages, 2), ("train", args.pages, 0)):
        if name == "train" and args.lines:
            pages = pages_for_lines(args.lines, lines_per_page)
        summary = generate(crops_recipe if name != "test" else recipe, work / name, pages, seed=seed,
                           shard_size=250, with_crops=name != "test")
        if name == "val":
            lines_per_page = summary.lines / max(1, summary.images)
        print(f"{name}: {summary.images} pages, {summary.lines} lines (seed {seed})")
        if name == "train":
            args.pages, train_lines = summary.images, summary.lines
    frames = work / "frames-test"
    if not (frames / "labels.jsonl").exists():
        write_frame_labels(work / "test", frames, "jsonl")
    print(f"generation: {time.perf_counter() - t0:.0f} s", flush=True)

    t0 = time.perf_counter()
    settings = TrainSettings(epochs=1000, batch_size=args.batch_size, steps_per_epoch=100, patience=1000,
                             val_lines=60, max_seconds=args.detector_minutes * 60 - 30, schedule="cosine",
                             mixed_precision=precision, ema=args.ema)
    detector = train_detector([work / "train"], work / "detector", DetectorConfig(height=args.height,
                                                                                 width=args.width),
                              settings, val=work / "val")
    detector_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    settings = TrainSettings(epochs=1000, batch_size=32, steps_per_epoch=200, patience=1000,
                             max_seconds=args.recognizer_minutes * 60 - 60, schedule="cosine",
                             mixed_precision=precision, ema=args.ema)
    recognizer = train_recognizer([work / "train"], work / "recognizer", RecognizerConfig(), settings,
                                  val=work / "val")
    recognizer_seconds = time.perf_counter() - t0

    truths = load_frames(frames)
    rows = []
    create_reader(work / "detector", work / "recognizer", work / "reader")
    reader = load_reader(work / "reader")
    rows.append(("reader: oriented detector + recognizer",
                 _score(evaluate_frames, lambda batch: read_frames(reader, batch), truths, work / "eval-reader")))
    if args.spotter:
        create_reader(args.spotter, work / "recognizer", work / "reader-spotter")
        spotter_reader = load_reader(work / "reader-spotter")
        rows.append(("reader: spotter's detection head + recognizer",
                     _score(evaluate_frames, lambda batch: read_frames(spotter_reader, batch), truths,
                            work / "eval-reader-spotter")))
        spotter = load_spotter(args.spotter)
        rows.append(("spotter alone (its own reading)",
                     _score(evaluate_frames, lambda batch: spot_frames(spotter, batch), truths,
                            work / "eval-spotter")))

    print()
    print(f"recipe {recipe.source}; detector input {args.width}x{args.height}; {os.cpu_count()} CPU cores; load "
          f"average {os.getloadavg()[0]:.1f}; mixed precision {precision}")
    best = detector["best"]
    print(f"detector: {detector_seconds / 60:.1f} min, {detector['history'][-1]['step']} steps; best epoch "
          f"{best['epoch'] + 1} (val detection F1 {best['f1']:.4f})")
    print(f"recognizer: {recognizer_seconds / 60:.1f} min; best val string accuracy "
          f"{recognizer['best']['string_accuracy']:.4f}")
    print(f"test frames (seed 2): {len(truths)}")
    print(f"{'':48} {'det P':>7} {'det R':>7} {'det F1':>7} {'e2e F1':>7} {'str acc':>7} {'frames/s':>8}")
    for name, (score, rate) in rows:
        print(f"{name:48} {score.precision:7.4f} {score.recall:7.4f} {score.f1:7.4f} {score.e2e_f1:7.4f} "
              f"{score.string_accuracy:7.4f} {rate:8.1f}")
    report = {"recipe": str(recipe.source), "pages": args.pages, "train_lines": train_lines,
              "test_pages": len(truths),
              "detector_input": [args.width, args.height], "cpu_cores": os.cpu_count(),
              "mixed_precision": precision, "ema": args.ema,
              "detector_minutes": round(detector_seconds / 60, 2),
              "recognizer_minutes": round(recognizer_seconds / 60, 2),
              "detector_best_val_f1": best["f1"],
              "recognizer_best_val_string_accuracy": recognizer["best"]["string_accuracy"],
              "rows": [{"name": name, **score.as_dict(), "frames_per_s": rate} for name, (score, rate) in rows]}
    (work / "summary.json").write_text(json.dumps(report, indent=1))
    print(f"summary: {work / 'summary.json'}")


def pages_for_lines(lines: int, lines_per_page: float) -> int:
    """Pages that hold about `lines` lines at `lines_per_page` (at least one page)."""
    if lines_per_page <= 0:
        raise SystemExit("--lines: the validation pages hold no lines, so lines per page is unknown; use --pages")
    return max(1, math.ceil(lines / lines_per_page))


def _score(evaluate_frames, read, truths, out):
    t0 = time.perf_counter()
    score = evaluate_frames(read, truths, out)
    return score, len(truths) / (time.perf_counter() - t0)


if __name__ == "__main__":
    main()
