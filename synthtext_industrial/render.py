"""Render one sample of a recipe: background, text blocks, marking, post-effects.

Each character is drawn once in its block's own frame and warped into the page
through the block's homography; its box is then measured from the warped ink
and mapped back through the same matrix, so every quad is tight around the
pixels it labels, whatever the font, dots, stroke, stretch, rotation or tilt.
All randomness is drawn, in a fixed order, from the generator of (seed, index).
"""
from __future__ import annotations

from dataclasses import dataclass

import copy
import math
import threading

import cv2
import numpy as np

from . import geometry as geo
from .backgrounds import sample_background
from .dotmatrix import DotMatrixSource, dot_glyph, sample_dot_style
from .display import (GHOST_CHAR, GHOST_CHAR_14, apply_ghost, draw_window, is_segment_font, sample_display,
                      window_quads)
from .effects import apply_effects, build_effects, EffectsConfig
from .fonts import FontFace, Glyph, height_per_em, quantise_aspect, truetype_glyph
from .groundtruth import Char, Field, Line, Sample
from .legibility import CharInk, chars_legibility, texture_sigma
from .marking import (MAX_STRENGTHEN, POLARITIES, RELIEF_KINDS, apply_marking, resolve_colour, sample_marking,
                      strengthen)
from .recipe import Recipe, RecipeError
from .schema import choose, choose_key, integer, sample_rng, uniform
from .textgen import GeneratedLine, choose_block, fill_block

MASK_FLOOR = 48  # warped coverage below this (about 20%) is resampling haze, not ink: it leaves the mask
BOX_PAD = -0.5  # quad sides run half a pixel inside the centres of the outermost (faint) ink pixels
MARK_PAD = 12  # marking styles may touch pixels this close to the ink (halo, relief shading)
MIN_HEIGHT_PX = 6.0
MAX_GAIN = 4.0  # at most this much boost for glyphs whose strokes are thinner than a pixel
INK_GAIN = 1.6
EFFECT_DRAWS = 3  # effect draws per page when one leaves a character under effects.min_legibility
PLACEMENT_REDRAWS = 20  # blocks drawn again when none fits a page (rare: a large block under a strong tilt)
LEGIBILITY_STEPS = 3  # tries to strengthen a faint mark; what is still under the floor keeps its measured value


class PlacementError(RecipeError):
    """A page on which no text block could be placed: the recipe's text is too large for its page."""


@dataclass
class PlacedGlyph:
    char_index: int  # position in the line's text
    glyph: Glyph
    x: float  # top-left of the glyph bitmap in the block frame
    y: float


@dataclass
class TypesetLine:
    source: GeneratedLine
    glyphs: list[PlacedGlyph]


def _typeset(lines: list[GeneratedLine], font, dot_style, height, aspect, gap, stroke, spacing, align, rng,
             slant: float = 0.0):
    """Lay lines out in the block frame (pixels, y down, first baseline at y = 0), stretched by `aspect` and
    slanted by `slant` degrees (each glyph, so the characters lean and their boxes stay upright)."""
    set_lines, widths = [], []
    for n, line in enumerate(lines):
        baseline = n * spacing * height
        pen, placed = 0.0, []
        for i, ch in enumerate(line.text):
            if isinstance(font, DotMatrixSource):
                glyph = dot_glyph(ch, height, dot_style, rng, aspect)
            else:
                em = max(4, int(round(height / height_per_em(font))))
                glyph = truetype_glyph(font, em, ch, stroke, aspect)
            glyph = _slanted(glyph, slant)
            if ch != " " and glyph.bitmap.size:
                placed.append(PlacedGlyph(i, glyph, pen + glyph.left, baseline + glyph.top))
            pen += glyph.advance + gap
        set_lines.append(TypesetLine(line, placed))
        widths.append(max(pen - gap, 0.0))
    block_width = max(widths)
    for tl, width in zip(set_lines, widths):
        shift = {"left": 0.0, "center": (block_width - width) / 2, "right": block_width - width}[align]
        for g in tl.glyphs:
            g.x += shift
    return set_lines


