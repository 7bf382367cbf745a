"""Helpers shared by the peer drivers: the same code-like text for every tool, seeding, PNG encoding, the JSON report.

The drivers run inside the peers' own venvs (old NumPy/Pillow), so this file uses only the standard library,
NumPy and cv2, which every peer venv has.
"""
import argparse
import importlib.metadata
import json
import os
import random
import time

import cv2
import numpy as np

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_DIGITS = "0123456789"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FONT = os.path.join(REPO, "fonts", "dejavu", "DejaVuSansMono.ttf")
BACKGROUNDS = os.path.join(REPO, "backgrounds")


def code_lines(count, seed):
    """`count` industrial-marking style lines (lot, expiry, serial, time stamp), the same for the same seed."""
    rng = random.Random(seed)

    def token(n, alphabet):
        return "".join(rng.choice(alphabet) for _ in range(n))

    makers = [
        lambda: f"LOT {token(2, _LETTERS)}{token(5, _DIGITS)}",
        lambda: f"EXP {rng.randint(2025, 2031)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        lambda: f"S/N {token(3, _LETTERS)}-{token(6, _DIGITS + _LETTERS)}",
        lambda: f"{rng.randint(10, 23)}:{rng.randint(0, 59):02d} L{rng.randint(1, 9)} {token(4, _DIGITS)}",
        lambda: f"BBE {rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(25, 31)} {token(4, _DIGITS)}",
    ]
    return [rng.choice(makers)() for _ in range(count)]


def background_files():
    return sorted(os.path.join(BACKGROUNDS, f) for f in os.listdir(BACKGROUNDS) if f.endswith(".jpg"))


def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n", type=int, required=True, help="how many crops (or pages) to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="", help="driver-specific configuration name")
    parser.add_argument("--samples", default="", help="folder to write the first few outputs to (after timing)")
    return parser.parse_args()


def version(distribution):
    return importlib.metadata.version(distribution)


def seed_everything(seed):
    """The peers draw from the global `random` and `np.random` states; seed both (and cv2's) for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed)
    cv2.setRNGSeed(seed)


def png_bytes(image):
    """Encode like our crops are encoded (cv2 PNG, compression level 1), so the encode work is comparable."""
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return buf.tobytes()


class Tally:
    """Counts outputs and their sizes inside the timed loop; keeps the first few encoded outputs for the samples."""

    def __init__(self, keep=6):
        self.count = self.height = self.width = self.failed = 0
        self.kept = []
        self.keep = keep
        self.started = time.perf_counter()

    def add(self, encoded, height, width, text, ext="png"):
        self.count += 1
        self.height += height
        self.width += width
        if len(self.kept) < self.keep:
            self.kept.append((encoded, text, ext))

    def report(self, samples_dir, **extra):
        seconds = time.perf_counter() - self.started
        if samples_dir:
            os.makedirs(samples_dir, exist_ok=True)
            for i, (encoded, text, ext) in enumerate(self.kept):
                with open(os.path.join(samples_dir, f"{i:02d}.{ext}"), "wb") as f:
                    f.write(encoded)
                with open(os.path.join(samples_dir, f"{i:02d}.txt"), "w", encoding="utf-8") as f:
                    f.write(text)
        n = max(self.count, 1)
        result = {"outputs": self.count, "seconds": seconds, "failed": self.failed,
                  "mean_height": self.height / n, "mean_width": self.width / n}
        result.update(extra)
        print("RESULT " + json.dumps(result), flush=True)
