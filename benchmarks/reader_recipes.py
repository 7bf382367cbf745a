"""The frame reader's figure for every bundled recipe: train_reader_small.py once per recipe, then one table.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/reader_recipes.py [--recipes default embossed ...]
      [--lines 3200 | --pages N] [--detector-minutes 8 --recognizer-minutes 8] [--work /tmp/reader-recipes]
Each recipe trains in its own process (train_reader_small.py, in WORK/RECIPE) and leaves WORK/RECIPE/summary.json.
Every recipe trains on about `--lines` lines (train_reader_small.py --lines: as many pages as that takes at the
recipe's lines per page, so a recipe of one plate per page gives its recognizer as many lines as one of two codes
per page); `--pages` fixes the page count instead. A recipe whose summary is there is not trained again, so a
stopped run goes on with the next recipe (one stopped mid-training is named, for you to clear), and `--table`
prints the table of what is there without training. One recipe at a time: the budgets are wall-clock minutes,
and two trainings side by side on a 2-core machine would halve each other's steps.

`lines.yaml` is left out by default: its 512x128 images are single line crops, not frames.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAME_RECIPES = ("default", "embossed", "inkjet-dotmatrix", "laser-metal", "licence-plate", "meter-digits",
                 "meter-lcd", "seven-segment", "thermal-label")


def train(recipe: str, work: Path, args) -> None:
    command = [sys.executable, str(HERE / "train_reader_small.py"), "--recipe", recipe, "--work", str(work),
               *(["--pages", str(args.pages)] if args.pages else ["--lines", str(args.lines)]),
               "--test-pages", str(args.test_pages),
               "--detector-minutes", str(args.detector_minutes), "--recognizer-minutes", str(args.recognizer_minutes),
               "--mixed-precision", args.mixed_precision]
    print(f"== {recipe}: {' '.join(command[1:])}", flush=True)
    with open(work.with_suffix(".log"), "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        print(f"   failed (exit {done.returncode}); see {work.with_suffix('.log')}", flush=True)


def table(work: Path, recipes) -> str:
    out = ["| recipe | pages | lines | detector / recognizer min | precision | det P | det R | det F1 | e2e F1 | "
           "string acc. of matched |",
           "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for recipe in recipes:
        path = work / recipe / "summary.json"
        if not path.exists():
            out.append(f"| {recipe} | – | – | not run | | | | | | |")
            continue
        report = json.loads(path.read_text())
        row = report["rows"][0]  # the oriented detector + recognizer
        out.append(f"| {recipe} | {report['pages']} | {report.get('train_lines', '–')} | "
                   f"{report['detector_minutes']:.0f} / "
                   f"{report['recognizer_minutes']:.0f} | {report.get('mixed_precision', 'off')} | "
                   f"{row['precision']:.4f} | {row['recall']:.4f} | "
                   f"{row['f1']:.4f} | {row['e2e_f1']:.4f} | {row['string_accuracy']:.4f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(FRAME_RECIPES))
    parser.add_argument("--lines", type=int, default=3200,
                        help="training lines per recipe (3200: about 1500 pages of default.yaml)")
    parser.add_argument("--pages", type=int, default=None, help="training pages per recipe instead of --lines")
    parser.add_argument("--test-pages", type=int, default=200)
    parser.add_argument("--detector-minutes", type=float, default=8.0)
    parser.add_argument("--recognizer-minutes", type=float, default=8.0)
    parser.add_argument("--mixed-precision", default="auto", choices=["auto", "off", "bfloat16", "float16"],
                        help="passed to train_reader_small.py (auto: bfloat16 on a CPU that has it)")
    parser.add_argument("--work", default="/tmp/reader-recipes", help="one scratch folder per recipe under it")
    parser.add_argument("--table", action="store_true", help="print the table of finished recipes; train nothing")
    args = parser.parse_args()

    work = Path(args.work)
    if not args.table:
        work.mkdir(parents=True, exist_ok=True)
        for recipe in args.recipes:
            folder = work / recipe
            if (folder / "summary.json").exists():
                continue
            if (folder / "detector").exists() or (folder / "recognizer").exists():
                print(f"== {recipe}: an earlier run stopped before its summary; remove {folder}/detector and "
                      f"{folder}/recognizer to train it again (its generated pages are reused)", flush=True)
                continue
            train(recipe, folder, args)
    print(table(work, args.recipes))


if __name__ == "__main__":
    main()
