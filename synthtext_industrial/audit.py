"""Audit a recipe's legibility: render pages, score every labelled character, show the weakest ones.

The renderer keeps every character at or above the recipe's floors (`colour.min_legibility` for the mark,
`effects.min_legibility` after the effects). The audit lets a person check by eye that the floor means
"readable": a sheet of the least legible characters, each in its context with its score.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from .core.config import RecipeError
from .recipe import Recipe
from .render import render_sample

TILE_HEIGHT = 112  # px of the scaled crop on the sheet
CAPTION = 22  # px under each crop for its caption
SHEET_WIDTH = 1400


@dataclass(frozen=True)
class CharScore:
    """One labelled character's legibility after the effects, and where to find it."""

    score: float
    page: int
    char: str
    line_text: str
    kind: str  # marking kind
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of its coverage on the page


@dataclass
class AuditReport:
    recipe: str
    pages: int
    floor: float
    chars: list[CharScore] = field(default_factory=list)  # weakest first
    effect_draws: dict[int, int] = field(default_factory=dict)  # draws made -> pages
    adjusted: dict[str, int] = field(default_factory=dict)  # mark adjustment -> blocks

    def quantiles(self, percents=(1, 5, 10, 50)) -> dict[int, float]:
        scores = np.array([c.score for c in self.chars]) if self.chars else np.zeros(1)
        return {p: float(np.percentile(scores, p)) for p in percents}

    @property
    def below_floor(self) -> int:
        return sum(c.score < self.floor for c in self.chars)

    def summary(self) -> str:
        q = self.quantiles()
        draws = ", ".join(f"{n} draw{'s' * (n > 1)}: {pages}" for n, pages in sorted(self.effect_draws.items()))
        adjusted = ", ".join(f"{k}: {v}" for k, v in sorted(self.adjusted.items())) or "none"
        return (f"{self.recipe}: {len(self.chars)} characters on {self.pages} pages; legibility after effects "
                f"1% {q[1]:.2f}, 5% {q[5]:.2f}, 10% {q[10]:.2f}, median {q[50]:.2f}; "
                f"under the floor {self.floor:g}: {self.below_floor} "
                f"({100.0 * self.below_floor / max(len(self.chars), 1):.2f}%)\n"
                f"  pages by effect draws: {draws}; marks adjusted: {adjusted}")


def audit(recipe: Recipe, pages: int, seed: int = 0, start: int = 0, progress: bool = True) -> AuditReport:
    """Render `pages` pages and score every labelled character after the effects."""
    report = AuditReport(recipe=recipe.name, pages=pages, floor=recipe.effects.min_legibility)
    for index in tqdm(range(start, start + pages), desc="audit", unit="page", disable=not progress):
        sample = render_sample(recipe, seed, index, keep_char_masks=True, measure_legibility=True)
        draws = sample.records["effect_draws"]
        report.effect_draws[draws] = report.effect_draws.get(draws, 0) + 1
        for block in sample.records["blocks"]:
            for adjustment in block["marking"].get("adjusted", []):
                report.adjusted[adjustment] = report.adjusted.get(adjustment, 0) + 1
            scores = iter(block["char_legibility"])
            for line_index in range(*block["lines"]):
                line = sample.lines[line_index]
                for char, (x, y, coverage) in zip(line.chars, sample.char_masks[line_index]):
                    score = next(scores)
                    if score is None:
                        continue
                    h, w = coverage.shape
                    report.chars.append(CharScore(float(score), index, char.char, line.text,
                                                  block["marking"]["kind"], (x, y, x + w, y + h)))
    report.chars.sort(key=lambda c: (c.score, c.page))
    return report


def audit_sheet(report: AuditReport, recipe: Recipe, seed: int, worst: int = 48) -> np.ndarray:
    """A BGR contact sheet of the `worst` least legible characters: each in its context, boxed, with its score
    (red under the floor)."""
    tiles, pages = [], {}
    for c in report.chars[:worst]:
        if c.page not in pages:
            pages[c.page] = render_sample(recipe, seed, c.page).image
        tiles.append(_tile(pages[c.page], c, report.floor))
    return _arrange(tiles)


def _tile(page: np.ndarray, c: CharScore, floor: float) -> np.ndarray:
    x0, y0, x1, y1 = c.box
    pad = max(y1 - y0, x1 - x0)
    rows, cols = page.shape
    cx0, cy0, cx1, cy1 = max(x0 - pad, 0), max(y0 - pad // 2, 0), min(x1 + pad, cols), min(y1 + pad // 2, rows)
    crop = cv2.cvtColor(page[cy0:cy1, cx0:cx1], cv2.COLOR_GRAY2BGR)
    scale = TILE_HEIGHT / crop.shape[0]
    crop = cv2.resize(crop, (max(int(round(crop.shape[1] * scale)), 1), TILE_HEIGHT), interpolation=cv2.INTER_AREA
                      if scale < 1 else cv2.INTER_LINEAR)
    top_left = (int((x0 - cx0) * scale) - 1, int((y0 - cy0) * scale) - 1)
    bottom_right = (int((x1 - cx0) * scale) + 1, int((y1 - cy0) * scale) + 1)
    cv2.rectangle(crop, top_left, bottom_right, (0, 200, 0), 1)
    width = max(crop.shape[1], 150)
    tile = np.full((TILE_HEIGHT + CAPTION, width + 6, 3), 255, np.uint8)
    tile[:TILE_HEIGHT, :crop.shape[1]] = crop
    colour = (0, 0, 220) if c.score < floor else (60, 60, 60)
    caption = f"{c.char} {c.score:.2f} {c.kind} p{c.page}"
    cv2.putText(tile, caption, (2, TILE_HEIGHT + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return tile


def _arrange(tiles: list[np.ndarray]) -> np.ndarray:
    if not tiles:
        return np.full((TILE_HEIGHT + CAPTION, SHEET_WIDTH, 3), 255, np.uint8)
    rows, row, used = [], [], 0
    for tile in tiles:
        tile = tile[:, :SHEET_WIDTH]
        if row and used + tile.shape[1] > SHEET_WIDTH:
            rows.append(row)
            row, used = [], 0
        row.append(tile)
        used += tile.shape[1]
    rows.append(row)
    height = TILE_HEIGHT + CAPTION
    return np.vstack([np.hstack(r + [np.full((height, SHEET_WIDTH - sum(t.shape[1] for t in r), 3), 255, np.uint8)])
                      for r in rows])


def sample_problems(recipe, samples: int = 8, seed: int = 0) -> list[str]:
    """Render the first `samples` pages and name each one without text that the recipe did not ask for.

    The proof above covers the text; this covers the rest of what placement depends on (camera tilt,
    several blocks on one page) on a few real pages.
    """
    from .render import render_sample
    problems = []
    for index in range(samples):
        try:
            sample = render_sample(recipe, seed, index)
        except RecipeError as error:
            problems.append(str(error).removeprefix(f"{recipe.source}: "))
            continue
        if not sample.lines and not sample.records.get("empty_page"):
            problems.append(f"sample {index} (seed {seed}) has no text, and layout.empty_pages did not ask for it")
    return problems
