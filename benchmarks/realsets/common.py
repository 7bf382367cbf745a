"""What the real-set tools share: reading a set folder, its scoring rule, alignment confusions, picture sheets.

A set folder (written by build.py) holds `labels.tsv` (`path<TAB>text`, paths relative to the file, as
`synthtext-industrial evaluate --images DIR` reads it), the images, `set.json` (source, commit, licence and the
scoring rule) and `sheet.png`. Scoring rule fields (all optional):
  ignore_case   compare upper-cased texts
  only          compare only these characters (others are removed from both texts), as `evaluate --only`
  cut_at        cut the *prediction* at the first of these characters before comparing (the fuel-pump set's
                labels give the integer litres while the display also shows decimals)
  round_ok      with cut_at: a prediction `I.D` also counts as right when the label is I rounded to the nearest
                integer (the fuel-pump labels are sometimes rounded: the display 53.56 is labelled 54)
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DIGITS = "0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Rule:
    ignore_case: bool = False
    only: str | None = None
    cut_at: str | None = None
    round_ok: bool = False

    def pair(self, truth: str, prediction: str) -> tuple[str, str]:
        """(truth, prediction) as compared."""
        t, p = self.truth(truth), self.prediction(prediction)
        if self.round_ok and self.cut_at and t != p:
            number = re.fullmatch(r"\s*(\d+)[" + re.escape(self.cut_at) + r"](\d+)\s*", prediction)
            if number and str(round(float(f"{number[1]}.{number[2]}"))) == t:
                p = t
        return t, p

    def truth(self, text: str) -> str:
        return self._filter(text)

    def prediction(self, text: str) -> str:
        if self.cut_at:
            for k, c in enumerate(text):
                if c in self.cut_at:
                    text = text[:k]
                    break
        return self._filter(text)

    def _filter(self, text: str) -> str:
        if self.ignore_case:
            text = text.upper()
        if self.only is not None:
            allowed = set(self.only.upper() if self.ignore_case else self.only)
            text = "".join(c for c in text if c in allowed)
        return text

    def describe(self) -> str:
        parts = (["case-insensitive"] if self.ignore_case else []) + \
                ([f"only {self.only!r}"] if self.only is not None else []) + \
                ([f"prediction cut at {self.cut_at!r}"] if self.cut_at else []) + \
                (["or rounded"] if self.round_ok else [])
        return ", ".join(parts) or "exact"


def rule_from(data: dict | None) -> Rule:
    data = data or {}
    return Rule(bool(data.get("ignore_case")), data.get("only"), data.get("cut_at"), bool(data.get("round_ok")))


def load_set(folder: str | Path) -> tuple[list[tuple[Path, str]], dict]:
    """[(image path, label)] and the set's set.json (empty dict if absent)."""
    folder = Path(folder)
    rows = []
    for number, line in enumerate((folder / "labels.tsv").read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            path, text = line.split("\t", 1)
            rows.append((folder / path, text))
    meta_path = folder / "set.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    return rows, meta


# ----------------------------------------------------------------------------- scoring

def edit_ops(truth: str, prediction: str) -> list[tuple[str, str]]:
    """An optimal alignment as (truth char, predicted char) pairs; '' marks an insertion or a deletion."""
    n, m = len(truth), len(prediction)
    cost = np.zeros((n + 1, m + 1), np.int32)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1,
                             cost[i - 1, j - 1] + (truth[i - 1] != prediction[j - 1]))
    pairs, i, j = [], n, m
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (truth[i - 1] != prediction[j - 1]):
            pairs.append((truth[i - 1], prediction[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            pairs.append((truth[i - 1], ""))
            i -= 1
        else:
            pairs.append(("", prediction[j - 1]))
            j -= 1
    return pairs[::-1]


def char_accuracy(truth: str, prediction: str) -> float:
    """1 - edit distance / longer length (the project's measure, synthtext_industrial/train/text.py)."""
    longest = max(len(truth), len(prediction))
    if not longest:
        return 1.0
    distance = sum(a != b for a, b in edit_ops(truth, prediction))
    return 1.0 - distance / longest


@dataclass
class Score:
    count: int
    string_accuracy: float
    char_accuracy: float
    confusions: list[tuple[str, int]]  # "T>P" (truth char read as P; '∅' for nothing), commonest first
    string_errors: list[tuple[str, int]]  # "truth -> prediction" whole-string errors seen more than once


def score(truths: list[str], predictions: list[str], rule: Rule, top: int = 10) -> Score:
    pairs = [rule.pair(a, b) for a, b in zip(truths, predictions)]
    t, p = [a for a, _ in pairs], [b for _, b in pairs]
    right = sum(a == b for a, b in zip(t, p))
    chars = [char_accuracy(a, b) for a, b in zip(t, p)]
    confusions: Counter = Counter()
    for a, b in zip(t, p):
        for x, y in edit_ops(a, b):
            if x != y:
                confusions[f"{x or '∅'}>{y or '∅'}"] += 1
    strings = Counter(f"{a} -> {b}" for a, b in zip(t, p) if a != b)
    n = max(len(t), 1)
    return Score(len(t), right / n, sum(chars) / n, confusions.most_common(top),
                 [(s, c) for s, c in strings.most_common(top) if c > 1])


# ----------------------------------------------------------------------------- pictures

def caption_tile(image: np.ndarray, lines: list[str], width: int = 240, height: int = 60) -> np.ndarray:
    """The image fitted into width x height (grey, aspect kept) above a caption strip."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape[:2]
    s = min(width / w, height / h)
    fitted = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                        interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    tile = np.full((height, width), 96, np.uint8)
    y, x = (height - fitted.shape[0]) // 2, (width - fitted.shape[1]) // 2
    tile[y:y + fitted.shape[0], x:x + fitted.shape[1]] = fitted
    caption = np.full((15 * len(lines) + 4, width), 24, np.uint8)
    for k, text in enumerate(lines):
        cv2.putText(caption, text.encode("ascii", "replace").decode()[:40], (3, 13 + 15 * k),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.42, 255, 1, cv2.LINE_AA)
    return np.vstack([tile, caption, np.zeros((3, width), np.uint8)])


def grid(tiles: list[np.ndarray], columns: int = 6) -> np.ndarray:
    if not tiles:
        return np.zeros((8, 8), np.uint8)
    rows = []
    for k in range(0, len(tiles), columns):
        row = tiles[k:k + columns]
        row += [np.zeros_like(tiles[0])] * (columns - len(row))
        rows.append(np.hstack([np.pad(t, ((0, 0), (0, 3))) for t in row]))
    return np.vstack(rows)


def contact_sheet(rows: list[tuple[Path, str]], out: Path, count: int = 48, seed: int = 0) -> None:
    """`count` images picked evenly at random (fixed seed) with their labels."""
    pick = np.random.default_rng(seed).permutation(len(rows))[:count]
    tiles = []
    for k in sorted(pick):
        path, text = rows[k]
        image = cv2.imread(str(path))
        tiles.append(caption_tile(image, [text, f"{image.shape[1]}x{image.shape[0]}"]))
    cv2.imwrite(str(out), grid(tiles))