def _slanted(glyph: Glyph, slant: float) -> Glyph:
    """The glyph leaning `slant` degrees to the right (sheared about its baseline), as italic display digits and
    oblique printer fonts do; the bitmap is trimmed to its ink again, so its box stays tight."""
    if not slant or glyph.bitmap.size == 0:
        return glyph
    t = math.tan(math.radians(slant))
    h, w = glyph.bitmap.shape
    shifts = (-t * glyph.top, -t * (glyph.top + h))  # how far the top and bottom rows move right
    lo = math.floor(min(shifts)) - 1
    width = w + int(math.ceil(max(shifts) - min(shifts))) + 3
    matrix = np.float32([[1, -t, -t * glyph.top - lo], [0, 1, 0]])
    bitmap = cv2.warpAffine(glyph.bitmap, matrix, (width, h), flags=cv2.INTER_LINEAR, borderValue=0)
    columns = np.nonzero(bitmap.max(axis=0))[0]
    if columns.size == 0:
        return glyph
    return Glyph(np.ascontiguousarray(bitmap[:, columns[0]:columns[-1] + 1]), glyph.left + lo + columns[0],
                 glyph.top, glyph.advance)


def _inside_page(glyph: PlacedGlyph, H: np.ndarray, width: int, height: int) -> bool:
    """Whether the glyph's bitmap lands wholly on the page (text is placed so; unlit ghosts may fall off it)."""
    h, w = glyph.glyph.bitmap.shape
    corners = geo.apply(H @ geo.translate(glyph.x, glyph.y), geo.rect_quad(0, 0, w, h))
    return bool(np.all(np.isfinite(corners)) and corners[:, 0].min() >= 0 and corners[:, 1].min() >= 0
                and corners[:, 0].max() <= width and corners[:, 1].max() <= height)


def _ghost_glyphs(set_lines: list[TypesetLine], font, height: float, aspect: float, stroke: int, gap: float,
                  slant: float, display: dict) -> list[PlacedGlyph]:
    """Unlit segments of a segment font: an all-segments glyph behind every digit position (its own glyph for
    a decimal point or colon), plus `ghost_digits` unlit positions left of each line."""
    if not isinstance(font, FontFace) or not is_segment_font(font.label):
        return []
    em = max(4, int(round(height / height_per_em(font))))
    full = _slanted(truetype_glyph(font, em, GHOST_CHAR_14 if "14" in font.label else GHOST_CHAR, stroke, aspect),
                    slant)
    ghosts = []
    for tl in set_lines:
        for g in tl.glyphs:
            if not tl.source.text[g.char_index].isalnum():
                continue  # a decimal point or colon: only itself, lit
            pen, baseline = g.x - g.glyph.left, g.y - g.glyph.top
            ghosts.append(PlacedGlyph(g.char_index, full, pen + full.left, baseline + full.top))
        if tl.glyphs:
            first = tl.glyphs[0]
            pen, baseline = first.x - first.glyph.left, first.y - first.glyph.top
            for k in range(1, display["ghost_digits"] + 1):
                x = pen - k * (full.advance + gap)
                ghosts.append(PlacedGlyph(-k, full, x + full.left, baseline + full.top))
    return ghosts


def _extent(set_lines: list[TypesetLine]) -> tuple[float, float, float, float]:
    xs0, ys0, xs1, ys1 = [], [], [], []
    for tl in set_lines:
        for g in tl.glyphs:
            h, w = g.glyph.bitmap.shape
            xs0.append(g.x), ys0.append(g.y), xs1.append(g.x + w), ys1.append(g.y + h)
    return min(xs0), min(ys0), max(xs1), max(ys1)


def _aabb(quad: np.ndarray) -> np.ndarray:
    return np.array([quad[:, 0].min(), quad[:, 1].min(), quad[:, 0].max(), quad[:, 1].max()])


def _overlaps(box: np.ndarray, others: list[np.ndarray], gap: float) -> bool:
    return any(box[0] < o[2] + gap and o[0] < box[2] + gap and box[1] < o[3] + gap and o[1] < box[3] + gap
               for o in others)


