"""Train another recognizer on a finished `train_reader_small.py` work dir and read its test frames behind the
same detector: one recognizer option measured against the benchmark's own, with the data, the detector and
the frames held fixed.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/retrain_recognizer.py --bench /work/s2r/reader-bf16 \\
          --out /work/s2r/head/bf16-skip --head skip [--minutes 15] [--frames MORE_FRAMES_DIR ...]

Trains on BENCH/train with BENCH/val for the best epoch, with the benchmark's settings (batch 32, 200 steps an
epoch, cosine schedule over the budget, bfloat16 where the CPU has it), makes a reader of BENCH/detector and the
new recognizer, and prints detection and end-to-end F1 on BENCH/frames-test and on every --frames folder.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", required=True, type=Path, help="a finished train_reader_small.py --work dir")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--minutes", type=float, default=15.0, help="the recognizer's budget (benchmark: 15)")
    parser.add_argument("--head", default="skip", choices=["skip", "lstm"], help="RecognizerConfig.head")
    parser.add_argument("--frames", type=Path, nargs="*", default=[], help="more test-frame folders to read")
    args = parser.parse_args()

    from synthtext_industrial.train.fit_recognizer import train_recognizer
    from synthtext_industrial.train.frames import evaluate_frames, load_frames
    from synthtext_industrial.train.loop import TrainSettings, auto_precision
    from synthtext_industrial.train.reader import create_reader, load_reader, read_frames
    from synthtext_industrial.train.recognizer import RecognizerConfig

    t0 = time.perf_counter()
    settings = TrainSettings(epochs=1000, batch_size=32, steps_per_epoch=200, patience=1000,
                             max_seconds=args.minutes * 60 - 60, schedule="cosine", mixed_precision=auto_precision())
    recognizer = train_recognizer([args.bench / "train"], args.out / "recognizer", RecognizerConfig(head=args.head),
                                  settings, val=args.bench / "val")
    print(f"recognizer: {(time.perf_counter() - t0) / 60:.1f} min, best {recognizer['best']}", flush=True)
    create_reader(args.bench / "detector", args.out / "recognizer", args.out / "reader")
    reader = load_reader(args.out / "reader")
    rows = {}
    for frames in [args.bench / "frames-test", *args.frames]:
        summary = evaluate_frames(lambda batch: read_frames(reader, batch), load_frames(frames),
                                  args.out / f"eval-{frames.name}").as_dict()
        rows[str(frames)] = summary
        print(f"{frames}: {summary['frames']} frames, detection F1 {summary['f1']:.4f}, "
              f"e2e F1 {summary['e2e_f1']:.4f}, string accuracy of matched lines {summary['string_accuracy']:.4f}",
              flush=True)
    (args.out / "summary.json").write_text(json.dumps({"head": args.head, "minutes": args.minutes, "rows": rows},
                                                      indent=1))


if __name__ == "__main__":
    main()
