"""Procedural dot-matrix glyphs, as continuous-inkjet and drop-on-demand coders print them.

The dot positions come from public-domain X11 "misc-fixed" bitmap tables (bundled
in fonts/bitmap/); every dot is drawn fresh per sample with its own size,
position jitter, dropout, ink spread and smear, which no TrueType font can give.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Literal, get_args

import cv2
import numpy as np
from pydantic import Field, field_validator

from ..core.assets import bundled_dir
from .fonts import Glyph, check_lookalikes
from ..core.config import FloatRange, StrictModel
from ..core.streams import choose_key, uniform

FlagForm = Literal["table", "detached", "diagonal", "none"]  # how a 1 draws its flag: see flagged()
PunctForm = Literal["table", "narrow", "single"]  # how `.` and `:` draw their dots: see punctuated()
PUNCTUATION = ".:"

TABLES = {"5x8": "x11-misc-fixed-5x8.json", "6x12": "x11-misc-fixed-6x12.json",
          "7x13": "x11-misc-fixed-7x13.json", "9x15": "x11-misc-fixed-9x15.json"}
SUPERSAMPLE = 4  # dots are drawn at 4x and area-averaged, for antialiased edges


@dataclass(frozen=True)
class BitmapTable:
    name: str
    cell_w: int
    cap_top: int  # first row of a capital letter
    baseline: int  # row just below the capitals
    dots: dict[str, np.ndarray]  # char -> (n, 2) array of (row, col) of each dot

    @property
    def cap_rows(self) -> int:
        return self.baseline - self.cap_top

    def coverage(self) -> frozenset[str]:
        return frozenset(self.dots)


@cache
def load_table(name: str) -> BitmapTable:
    data = json.loads((bundled_dir("fonts") / "bitmap" / TABLES[name]).read_text(encoding="utf-8"))
    dots = {}
    for char, rows in data["glyphs"].items():
        dots[char] = np.array([(r, c) for r, row in enumerate(rows) for c, v in enumerate(row) if v == "#"],
                              dtype=np.float32).reshape(-1, 2)
    return BitmapTable(name, data["cell_w"], data["cap_rows"][0], data["cap_rows"][1] + 1, dots)


class DotMatrixSource(StrictModel):
    """Procedural dot-matrix text from a bitmap table (the look of small inkjet date/lot coders)."""

    bitmap: Literal["5x8", "6x12", "7x13", "9x15"] = Field(
        description="dot layout table: 6x12 is the 5x7 capital matrix of small inkjet coders")
    weight: float = Field(1.0, gt=0, description="relative chance of drawing this entry")
    dot_diameter: FloatRange(0.2, 2.0) = Field((0.75, 0.95), description="dot diameter, in dot pitches")
    roundness: FloatRange(0.0, 1.0) = Field((0.7, 1.0), description="1 = round dots, 0 = square dots")
    jitter: FloatRange(0.0, 0.3) = Field((0.0, 0.08), description="dot position noise (std), in dot pitches")
    ink_spread: FloatRange(0.0, 0.5) = Field((0.0, 0.15), description="ink bleed: grows and softens dots, in pitches")
    missing_dots: FloatRange(0.0, 0.5) = Field((0.0, 0.03), description="chance that a dot is not printed")
    smear: FloatRange(0.0, 1.5) = Field((0.0, 0.3), description="ink drag along the print direction, in pitches")
    lookalikes: list[str] = Field(
        ["0O"], description="groups of characters drawn alike apart from width, the one to keep first: in "
                            "every table O is 0 one dot wider")
    footless_1: float = Field(
        0.0, ge=0.0, le=1.0, description="chance per block that 1 is printed as a flag and a stem without its "
                                         "foot, as many coders' fonts print it (the tables draw a foot)")
    flag_1: dict[FlagForm, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"table": 1.0},
        description="weights per block of how 1's flag is printed: `table` as the table draws it, `detached` one "
                    "dot column further out with a gap before the stem (a lone dot), `diagonal` two dots running "
                    "down-left from the stem's top (the outer one clear of the stem), `none` a bare stem: coders' "
                    "5x7 fonts print all of these")

    punctuation: dict[PunctForm, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"table": 1.0},
        description="weights per block of how `.` and `:` are printed: `table` as the table draws them (a block "
                    "of 2x2 dots per point in most tables), `narrow` one dot column wide, `single` one dot per "
                    "point: coders' 5x7 fonts print the narrow and single forms")

    @field_validator("flag_1", "punctuation")
    @classmethod
    def _check_form_weights(cls, value, info):
        if sum(value.values()) <= 0:
            forms = get_args(FlagForm if info.field_name == "flag_1" else PunctForm)
            raise ValueError(f"needs a positive weight for one of {', '.join(forms)}")
        return value

    @field_validator("lookalikes")
    @classmethod
    def _check_lookalikes(cls, value):
        return list(check_lookalikes(value))

    def coverage(self) -> frozenset[str]:
        return load_table(self.bitmap).coverage()


def sample_dot_style(source: DotMatrixSource, rng: np.random.Generator) -> dict:
    """Per-block dot parameters (every character of a block shares the printer's settings)."""
    return {
        "bitmap": source.bitmap,
        "dot_diameter": uniform(rng, source.dot_diameter),
        "roundness": uniform(rng, source.roundness),
        "jitter": uniform(rng, source.jitter),
        "ink_spread": uniform(rng, source.ink_spread),
        "missing_dots": uniform(rng, source.missing_dots),
        "smear": uniform(rng, source.smear),
        # drawn only when asked for, so recipes without it keep their random streams (and pages)
        "footless_1": bool(source.footless_1 > 0 and rng.random() < source.footless_1),
        "flag_1": "table" if source.flag_1 == {"table": 1.0} else choose_key(rng, source.flag_1),
        **({} if source.punctuation == {"table": 1.0} else {"punctuation": choose_key(rng, source.punctuation)}),
    }


def _draw_dot(canvas: np.ndarray, cx: float, cy: float, diameter: float, roundness: float) -> None:
    """A filled rounded square (a circle at roundness 1) at supersampled coordinates."""
    half = diameter / 2
    radius = roundness * half
    x0, x1, y0, y1 = cx - half, cx + half, cy - half, cy + half
    if radius >= half - 0.5:
        cv2.circle(canvas, (round(cx), round(cy)), max(round(half), 1), 255, -1, lineType=cv2.LINE_8)
        return
    r = round(radius)
    cv2.rectangle(canvas, (round(x0 + r), round(y0)), (round(x1 - r), round(y1)), 255, -1)
    cv2.rectangle(canvas, (round(x0), round(y0 + r)), (round(x1), round(y1 - r)), 255, -1)
    if r > 0:
        for px, py in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
            cv2.circle(canvas, (round(px), round(py)), r, 255, -1)


def stem_column(dots: np.ndarray) -> float:
    """The column of a glyph's stem: the one with most dots."""
    columns, counts = np.unique(dots[:, 1], return_counts=True)
    return columns[np.argmax(counts)]


def footless(dots: np.ndarray) -> np.ndarray:
    """A glyph's dots [(row, col)] without its foot: of the bottom row only the stem's dot stays. For 1 this
    leaves the flag and the stem."""
    stem = stem_column(dots)
    bottom = dots[:, 0] == dots[:, 0].max()
    return dots[~bottom | (dots[:, 1] == stem)]


def flagged(dots: np.ndarray, form: str) -> np.ndarray:
    """A 1's dots [(row, col)] with its flag (the dots left of the stem above the bottom row) as the table draws
    it, one column further out (`detached`: a gap between flag and stem), as two dots running down-left from the
    stem's top (`diagonal`) or gone (`none`: a bare stem)."""
    if form == "table":
        return dots
    stem = stem_column(dots)
    flag = (dots[:, 1] < stem) & (dots[:, 0] < dots[:, 0].max())
    if form == "none":
        return dots[~flag]
    if form == "diagonal":
        top = dots[dots[:, 1] == stem, 0].min()
        diagonal = np.array([(top + 1, stem - 1), (top + 2, stem - 2)], dtype=dots.dtype)
        return np.concatenate([dots[~flag], diagonal])
    moved = dots.copy()
    moved[flag, 1] -= 1
    return moved


def punctuated(dots: np.ndarray, form: str) -> np.ndarray:
    """A `.` or `:`'s dots [(row, col)] as the table draws them, with each point (a run of dot rows) cut to its
    middle column where it is widest (`narrow`: a 2x2 block keeps two dots, a plus-shaped point its centre, so
    no point grows a tail like a comma's), or to one dot (`single`) in its middle row; of an even run, the
    lowest point keeps its lower middle row (a full stop stays down) and the others their upper one."""
    if form == "table":
        return dots
    rows = np.unique(dots[:, 0])
    starts = [0] + [i for i in range(1, len(rows)) if rows[i] > rows[i - 1] + 1]
    kept = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(rows)
        point = dots[(dots[:, 0] >= rows[start]) & (dots[:, 0] <= rows[end - 1])]
        columns = np.unique(point[:, 1])
        middle = columns[(len(columns) - 1) // 2]
        if form == "narrow":  # in the rows where the point is widest: a plus-shaped point keeps its centre only
            widths = {r: int((point[:, 0] == r).sum()) for r in np.unique(point[:, 0])}
            widest = [r for r, w in widths.items() if w == max(widths.values())]
            kept.append(point[(point[:, 1] == middle) & np.isin(point[:, 0], widest)])
        else:
            n = end - start
            row = rows[start + n // 2] if end == len(rows) else rows[start + (n - 1) // 2]
            kept.append(np.array([(row, middle)], dtype=dots.dtype))
    return np.concatenate(kept)


def dot_glyph(char: str, height_px: float, style: dict, rng: np.random.Generator, aspect: float = 1.0) -> Glyph:
    """Render one character as dots; `height_px` is the capital height (dot rows times pitch).

    `aspect` spreads the dot columns apart (a faster product under the print head); dots stay round.
    """
    table = load_table(style["bitmap"])
    pitch = height_px / table.cap_rows
    advance = table.cell_w * pitch * aspect
    dots = table.dots.get(char)
    if dots is None or len(dots) == 0:
        return Glyph(np.zeros((0, 0), np.uint8), 0, 0, advance)
    if char == "1" and style.get("footless_1"):
        dots = footless(dots)
    if char == "1":
        dots = flagged(dots, style.get("flag_1", "table"))
    if char in PUNCTUATION:
        dots = punctuated(dots, style.get("punctuation", "table"))
    keep = rng.random(len(dots)) >= style["missing_dots"]
    if not keep.any():
        keep[int(rng.integers(len(dots)))] = True  # a character never vanishes entirely
    dots = dots[keep]
    jitter = rng.normal(0.0, style["jitter"] * pitch, size=dots.shape).astype(np.float32)
    # dot centres relative to the pen (x) and the baseline (y), in pixels
    xs = (dots[:, 1] + 0.5) * pitch * aspect + jitter[:, 1]
    ys = (dots[:, 0] - table.baseline + 0.5) * pitch + jitter[:, 0]
    diameter = max(style["dot_diameter"] * (1 + style["ink_spread"]) * pitch, 1.5)
    smear_px = style["smear"] * pitch
    margin = diameter / 2 + 2
    left = int(np.floor(xs.min() - margin))
    top = int(np.floor(ys.min() - margin))
    width = int(np.ceil(xs.max() + margin + smear_px)) - left
    height = int(np.ceil(ys.max() + margin)) - top
    s = SUPERSAMPLE
    canvas = np.zeros((height * s, width * s), np.uint8)
    for x, y in zip(xs, ys):
        _draw_dot(canvas, (x - left) * s, (y - top) * s, diameter * s, style["roundness"])
    bitmap = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    if style["ink_spread"] > 0.02:
        sigma = min(style["ink_spread"] * pitch * 0.5, 0.6)
        bitmap = cv2.GaussianBlur(bitmap, (0, 0), sigma)
    if smear_px >= 1:
        # ink dragged along the print direction: trailing copies fading to 80% strength
        steps = int(round(smear_px))
        smeared = bitmap.copy()
        for k in range(1, steps + 1):
            shifted = np.zeros_like(bitmap)
            shifted[:, k:] = bitmap[:, :-k]
            np.maximum(smeared, (shifted * (1 - 0.2 * k / steps)).astype(np.uint8), out=smeared)
        bitmap = smeared
    rows, cols = np.nonzero(bitmap)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    return Glyph(np.ascontiguousarray(bitmap[r0:r1, c0:c1]), left + int(c0), top + int(r0), advance)
