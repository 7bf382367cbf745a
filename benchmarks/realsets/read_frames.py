"""A trained frame reader on a real frame set whose quads mark a region, not the text: the fuel-pump frames.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/realsets/read_frames.py READER /work/realsets/fuelpump-frames
      [--out /tmp/real-frames] [--limit N]
A set such as fuelpump-frames labels each photo with the quad of the display *window* and only part of what the
window shows (the integer litres, not the decimals), so `synthtext-industrial evaluate --frames` (IoU 0.5 with
the text's quad, exact strings) cannot score it. Here a frame's reading is the texts of the detections whose centre
lies in the labelled region, left to right, joined; it is compared with the label under the set's scoring rule
(`set.json`: only digits, cut at the decimal point, or rounded). Prints the frame string accuracy, how many regions
held no detection at all and how many detections fell outside every region, the commonest confusions; writes
`frames.csv` and `failures.png` (the worst frames, region and detections drawn) to --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import caption_tile, grid, rule_from, score  # noqa: E402


def inside(quad: np.ndarray, region: np.ndarray) -> bool:
    centre = quad.reshape(4, 2).mean(axis=0)
    return cv2.pointPolygonTest(region.reshape(4, 2).astype(np.float32), (float(centre[0]), float(centre[1])),
                                False) >= 0


def region_reading(lines, region: np.ndarray) -> str:
    """The texts of the detections centred in `region`, left to right, joined."""
    mine = [line for line in lines if inside(np.asarray(line.quad), region)]
    mine.sort(key=lambda line: float(np.asarray(line.quad)[:, 0].mean()))
    return "".join(line.text for line in mine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reader", help="a reader run (synthtext-industrial reader DETECTOR RECOGNIZER --out RUN)")
    parser.add_argument("set", type=Path, help="a frame set folder: labels.jsonl, images, set.json")
    parser.add_argument("--out", type=Path, default=Path("/tmp/real-frames"))
    parser.add_argument("--limit", type=int, default=None, help="the first N frames only")
    args = parser.parse_args()

    from tqdm import tqdm

    from synthtext_industrial.train.frames import load_frames
    from synthtext_industrial.train.reader import load_reader, read_frames

    meta = json.loads((args.set / "set.json").read_text()) if (args.set / "set.json").exists() else {}
    rule = rule_from(meta.get("scoring"))
    truths = load_frames(args.set)[:args.limit]
    reader = load_reader(args.reader)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, empty, outside = [], 0, 0
    for start in tqdm(range(0, len(truths), 8), desc="frames", unit="batch"):
        chunk = truths[start:start + 8]
        images = [cv2.imread(str(t.image), cv2.IMREAD_GRAYSCALE) for t in chunk]
        for truth, image, lines in zip(chunk, images, read_frames(reader, images)):
            regions = [np.asarray(t.quad) for t in truth.lines]
            outside += sum(not any(inside(np.asarray(line.quad), r) for r in regions) for line in lines)
            for t, region in zip(truth.lines, regions):
                reading = region_reading(lines, region)
                empty += not any(inside(np.asarray(line.quad), region) for line in lines)
                rows.append((truth, t.text, reading, region, lines))
    result = score([r[1] for r in rows], [r[2] for r in rows], rule)
    with open(args.out / "frames.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "truth", "reading", "right", "detections"])
        for truth, text, reading, _, lines in rows:
            t, p = rule.pair(text, reading)
            writer.writerow([truth.image.name, text, reading, int(t == p), len(lines)])
    tiles = []
    for truth, text, reading, region, lines in rows:
        t, p = rule.pair(text, reading)
        if t == p or len(tiles) >= 36:
            continue
        image = cv2.imread(str(truth.image), cv2.IMREAD_GRAYSCALE)
        cv2.polylines(image, [region.reshape(-1, 1, 2).astype(np.int32)], True, 255, 8)
        for line in lines:
            cv2.polylines(image, [np.asarray(line.quad).reshape(-1, 1, 2).astype(np.int32)], True, 0, 6)
        tiles.append(caption_tile(image, [f"truth {text}", f"read  {reading or '(nothing)'}"], 320, 180))
    cv2.imwrite(str(args.out / "failures.png"), grid(tiles, columns=4))
    print(f"{args.set.name}: {result.count} regions in {len(truths)} frames ({rule.describe()}); string accuracy "
          f"{result.string_accuracy:.4f}, character accuracy {result.char_accuracy:.4f}; {empty} regions with no "
          f"detection, {outside} detections outside every region")
    print("commonest confusions: " + ", ".join(f"{c} x{n}" for c, n in result.confusions))
    print(f"wrote {args.out / 'frames.csv'} and {args.out / 'failures.png'} (white: the labelled region, black: detections)")


if __name__ == "__main__":
    main()
