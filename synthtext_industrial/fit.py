"""Does the recipe's text fit the page? Proved before anything is rendered.

The renderer shrinks a block that is too large for its region, but never below the
recipe's smallest text height (`typography.height_px` min). So a recipe is only valid
if its largest possible block fits every region at that height: the longest text each
line template can print, in its widest glyphs, set in every font the block may use, at
the largest aspect, character gap, stroke and line spacing of the recipe, turned by
every angle of `layout.rotation`. `fit_problems` checks exactly that and, when it does
not fit, finds the largest text height that would.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stages.dotmatrix import DotMatrixSource
from .stages.fonts import FontFace, load_font, quantise_aspect
from .stages.typeset import extent, typeset
from .stages.text import (CLASS, LITERAL, DIGITS, MONTHS, TITLE_MONTHS, FieldSpec, GeneratedLine, TextConfig,
                          parse_date_format, parse_template)

MIN_HEIGHT = 6  # the smallest typography.height_px allows
PROBE_EM = 100  # em size at which the widths of candidate characters are compared
MAX_INDEX = 10**7  # a counter without modulo is sized for datasets of up to ten million pages
DATE_WIDTHS = {"Y": 4, "y": 2, "m": 2, "d": 2, "j": 3, "V": 2, "G": 4, "g": 2, "u": 1, "H": 2, "M": 2}


class _Widths:
    """Picks the widest of several texts in one font (a dot-matrix cell is as wide for every character)."""

    def __init__(self, font):
        self.font = font

    def width(self, text: str) -> float:
        if isinstance(self.font, DotMatrixSource):
            return float(len(text))
        return load_font(self.font, PROBE_EM).getlength(text)

    def widest(self, options) -> str:
        options = list(options)
        return max(options, key=lambda t: (self.width(t), t)) if options else ""


def _longest_field(spec: FieldSpec, widths: _Widths) -> str:
    if spec.pattern is not None:
        value = _longest_template(spec.pattern, None, widths)
    elif spec.date is not None:
        digit = widths.widest(DIGITS)
        tokens, _ = parse_date_format(spec.date.format)
        value = "".join(text if not directive else widths.widest(MONTHS) if text == "b"
                        else widths.widest(TITLE_MONTHS) if text == "h"
                        else "%" if text == "%" else digit * DATE_WIDTHS[text] for directive, text in tokens)
    elif spec.counter is not None:
        c = spec.counter
        top = c.modulo - 1 if c.modulo is not None else c.start + c.step * (MAX_INDEX - 1)
        value = widths.widest(DIGITS) * max(c.width, len(str(top)))
    elif spec.wordlist is not None:
        value = widths.widest(spec.wordlist.words)
    else:
        value = widths.widest(spec.choices)
    if spec.check_digit is not None:
        value += widths.widest(DIGITS | ({"X"} if spec.check_digit == "mod11" else set()))
    return value


def _longest_template(template: str, cfg: TextConfig | None, widths: _Widths) -> str:
    """The widest text a template can print: every class at its longest, in its widest character."""
    parts = []
    for token in parse_template(template).tokens:
        if token[0] == LITERAL:
            parts.append(token[1])
        elif token[0] == CLASS:
            parts.append(widths.widest(token[1]) * token[3])
        else:
            parts.append(_longest_field(cfg.fields[token[1]], widths))
    return "".join(parts)


def _worst_dot_style(source: DotMatrixSource) -> dict:
    """The dot style that makes the widest glyphs (largest dots, spread and smear; no jitter or dropout)."""
    return {"bitmap": source.bitmap, "dot_diameter": source.dot_diameter[1], "roundness": 1.0, "jitter": 0.0,
            "ink_spread": source.ink_spread[1], "missing_dots": 0.0, "smear": source.smear[1]}


def _turned(width: float, height: float, rotation: tuple[float, float]) -> tuple[float, float]:
    """The largest axis-aligned width and height of a width x height box over the rotation range."""
    angles = np.radians(np.concatenate([np.linspace(rotation[0], rotation[1], 91),
                                        [a for a in (-180, -90, 0, 90, 180) if rotation[0] <= a <= rotation[1]]]))
    c, s = np.abs(np.cos(angles)), np.abs(np.sin(angles))
    return float((width * c + height * s).max()), float((width * s + height * c).max())


def _areas(recipe) -> list[tuple[str, float, float]]:
    """(name, width, height) of every area a block may be placed in, less the margins."""
    W, H, m = recipe.canvas.width, recipe.canvas.height, recipe.layout.margin_px
    if not recipe.layout.regions:
        return [("the canvas less layout.margin_px", max(W - 2 * m, 0), max(H - 2 * m, 0))]
    areas = []
    for name in sorted(recipe.layout.regions):
        r = recipe.layout.regions[name]
        x0, x1 = np.clip([r.x[0] * W, r.x[1] * W], m, W - m)
        y0, y1 = np.clip([r.y[0] * H, r.y[1] * H], m, H - m)
        areas.append((f"layout.regions.{name} less layout.margin_px", float(x1 - x0), float(y1 - y0)))
    return areas


@dataclass
class Misfit:
    """A block that does not fit at the recipe's smallest text height."""

    template: int
    font: str
    text: list[str]
    size: tuple[float, float]  # what it needs, turned
    area: tuple[str, float, float]  # where it must fit
    largest_height: float  # the largest text height at which it fits (0: none)


