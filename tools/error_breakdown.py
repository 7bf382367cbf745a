"""Where a recognizer goes wrong: string accuracy by font, marking style and legibility, and the commonest
single-character confusions, for an `evaluate` run on a generated test set.

    PYTHONPATH=. .venv/bin/python tools/error_breakdown.py TEST_OUT RUN/eval-test/predictions.csv [--list]

The shards do not store each block's render parameters, but the manifest holds the recipe and seed, and a
sample depends on (seed, index) only, so the pages are rendered again to recover them.
"""
from __future__ import annotations

import argparse
import collections
import csv
import json
from pathlib import Path

import yaml

from synthtext_industrial.recipe import recipe_from_dict
from synthtext_industrial.render import render_sample

LEGIBILITY_BINS = ((0, 8, "< 8"), (8, 15, "8-15"), (15, float("inf"), ">= 15"))


def block_of_each_line(out: Path, rows: list[dict]) -> dict[tuple[int, int], dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    recipe = recipe_from_dict(yaml.safe_load(manifest["recipe"]), text=manifest["recipe"])
    blocks = {}
    for index in sorted({int(row["source"].split(":")[1]) for row in rows}):
        sample = render_sample(recipe, manifest["seed"], index)
        for block in sample.records["blocks"]:
            for line in range(*block["lines"]):
                blocks[(index, line)] = block
    return blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the generated dataset the predictions were made on")
    parser.add_argument("predictions", type=Path, help="predictions.csv written by `evaluate`")
    parser.add_argument("--list", action="store_true", help="also list every wrong line with its parameters")
    args = parser.parse_args()

    rows = list(csv.DictReader(args.predictions.open(encoding="utf-8")))
    blocks = block_of_each_line(args.out, rows)
    groups: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    confusions: collections.Counter = collections.Counter()
    wrong = []
    for row in rows:
        _seed, index, line = map(int, row["source"].split(":"))
        block = blocks[(index, line)]
        right = row["correct"] == "1"
        legibility = block["marking"].get("legibility", float("nan"))
        band = next((name for lo, hi, name in LEGIBILITY_BINS if lo <= legibility < hi), "unmeasured")
        for key in (("marking", block["marking"]["kind"]), ("font", block["font"]), ("legibility", band)):
            groups[key][0] += 1
            groups[key][1] += right
        if right:
            continue
        truth, read = row["truth"], row["prediction"]
        differ = [(a, b) for a, b in zip(truth, read) if a != b]
        confusions[f"{differ[0][0]}->{differ[0][1]}" if len(truth) == len(read) and len(differ) == 1
                   else "several characters"] += 1
        wrong.append((truth, read, float(row["confidence"]), block))

    print(f"{len(rows)} lines, string accuracy {sum(r['correct'] == '1' for r in rows) / len(rows):.4f}")
    for (kind, name), (count, right) in sorted(groups.items()):
        print(f"  {kind:10} {name:30} {count:5d} lines  string accuracy {right / count:.3f}")
    print("wrong lines by confusion:", ", ".join(f"{k} {v}" for k, v in confusions.most_common(12)))
    if args.list:
        for truth, read, confidence, block in wrong:
            print(f"  {truth:14} read {read:14} {confidence:.2f}  {block['font']:28} {block['marking']['kind']:8} "
                  f"legibility {block['marking'].get('legibility', float('nan')):5.1f}  height {block['height_px']:.0f}")


if __name__ == "__main__":
    main()