def _warp(bitmap: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    cv_matrix = geo.to_cv(matrix)
    if geo.is_affine(cv_matrix):
        return cv2.warpAffine(bitmap, cv_matrix[:2], size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.warpPerspective(bitmap, cv_matrix, size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _draw_char(glyph: PlacedGlyph, H: np.ndarray, H_inv: np.ndarray, width: int, height: int):
    """Warp one glyph into the page; returns its ROI origin, its coverage and its quad."""
    bitmap = glyph.glyph.bitmap
    h, w = bitmap.shape
    M = H @ geo.translate(glyph.x, glyph.y)
    corners = geo.apply(M, geo.rect_quad(0, 0, w, h))
    x0 = max(int(np.floor(corners[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(corners[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(corners[:, 0].max())) + 1, width)
    y1 = min(int(np.ceil(corners[:, 1].max())) + 1, height)
    warped = _warp(bitmap, geo.translate(-x0, -y0) @ M, (x1 - x0, y1 - y0))
    peak = int(warped.max()) if warped.size else 0
    if peak > 0:
        # Ink saturates: coverage above about 60% prints at full density (dot gain), and a
        # hairline thinner than a pixel still prints at full density instead of fading.
        warped = cv2.convertScaleAbs(warped, alpha=INK_GAIN * min(255.0 / peak, MAX_GAIN))
    ink = warped >= MASK_FLOOR
    if not ink.any():  # a tiny mark (a dot at a small size): keep all of it rather than lose it
        ink = warped > 0
    warped = np.where(ink, warped, 0).astype(np.uint8)
    ys, xs = np.nonzero(ink)
    if ys.size == 0:
        own = geo.rect_quad(glyph.x, glyph.y, glyph.x + w, glyph.y + h)
    else:
        pts = np.stack([xs + x0 + 0.5, ys + y0 + 0.5], axis=1)
        own = geo.apply(H_inv, pts)
    # BOX_PAD is in page pixels; the block frame is stretched by the aspect (and tilt), so convert
    pad_x = BOX_PAD / np.hypot(H[0, 0] - H[2, 0] * H[0, 2], H[1, 0] - H[2, 0] * H[1, 2])
    pad_y = BOX_PAD / np.hypot(H[0, 1] - H[2, 1] * H[0, 2], H[1, 1] - H[2, 1] * H[1, 2])
    bx0, by0 = own.min(axis=0) - (pad_x, pad_y)
    bx1, by1 = own.max(axis=0) + (pad_x, pad_y)
    return x0, y0, warped, (bx0, by0, bx1, by1)


def _camera(recipe: Recipe, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    W, H = recipe.canvas.width, recipe.canvas.height
    strength = uniform(rng, recipe.layout.perspective)
    shift = rng.uniform(-1, 1, size=(4, 2)) * strength * np.array([W, H])
    if strength * max(W, H) < 0.5:  # under half a pixel: not worth resampling the background
        return np.eye(3), 0.0
    return geo.camera_tilt(W, H, shift), strength


def _region_box(recipe: Recipe, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    W, H, m = recipe.canvas.width, recipe.canvas.height, recipe.layout.margin_px
    regions = recipe.layout.regions
    if not regions:
        return "anywhere", np.array([m, m, W - m, H - m], dtype=np.float64)
    name = choose_key(rng, {n: r.weight for n, r in regions.items()})
    r = regions[name]
    box = np.array([r.x[0] * W, r.y[0] * H, r.x[1] * W, r.y[1] * H])
    return name, np.clip(box, [m, m, m, m], [W - m, H - m, W - m, H - m])


def _legible_effects(recipe: Recipe, page: np.ndarray, plain: np.ndarray, blocks: list["MarkedBlock"],
                     rng: np.random.Generator, measure: bool = False) -> tuple[np.ndarray, dict, list[list[float]], int]:
    """Apply the recipe's effects to the page, drawing them again (up to EFFECT_DRAWS times) while one leaves a
    character under effects.min_legibility; the least damaging draw is kept.

    Each character is measured (`legibility.char_legibility`) against the text-free page (`plain`) put through
    the very same effects (a copy of the rng replays their draws). Returns (image, effects record, each block's
    per-character legibility, draws made); without a floor (unless `measure`) or text, one draw and no scores.
    """
    pipeline = _effects_pipeline(recipe.effects.model_dump_json())
    floor = recipe.effects.min_legibility
    if (floor <= 0 and not measure) or not blocks:
        image, record = apply_effects(pipeline, page, rng)
        return image, record, [], 1
    best = None
    draws = EFFECT_DRAWS if floor > 0 else 1
    for draw in range(1, draws + 1):
        replay = copy.deepcopy(rng)
        image, record = apply_effects(pipeline, page, rng)
        plain_fx, _ = apply_effects(pipeline, plain, replay)
        scores = [block.measure(plain_fx, image) for block in blocks]
        weakest = min(min(s, default=np.inf) for s in scores)
        if best is None or weakest > best[3]:
            best = (image, record, scores, weakest)
        if weakest >= floor:
            break
    image, record, scores, _ = best
    return image, record, scores, draw


@dataclass
class MarkedBlock:
    """Where a block's characters are on the page, for measuring them after the effects."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the marked region
    chars: list[CharInk]  # in region coordinates, in the order of the block's labelled characters
    relief: bool
    sigma: float  # texture scale for this text height

    def measure(self, plain: np.ndarray, finished: np.ndarray) -> list[float]:
        x0, y0, x1, y1 = self.box
        return chars_legibility(plain[y0:y1, x0:x1], finished[y0:y1, x0:x1], self.chars, self.relief, self.sigma)


def _nearest_diagonal(angle: float) -> float:
    """The diagonal light direction (45, 135, 225 or 315 degrees) nearest `angle`: it shades edges of every
    orientation, where light along a stroke shades none of it."""
    return (45.0 + 90.0 * round((angle - 45.0) / 90.0)) % 360.0


def _legible_mark(surface: np.ndarray, coverage: np.ndarray, chars: list[CharInk], marking: dict, floor: float,
                  height: float, rng: np.random.Generator) -> tuple[dict, np.ndarray, list[float]]:
    """Mark the surface so that every character is legible (`legibility.char_legibility` >= floor).

    A faint mark is strengthened (more contrast, deeper relief). When strengthening stops helping, the cause
    is not strength: ink that clips against its surface (dark ink on black) changes polarity, and relief lit
    along its strokes gets its light turned to the nearest diagonal. Returns the record (with `legibility`,
    the weakest character's score, and `adjusted`, what was changed), the marked surface and every
    character's score.
    """
    sigma = texture_sigma(height)
    relief = marking["kind"] in RELIEF_KINDS
    marking = resolve_colour(surface, coverage, marking)
    marked = apply_marking(surface, coverage, marking, rng)
    scores = chars_legibility(surface, marked, chars, relief, sigma)
    adjusted: list[str] = []
    previous = None
    for _step in range(LEGIBILITY_STEPS if floor > 0 else 0):
        weakest = min(scores, default=np.inf)
        if weakest >= floor:
            break
        # One part gone while the rest is clear, or strengthening no longer helping: the cause is not strength.
        structural = weakest < 0.25 * float(np.median(scores))
        stalled = previous is not None and weakest <= 1.1 * previous
        candidate = _other_cause(marking, adjusted) if structural or stalled else None
        if candidate is None:
            if stalled:
                break
            factor = min(1.1 * floor / max(weakest, 0.25), MAX_STRENGTHEN)  # a little over: clipping, relief
            candidate = {**strengthen(marking, factor), "_adjustment": "strengthened"}
        adjusted.append(candidate.pop("_adjustment"))
        previous = weakest
        marking = resolve_colour(surface, coverage, candidate)
        marked = apply_marking(surface, coverage, marking, rng)
        scores = chars_legibility(surface, marked, chars, relief, sigma)
    weakest = min(scores, default=np.inf)
    record = {**marking, "legibility": round(float(weakest), 3) if np.isfinite(weakest) else None}
    if adjusted:
        record["adjusted"] = adjusted
    return record, marked, scores


def _other_cause(marking: dict, adjusted: list[str]) -> dict | None:
    """The one change that is not strength: ink of the other polarity, or relief lit from a diagonal."""
    kind = marking["kind"]
    if kind in ("inkjet", "thermal") and "polarity_flipped" not in adjusted:
        other = POLARITIES[1 - POLARITIES.index(marking["polarity"])]
        return {**marking, "polarity": other, "_adjustment": "polarity_flipped"}
    if kind in RELIEF_KINDS and "light_turned" not in adjusted:
        return {**marking, "light_angle": _nearest_diagonal(marking["light_angle"]), "_adjustment": "light_turned"}
    return None


_THREAD = threading.local()


def _effects_pipeline(effects_json: str):
    """The recipe's effects pipeline, one per thread: apply_effects seeds its transforms for each call, so
    two threads sharing one would draw from each other's seeds (Dask workers run several render threads)."""
    pipelines = _THREAD.__dict__.setdefault("pipelines", {})
    if effects_json not in pipelines:
        if len(pipelines) >= 16:
            pipelines.clear()
        pipelines[effects_json] = build_effects(EffectsConfig.model_validate_json(effects_json))
    return pipelines[effects_json]


def render_sample(recipe: Recipe, seed: int, index: int, keep_char_masks: bool = False,
                  measure_legibility: bool = False) -> Sample:
    """Render sample `index` of `recipe` under master `seed`; identical in any process.

    `keep_char_masks` also returns each character's own warped coverage (for tests
    and debugging) in `Sample.char_masks`. `measure_legibility` scores every character after the effects
    even when the recipe sets no floor (`audit` does; the page is the same).
    """
    rng = sample_rng(seed, index)
    W, Hh = recipe.canvas.width, recipe.canvas.height
    background, bg_record = sample_background(recipe.background, rng, W, Hh)
    G, tilt = _camera(recipe, rng)
    if tilt:
        background = cv2.warpPerspective(background, geo.to_cv(G), (W, Hh), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REFLECT_101)
    image = background
    plain = background  # the page without its labelled text (display windows and ghost segments are not text)
    mask = np.zeros((Hh, W), np.uint8)
    lines_out: list[Line] = []
    char_masks: list = []
    placed_boxes: list[np.ndarray] = []
    block_records = []
    marked_blocks: list[MarkedBlock] = []
    typo, lay = recipe.typography, recipe.layout
    n_blocks = integer(rng, lay.blocks)
    empty_page = lay.empty_pages > 0 and rng.random() < lay.empty_pages  # no draw unless the recipe asks
    blocks_left, redraws = (0 if empty_page else n_blocks), 0
    while blocks_left > 0:
        blocks_left -= 1
        template = choose_block(recipe.text, rng)
        choices = recipe.font_choices(template)
        pick = choose(rng, range(len(choices)), [c[1] for c in choices])
        font, avoid = choices[pick][0], recipe.font_avoid(template)[pick]
        generated = fill_block(recipe.text, template, rng, index, avoid)  # after the font: its lookalikes
        dot_style = sample_dot_style(font, rng) if isinstance(font, DotMatrixSource) else None
        height = uniform(rng, typo.height_px)
        gap_em = uniform(rng, typo.char_gap)
        aspect = quantise_aspect(uniform(rng, typo.aspect))
        stroke = integer(rng, typo.stroke_px)
        spacing = uniform(rng, typo.line_spacing)
        align = choose_key(rng, lay.alignment)
        angle = uniform(rng, lay.rotation)
        region, rbox = _region_box(recipe, rng)
        slant = uniform(rng, typo.slant) if tuple(typo.slant) != (0.0, 0.0) else 0.0  # no draw: pages stay
        if not any(line.text.strip() for line in generated):
            continue

        placement = None
        for _shrink in range(8):
            set_lines = _typeset(generated, font, dot_style, height, aspect, gap_em * height, stroke, spacing,
                                 align, rng, slant)
            ex0, ey0, ex1, ey1 = _extent(set_lines)
            cx, cy = (ex0 + ex1) / 2, (ey0 + ey1) / 2
            local = geo.rotate(angle) @ geo.translate(-cx, -cy)
            lq = geo.apply(local, geo.rect_quad(ex0, ey0, ex1, ey1))
            lx0, ly0, lx1, ly1 = _aabb(lq)
            room = min((rbox[2] - rbox[0]) / (lx1 - lx0), (rbox[3] - rbox[1]) / (ly1 - ly0))
            smallest = max(typo.height_px[0], MIN_HEIGHT_PX)  # never below the recipe's range
            if room < 1.0 and height > smallest:
                height = max(height * room * 0.9, smallest)
                continue
            for _attempt in range(lay.attempts):
                px = uniform(rng, (rbox[0] - lx0, max(rbox[2] - lx1, rbox[0] - lx0)))
                py = uniform(rng, (rbox[1] - ly0, max(rbox[3] - ly1, rbox[1] - ly0)))
                H = G @ geo.translate(px, py) @ local
                quad = geo.apply(H, geo.rect_quad(ex0, ey0, ex1, ey1))
                box = _aabb(quad)
                m = lay.margin_px
                if box[0] < m or box[1] < m or box[2] > W - m or box[3] > Hh - m:
                    continue
                if _overlaps(box, placed_boxes, lay.block_gap_px):
                    continue
                placement = (H, box, (px, py))
                break
            crowded_floor = max(typo.height_px[0], MIN_HEIGHT_PX)
            if placement is not None or height <= crowded_floor:
                break
            height = max(height * 0.8, crowded_floor)  # crowded page: smaller text, not below the recipe's minimum
        if placement is None:
            if blocks_left == 0 and not placed_boxes:  # the page would be empty: draw another block instead
                if redraws == PLACEMENT_REDRAWS:
                    raise PlacementError(f"{recipe.source}: sample {index} (seed {seed}): no text block could be "
                                         f"placed in {redraws + 1} draws; the text is too large for the page at "
                                         f"typography.height_px min {typo.height_px[0]:g} px under this camera "
                                         f"tilt: lower height_px, layout.perspective or layout.margin_px, or "
                                         f"shorten the text")
                redraws += 1
                blocks_left += 1
            continue
        H, box, (px, py) = placement
        placed_boxes.append(box)
        H_inv = np.linalg.inv(H)

        drawn = []  # (line, x0, y0, coverage, own box) per glyph
        for tl in set_lines:
            for g in tl.glyphs:
                drawn.append((tl, g) + _draw_char(g, H, H_inv, W, Hh))
        rx0 = max(min(d[2] for d in drawn) - MARK_PAD, 0)
        ry0 = max(min(d[3] for d in drawn) - MARK_PAD, 0)
        rx1 = min(max(d[2] + d[4].shape[1] for d in drawn) + MARK_PAD, W)
        ry1 = min(max(d[3] + d[4].shape[0] for d in drawn) + MARK_PAD, Hh)
        coverage = np.zeros((ry1 - ry0, rx1 - rx0), np.uint8)
        for _tl, _g, x0, y0, cov, _own in drawn:
            view = coverage[y0 - ry0:y0 - ry0 + cov.shape[0], x0 - rx0:x0 - rx0 + cov.shape[1]]
            np.maximum(view, cov, out=view)
        image = image.copy() if image is background else image
        display = sample_display(recipe.display, rng)
        if display is not None:  # the window is part of the page the text is measured against
            plain = plain.copy() if plain is background else plain
            ghost_glyphs = _ghost_glyphs(set_lines, font, height, aspect, stroke, gap_em * height, slant, display)
            extent = _extent(set_lines + [TypesetLine(set_lines[0].source, ghost_glyphs)] if ghost_glyphs
                             else set_lines)
            for target in (image, plain):
                draw_window(target, *window_quads(extent, height, display, H), display)
        surface = image[ry0:ry1, rx0:rx1]
        chars_ink = [CharInk(x0 - rx0, y0 - ry0, cov) for _tl, _g, x0, y0, cov, _own in drawn]
        marking, marked, _scores = _legible_mark(surface, coverage, chars_ink,
                                                 sample_marking(recipe.marking, recipe.colour, rng),
                                                 recipe.colour.min_legibility, height, rng)
        image[ry0:ry1, rx0:rx1] = marked
        if display is not None and ghost_glyphs:
            ghost_cover = np.zeros((Hh, W), np.uint8)
            for g in ghost_glyphs:
                if not _inside_page(g, H, W, Hh):
                    continue  # the display goes on beyond the frame (a page tilt could even fold it over)
                x0, y0, cov, _own = _draw_char(g, H, H_inv, W, Hh)
                view = ghost_cover[y0:y0 + cov.shape[0], x0:x0 + cov.shape[1]]
                np.maximum(view, cov, out=view)
            lit = np.zeros((Hh, W), np.uint8)
            lit[ry0:ry1, rx0:rx1] = coverage
            apply_ghost(image, plain, ghost_cover, lit, {**marking, "ghost": display["ghost"]})
        marked_blocks.append(MarkedBlock((rx0, ry0, rx1, ry1), chars_ink, marking["kind"] in RELIEF_KINDS,
                                         texture_sigma(height)))
        np.maximum(mask[ry0:ry1, rx0:rx1], coverage, out=mask[ry0:ry1, rx0:rx1])

        first_line = len(lines_out)
        for tl in set_lines:
            mine = [d for d in drawn if d[0] is tl]
            if not mine:
                continue
            chars = [Char(tl.source.text[g.char_index], geo.apply(H, geo.rect_quad(*own)).astype(np.float32))
                     for _tl, g, _x0, _y0, _cov, own in mine]
            owns = np.array([own for *_rest, own in mine])
            line_own = (owns[:, 0].min(), owns[:, 1].min(), owns[:, 2].max(), owns[:, 3].max())
            fields = [Field(name, start, end) for name, start, end in tl.source.fields]
            lines_out.append(Line(tl.source.text, geo.apply(H, geo.rect_quad(*line_own)).astype(np.float32),
                                  chars, fields))
            if keep_char_masks:
                char_masks.append([(x0, y0, cov) for _tl, _g, x0, y0, cov, _own in mine])
        block_records.append({
            "template": template, "font": font.label if isinstance(font, FontFace) else f"bitmap:{font.bitmap}",
            "avoided": "".join(sorted(avoid)), "dot_style": dot_style, "height_px": height, "char_gap": gap_em, "aspect": aspect, "stroke_px": stroke,
            "line_spacing": spacing, "alignment": align, **({"slant": slant} if slant else {}), "rotation": angle, "region": region,
            "position": [px, py], "marking": marking, "lines": [first_line, len(lines_out)],
            **({"display": display} if display is not None else {}),
        })

    image, effects_record, after_effects, draws = _legible_effects(recipe, image, plain, marked_blocks, rng,
                                                                   measure=measure_legibility)
    floor = recipe.effects.min_legibility
    for block, scores in zip(block_records, after_effects):
        block["legibility_after_effects"] = round(float(min(scores, default=np.inf)), 3) if scores else None
        block["char_legibility"] = [round(float(score), 2) if np.isfinite(score) else None for score in scores]
        below = [i for i, score in enumerate(scores) if score < floor]
        if floor > 0 and below:
            block["below_floor"] = below  # what no effects draw could fix: the label's characters to distrust
    records = {"background": bg_record, "camera_tilt": tilt, "blocks": block_records, "effects": effects_record,
               "effect_draws": draws}
    if lay.empty_pages > 0:
        records["empty_page"] = empty_page
    if redraws:
        records["placement_redraws"] = redraws
    return Sample(image=np.ascontiguousarray(image), mask=mask, lines=lines_out, seed=int(seed), index=int(index),
                  records=records, char_masks=char_masks if keep_char_masks else None)


def encode_image(image: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    """Encode a page as the recipe's canvas.encoding says."""
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return buf.tobytes()
