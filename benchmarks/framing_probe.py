"""How much a trained recognizer's real accuracy depends on how its crops are framed.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/framing_probe.py RUN --real /work/realsets/fuelpump-7seg
      [--pads 0 0.05 0.1 0.15 0.2 0.25] [--limit N]

Reads every real crop as it is and with a band of its own edge rows added above and below (`--pads`, each a
fraction of the crop's height per side: the text becomes a smaller share of the crop, as in a looser framing),
and prints the string accuracy of each, scored by the set's rule as sim2real.py scores it. A model whose figure swings with a tenth of padding has learnt one framing from its recipe:
widen or move the recipe's framing (`crops`, `display.margin_*`) towards the real croppers' and train again.
Beyond about a tenth the replicated edge rows stop looking like any real crop, so read the small pads.
No labels are used for anything but the score.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "realsets"))
from common import load_set, rule_from, score  # noqa: E402


def padded(image: np.ndarray, fraction: float) -> np.ndarray:
    rows = int(round(fraction * image.shape[0]))
    return cv2.copyMakeBorder(image, rows, rows, 0, 0, cv2.BORDER_REPLICATE) if rows else image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a trained recognizer run")
    parser.add_argument("--real", type=Path, required=True, help="folder with labels.tsv (and set.json)")
    parser.add_argument("--pads", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.25])
    parser.add_argument("--limit", type=int, default=None, help="read only the first N crops")
    args = parser.parse_args()

    from synthtext_industrial.train.evaluate import labelled_images, predict_all
    from synthtext_industrial.train.runs import load_recognizer

    rows, meta = load_set(args.real)
    rule = rule_from(meta.get("scoring"))
    items = list(labelled_images(args.real / "labels.tsv"))[: args.limit]
    model, config = load_recognizer(args.run)
    variants = [(f"{pad:.2f} of the height added above and below", lambda im, p=pad: padded(im, p))
                for pad in args.pads]
    print(f"{args.run} on {args.real} ({len(items)} crops; scoring: {rule.describe()})")
    for name, change in variants:
        got = predict_all(model, config, [(src, change(image), truth) for src, image, truth in items])
        result = score([p.truth for p in got], [p.text for p in got], rule)
        print(f"  {result.string_accuracy:.4f} string, {result.char_accuracy:.4f} char  {name}")


if __name__ == "__main__":
    main()