def _block_size(lines: list[str], font, height: float, recipe) -> tuple[float, float]:
    typo = recipe.typography
    style = _worst_dot_style(font) if isinstance(font, DotMatrixSource) else None
    set_lines = typeset([GeneratedLine(t, ()) for t in lines], font, style, height,
                         quantise_aspect(typo.aspect[1]), typo.char_gap[1] * height, typo.stroke_px[1],
                         typo.line_spacing[1], "left", np.random.default_rng(0))
    x0, y0, x1, y1 = extent(set_lines)
    return _turned(x1 - x0, y1 - y0, recipe.layout.rotation)


def misfits(recipe) -> list[Misfit]:
    """Each block template whose largest form does not fit at `typography.height_px` min (the worst font)."""
    found = []
    smallest = recipe.typography.height_px[0]
    areas = _areas(recipe)
    for t, block in enumerate(recipe.text.blocks):
        worst = None
        for font, _weight in recipe.font_choices(t):
            widths = _Widths(font)
            lines = [_longest_template(line, recipe.text, widths) for line in block.lines]

            def fits(height: float, area) -> bool:
                w, h = _block_size(lines, font, height, recipe)
                return w <= area[1] and h <= area[2]

            for area in areas:
                if fits(smallest, area):
                    continue
                lo, hi = MIN_HEIGHT - 1, math.ceil(smallest) - 1  # the largest whole height that fits (lo: none)
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if fits(mid, area) else (lo, mid - 1)
                label = font.label if isinstance(font, FontFace) else f"bitmap:{font.bitmap}"
                misfit = Misfit(t, label, lines, _block_size(lines, font, smallest, recipe), area, lo)
                if worst is None or misfit.largest_height < worst.largest_height:
                    worst = misfit
        if worst is not None:
            found.append(worst)
    return found


def fit_problems(recipe) -> list[str]:
    """One line per block template that cannot fit, giving the largest text height that would."""
    problems = []
    typo, lay = recipe.typography, recipe.layout
    for m in misfits(recipe):
        largest = int(m.largest_height)
        room = "shorten the text or give it more room (canvas, regions, margin_px, rotation)"
        advice = (f"the largest text height at which it fits is {largest} px: lower typography.height_px min to "
                  f"at most {largest}, or {room}" if largest >= MIN_HEIGHT else
                  f"it does not fit at any text height of {MIN_HEIGHT} px or more: {room}")
        problems.append(
            f"text.blocks[{m.template}] does not fit: at typography.height_px min {typo.height_px[0]:g} px in font "
            f"{m.font} (aspect up to {typo.aspect[1]:g}, char_gap up to {typo.char_gap[1]:g}, stroke_px up to "
            f"{typo.stroke_px[1]}, line_spacing up to {typo.line_spacing[1]:g}, rotation {lay.rotation[0]:g} to "
            f"{lay.rotation[1]:g} degrees) its longest form {' / '.join(m.text)!r} needs {m.size[0]:.0f} x "
            f"{m.size[1]:.0f} px, but {m.area[0]} is {m.area[1]:.0f} x {m.area[2]:.0f} px; {advice}")
    return problems
