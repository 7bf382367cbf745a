"""Display devices and plates: the text shown in a window (an LCD/LED window, a licence plate), with its bezel
or border, backlight, unlit ("ghost") segments, and the unlabelled marks a plate carries.

Meter, fuel-pump and instrument readings are not printed on a product: they are segments lit (or darkened)
behind glass. A real crop of such a reading shows what a bare rendering of a segment font lacks: the
window's own gray with a backlight gradient, its bezel edges, and the unlit segments faintly visible in
every digit position, including unlit leading digits. Without them a model reads the bezel as a `1` and a
ghost `8` as anything. None of this is labelled text: the window and the ghosts belong to the page the text
is measured against, so they never enter the character boxes or the mask. A licence plate is the same kind
of frame: the plate is the window, its border the bezel, and its province character or region mark (an
`emblem`, drawn procedurally as an ideogram-like glyph) and the dots between its groups (`separator`) are
printed like the text but not labelled, so a crop of the whole plate teaches a model to read past them.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from pydantic import Field

from ..core import geometry as geo
from ..core.config import FloatRange, IntRange, StrictModel
from ..core.streams import integer, uniform
from .fonts import FontFace, Glyph, height_per_em, truetype_glyph
from .typeset import PlacedGlyph, TypesetLine, draw_char, slanted

GHOST_CHAR = "8"  # lights every segment of a seven- or fourteen-segment digit... in DSEG7
GHOST_CHAR_14 = "~"  # ...and DSEG14 draws all fourteen segments for "~"


class DisplayConfig(StrictModel):
    """Show a block in a display window (meters, pumps, scales): glass, bezel, backlight and unlit segments."""

    p: float = Field(0.0, ge=0.0, le=1.0, description="Chance that a block is shown in a display window; 0 = never "
                                                       "(and no random draws, so other pages stay as they were).")
    window_level: FloatRange(0.0, 255.0) = Field(
        (110.0, 200.0), description="Gray level of the glass (LCD) or of the dark panel (LED/VFD: set it low).")
    texture: FloatRange(0.0, 1.0) = Field(
        (0.1, 0.4), description="How much of the surface texture shows through the glass (0 = flat glass).")
    backlight: FloatRange(0.0, 1.0) = Field(
        (0.0, 0.25), description="Brightness change across the window, as a fraction of its level (uneven backlight).")
    margin_x: FloatRange(0.0, 5.0) = Field(
        (0.3, 1.2), description="Glass left and right of the digits, in text heights (each side drawn apart).")
    margin_y: FloatRange(0.0, 3.0) = Field(
        (0.15, 0.6), description="Glass above and below the digits, in text heights (each side drawn apart).")
    bezel_px: FloatRange(0.0, 200.0) = Field((3.0, 25.0), description="Width of the bezel frame around the glass, px.")
    bezel_level: FloatRange(0.0, 255.0) = Field((0.0, 70.0), description="Gray level of the bezel.")
    ghost: FloatRange(0.0, 0.4) = Field(
        (0.02, 0.15), description="Contrast of the unlit segments, as a fraction of the lit segments' contrast "
                                 "(segment fonts only: dseg7, dseg14).")
    ghost_digits: IntRange(0, 12) = Field(
        (0, 3), description="Unlit digit positions left of each line (a right-aligned reading with blank leading "
                            "digits).")
    emblem: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance of an unlabelled emblem left of each line, printed like the text: "
                                         "an ideogram-like glyph, as a plate's province character or region mark; "
                                         "0 = never (and no draws).")
    separator: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance that the spaces of a reading show an unlabelled middle dot, as "
                                         "plates separate their groups; 0 = never (and no draws).")
    glare: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance of a reflection on the glass: a band of light with straight edges "
                                         "across the window (a lamp, the sky, a shop front), over the digits; 0 = "
                                         "never (and no draws).")
    glare_level: FloatRange(0.0, 220.0) = Field(
        (40.0, 150.0), description="Light of the reflection in gray levels, screen-blended: it lifts dark ink more "
                                   "than the glass, so the digits fade under it but never vanish.")
    hollow: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance that a segment font's segments show as outlines, lit and unlit "
                                         "alike: only a band along each segment's edge shows, as reflective "
                                         "LCDs look under a flash or infrared light (the meter cameras' own "
                                         "light); 0 = never (and no draws).")
    hollow_edge: FloatRange(0.05, 0.45) = Field(
        (0.15, 0.3), description="Width of the outline band, as a fraction of the segment's thickness (at least "
                                 "1 px): at 0.5 nothing would be left inside.")
    drum: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance that a one-line block is a mechanical counter's drums behind the "
                                         "window: above each digit the one before it, below the one after, "
                                         "unlabelled and cut by the window's top and bottom edges (printed fonts "
                                         "only, not segment or dot fonts); 0 = never (and no draws).")
    drum_pitch: FloatRange(1.1, 2.5) = Field(
        (1.2, 1.6), description="Distance between a drum's digits, baseline to baseline, in text heights.")
    drum_show: FloatRange(0.0, 1.0) = Field(
        (0.1, 0.45), description="How much of the neighbouring digits the window shows, above and below (each side "
                                 "drawn apart), in text heights; the window's top and bottom margins follow from it.")
    drum_squash: FloatRange(0.3, 1.0) = Field(
        (0.6, 1.0), description="Height of the neighbouring digits as a fraction of the reading's: the drum curves "
                                "away from the window's middle, so the digits beyond it look shorter.")


def is_segment_font(label: str) -> bool:
    return label.lower().startswith("dseg")


def sample_display(cfg: DisplayConfig, rng: np.random.Generator) -> dict | None:
    """Draw whether this block is on a display and all its parameters (the block's display record)."""
    if cfg.p <= 0 or rng.random() >= cfg.p:
        return None
    return {
        "window_level": uniform(rng, cfg.window_level), "texture": uniform(rng, cfg.texture),
        "backlight": uniform(rng, cfg.backlight), "backlight_angle": float(rng.uniform(0, 2 * np.pi)),
        "margins": [uniform(rng, cfg.margin_x), uniform(rng, cfg.margin_y), uniform(rng, cfg.margin_x),
                    uniform(rng, cfg.margin_y)],  # left, top, right, bottom
        "bezel_px": uniform(rng, cfg.bezel_px), "bezel_level": uniform(rng, cfg.bezel_level),
        "ghost": uniform(rng, cfg.ghost), "ghost_digits": integer(rng, cfg.ghost_digits),
        **({"emblem": sample_emblem(rng) if rng.random() < cfg.emblem else None} if cfg.emblem > 0 else {}),
        **({"separator": bool(rng.random() < cfg.separator)} if cfg.separator > 0 else {}),
        **({"glare": sample_glare(cfg, rng) if rng.random() < cfg.glare else None} if cfg.glare > 0 else {}),
        **({"hollow": uniform(rng, cfg.hollow_edge) if rng.random() < cfg.hollow else None}
           if cfg.hollow > 0 else {}),
        **({"drum": sample_drum(cfg, rng) if rng.random() < cfg.drum else None} if cfg.drum > 0 else {}),
    }


def sample_drum(cfg: DisplayConfig, rng: np.random.Generator) -> dict:
    """A counter drum's geometry: digit pitch, how much of the neighbours shows above and below, their squash."""
    return {"pitch": uniform(rng, cfg.drum_pitch), "show": [uniform(rng, cfg.drum_show), uniform(rng, cfg.drum_show)],
            "squash": uniform(rng, cfg.drum_squash)}


def drum_margins(drum: dict) -> tuple[float, float]:
    """The glass above and below a drum's reading, in text heights: the gap to each neighbour and what shows."""
    return drum["pitch"] - 1 + drum["show"][0], drum["pitch"] - 1 + drum["show"][1]


def drum_applies(record: dict | None, set_lines: list[TypesetLine], font) -> bool:
    """Drums only turn behind a one-line reading in a printed font (segments and dots are not on drums)."""
    return bool(record and record.get("drum")) and len(set_lines) == 1 and isinstance(font, FontFace) \
        and not is_segment_font(font.label)


def drum_glyphs(set_lines: list[TypesetLine], font, height: float, aspect: float, stroke: int, slant: float,
                record: dict, frame: tuple[float, float, float, float]) -> list[PlacedGlyph]:
    """The drums' neighbouring digits, unlabelled: above each digit of the reading the one before it and below
    the one after (a counter rolls up), `pitch` text heights away baseline to baseline, squashed toward the
    reading and cut at the glass's top and bottom edges: `frame` is the block-frame extent the glass is built
    around (`window_quads`, whose top and bottom margins follow `show`)."""
    drum = record["drum"]
    em = max(4, int(round(height / height_per_em(font))))
    _x0, y0, _x1, y1 = frame
    above, below = drum_margins(drum)
    top, bottom = y0 - above * height, y1 + below * height
    out = []
    tl = set_lines[0]
    for g in tl.glyphs:
        char = tl.source.text[g.char_index]
        if not char.isdigit():
            continue
        pen, baseline = g.x - g.glyph.left, g.y - g.glyph.top
        for step in (-1, 1):  # the digit above, the digit below
            near = slanted(truetype_glyph(font, em, str((int(char) + step) % 10), stroke, aspect), slant)
            rows, cols = near.bitmap.shape
            if not rows or not cols:
                continue
            squashed = max(int(round(rows * drum["squash"])), 1)
            bitmap = cv2.resize(near.bitmap, (cols, squashed), interpolation=cv2.INTER_AREA)
            y = baseline + step * drum["pitch"] * height + near.top
            if step < 0:
                y += rows - squashed  # its bottom stays where it was, nearest the reading
            clipped = _clip_rows(bitmap, y, top, bottom)
            if clipped is not None:
                out.append(PlacedGlyph(-1, replace(near, bitmap=clipped[0]), pen + near.left, clipped[1]))
    return out


def _clip_rows(bitmap: np.ndarray, y: float, top: float, bottom: float) -> tuple[np.ndarray, float] | None:
    """The rows of a bitmap placed at `y` that lie between `top` and `bottom` (the glass), the edge rows
    weighted by how much of them is inside; None when nothing is. Returns the bitmap and its new y."""
    rows = np.arange(bitmap.shape[0], dtype=np.float64) + y
    inside = np.clip(np.minimum(rows + 1, bottom) - np.maximum(rows, top), 0.0, 1.0)
    keep = np.nonzero(inside > 0)[0]
    if keep.size == 0:
        return None
    first, last = int(keep[0]), int(keep[-1]) + 1
    weighted = bitmap[first:last].astype(np.float32) * inside[first:last, None]
    clipped = (weighted + 0.5).astype(np.uint8)
    if not clipped.any():
        return None
    return np.ascontiguousarray(clipped), y + first


def sample_glare(cfg: DisplayConfig, rng: np.random.Generator) -> dict:
    """One reflection on the glass, in the glass's unit square (u across, v down): the band between the edges
    u = left + slope (v - 1/2) and u = right + slope (v - 1/2), one side open 30% of the time (half the glass
    washed out), its light, edge softness (in glass heights) and how much the reflected scene mottles it."""
    left = float(rng.uniform(-0.2, 0.95))
    right = left + float(rng.uniform(0.08, 0.7))
    if rng.random() < 0.3:
        left, right = (-2.0, right) if rng.random() < 0.5 else (left, 3.0)
    return {"left": round(left, 4), "right": round(right, 4), "slope": round(float(rng.uniform(-0.35, 0.35)), 4),
            "level": uniform(rng, cfg.glare_level), "softness": round(float(rng.uniform(0.0, 0.3)), 4),
            "mottle": round(float(rng.uniform(0.0, 0.6)), 4), "seed": int(rng.integers(2 ** 31))}


def sample_emblem(rng: np.random.Generator) -> list[list[float]]:
    """Strokes of an ideogram-like glyph in the unit square, [x0, y0, x1, y1] each: horizontal and vertical
    bars, short slanted strokes and sometimes a box, as CJK province characters are built. Not a real
    character: it only has to look like dense unlabelled writing a reader must pass over."""
    strokes = []
    for _ in range(int(rng.integers(6, 14))):
        kind = rng.choice(4, p=[0.4, 0.3, 0.2, 0.1])
        a, b = sorted(rng.uniform(0.0, 1.0, 2))
        at = float(rng.uniform(0.05, 0.95))
        if kind == 0:  # horizontal bar
            strokes.append([a * 0.5, at, 0.5 + b * 0.5, at])
        elif kind == 1:  # vertical bar
            strokes.append([at, a * 0.5, at, 0.5 + b * 0.5])
        elif kind == 2:  # short slanted stroke or dot
            x, y = rng.uniform(0.1, 0.9, 2)
            dx, dy = rng.uniform(-0.25, 0.25, 2)
            strokes.append([float(x), float(y), float(np.clip(x + dx, 0, 1)), float(np.clip(y + dy, 0, 1))])
        else:  # a small box
            x0, y0 = rng.uniform(0.1, 0.5, 2)
            x1, y1 = x0 + rng.uniform(0.3, 0.5), y0 + rng.uniform(0.25, 0.45)
            strokes += [[x0, y0, x1, y0], [x1, y0, x1, y1], [x1, y1, x0, y1], [x0, y1, x0, y0]]
    return [[round(float(v), 4) for v in stroke] for stroke in strokes]


def emblem_glyph(strokes: list[list[float]], height: float, aspect: float) -> Glyph:
    """The emblem's strokes drawn as a glyph as tall as the text (pen at its left, baseline at its bottom)."""
    size = max(int(round(height)), 6)
    width = max(int(round(size * 0.95 * aspect)), 6)
    thickness = max(int(round(size * 0.09)), 1)
    pad = thickness
    canvas = np.zeros((size + 2 * pad, width + 2 * pad), np.uint8)
    for x0, y0, x1, y1 in strokes:
        p0 = (int(round((pad + x0 * (width - 1)) * 16)), int(round((pad + y0 * (size - 1)) * 16)))
        p1 = (int(round((pad + x1 * (width - 1)) * 16)), int(round((pad + y1 * (size - 1)) * 16)))
        cv2.line(canvas, p0, p1, 255, thickness, cv2.LINE_AA, shift=4)
    rows, cols = np.nonzero(canvas)
    bitmap = np.ascontiguousarray(canvas[rows.min():rows.max() + 1, cols.min():cols.max() + 1])
    return Glyph(bitmap, float(cols.min() - pad), float(rows.min() - pad - size), float(width))


def separator_glyph(height: float) -> Glyph:
    """A round middle dot a tenth of the text height across, centred half a text height above the baseline."""
    d = max(height * 0.12, 2.0)
    n = int(np.ceil(d)) + 2
    canvas = np.zeros((n, n), np.uint8)
    cv2.circle(canvas, (n * 8, n * 8), int(round(d * 8)), 255, -1, cv2.LINE_AA, shift=4)
    return Glyph(canvas, -n / 2, -height / 2 - n / 2, 0.0)


def window_quads(extent: tuple[float, float, float, float], height: float, record: dict,
                 H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The glass and the bezel's outer edge as page quads, from the block-frame text extent."""
    x0, y0, x1, y1 = extent
    left, top, right, bottom = (m * height for m in record["margins"])
    if record.get("drum"):  # the glass shows `show` of the drums' neighbouring digits above and below
        top, bottom = (m * height for m in drum_margins(record["drum"]))
    glass = geo.rect_quad(x0 - left, y0 - top, x1 + right, y1 + bottom)
    b = record["bezel_px"]
    outer = geo.rect_quad(x0 - left - b, y0 - top - b, x1 + right + b, y1 + bottom + b)
    return geo.apply(H, glass), geo.apply(H, outer)


def draw_window(page: np.ndarray, glass: np.ndarray, outer: np.ndarray, record: dict) -> np.ndarray:
    """Paint the bezel and the glass (in place) and return the page. The glass keeps some surface texture and
    has a linear backlight gradient; both edges are antialiased. Work is confined to the bezel's box."""
    rows, cols = page.shape
    x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in outer.min(axis=0))
    x1, y1 = min(int(np.ceil(outer[:, 0].max())) + 2, cols), min(int(np.ceil(outer[:, 1].max())) + 2, rows)
    if x1 <= x0 or y1 <= y0:
        return page
    shift = np.array([x0, y0], np.float64)
    region = page[y0:y1, x0:x1]
    surface = region.astype(np.float32)
    bezel_mask = _fill(outer - shift, y1 - y0, x1 - x0)
    glass_mask = _fill(glass - shift, y1 - y0, x1 - x0)
    inside = (glass_mask > 0.5).astype(np.uint8)
    detail = surface - float(cv2.mean(region, mask=inside)[0] if inside.any() else surface.mean())
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    centre = glass.mean(axis=0)
    span = max(float(np.ptp(glass[:, 0])), float(np.ptp(glass[:, 1])), 1.0)
    angle = record["backlight_angle"]
    ramp = ((xs - centre[0]) * np.cos(angle) + (ys - centre[1]) * np.sin(angle)) / span  # about -0.5..0.5
    glass_tone = record["window_level"] * (1 + record["backlight"] * ramp) + record["texture"] * detail
    bezel_tone = record["bezel_level"] + 0.3 * detail
    out = surface * (1 - bezel_mask) + bezel_tone * bezel_mask
    out = out * (1 - glass_mask) + glass_tone * glass_mask
    np.clip(out, 0, 255, out=out)
    region[:] = (out + 0.5).astype(np.uint8)
    return page


def draw_glare(page: np.ndarray, glass: np.ndarray, glare: dict) -> None:
    """Screen-blend the reflection `glare` (sample_glare's record) onto the glass of `page`, in place:
    out = 255 - (255 - page) (255 - light) / 255, so a light of L keeps (255 - L) / 255 of the contrast under it.
    Nothing outside the glass changes."""
    rows, cols = page.shape
    x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in glass.min(axis=0))
    x1, y1 = min(int(np.ceil(glass[:, 0].max())) + 2, cols), min(int(np.ceil(glass[:, 1].max())) + 2, rows)
    if x1 <= x0 or y1 <= y0:
        return
    shift = np.array([x0, y0], np.float64)
    unit = geo.rect_quad(0, 0, 1, 1).astype(np.float32)
    to_unit = cv2.getPerspectiveTransform((glass - shift).astype(np.float32), unit)
    ys, xs = np.mgrid[0:y1 - y0, 0:x1 - x0].astype(np.float32)
    u, v = np.moveaxis(cv2.perspectiveTransform(np.dstack([xs, ys]), to_unit), -1, 0)
    width_px = max(float(np.linalg.norm(glass[1] - glass[0])), 1.0)
    height_px = max(float(np.linalg.norm(glass[3] - glass[0])), 1.0)
    soft = max(glare["softness"] * height_px, 1.0) / width_px  # edge width in unit u
    edge = glare["slope"] * (v - 0.5)
    band = (np.clip((u - glare["left"] - edge) / soft + 0.5, 0, 1)
            * np.clip((glare["right"] + edge - u) / soft + 0.5, 0, 1))
    noise = np.random.default_rng(glare["seed"]).random((4, 12)).astype(np.float32)
    scene = cv2.resize(noise, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
    light = glare["level"] * band * (1 - glare["mottle"] * np.clip(scene, 0, 1)) * _fill(glass - shift, y1 - y0,
                                                                                         x1 - x0)
    region = page[y0:y1, x0:x1].astype(np.float32)
    out = 255 - (255 - region) * (255 - light) / 255
    page[y0:y1, x0:x1] = (np.clip(out, 0, 255) + 0.5).astype(np.uint8)


def _fill(quad: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Antialiased coverage (0..1) of a convex quad."""
    mask = np.zeros((rows, cols), np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad * 16).astype(np.int32), 255, cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


def draw_unlabelled(image: np.ndarray, plain: np.ndarray, glyphs: list[PlacedGlyph], H: np.ndarray,
                    lit: np.ndarray, marking: dict, contrast: float) -> None:
    """Draw unlabelled glyphs (unlit segments, a plate's emblem and dots) in place, at `contrast` times the
    text's contrast and in its polarity: in `plain` all of them, in `image` where the lit text (`lit`, the
    page's text coverage) does not cover them. Glyphs not wholly on the page are left out (the display goes on
    beyond the frame; a page tilt could even fold it over)."""
    if "ink_level" not in marking or not glyphs:
        return
    rows, cols = image.shape
    H_inv = np.linalg.inv(H)
    cover = np.zeros((rows, cols), np.uint8)
    for g in glyphs:
        if inside_page(g, H, cols, rows):
            x0, y0, cov, _own = draw_char(g, H, H_inv, cols, rows)
            view = cover[y0:y0 + cov.shape[0], x0:x0 + cov.shape[1]]
            np.maximum(view, cov, out=view)
    x, y, w, h = cv2.boundingRect(cover)
    if w == 0:
        return
    box = (slice(y, y + h), slice(x, x + w))
    shift = contrast * (marking["ink_level"] - marking["local_mean"])
    alpha = cover[box].astype(np.float32) / 255.0
    for target, amount in ((plain, alpha), (image, alpha * (1 - lit[box].astype(np.float32) / 255.0))):
        out = target[box].astype(np.float32) + shift * amount
        np.clip(out, 0, 255, out=out)
        target[box] = (out + 0.5).astype(np.uint8)


def ghost_glyphs(set_lines: list[TypesetLine], font, height: float, aspect: float, stroke: int, gap: float,
                 slant: float, record: dict) -> list[PlacedGlyph]:
    """Unlit segments of a segment font: an all-segments glyph behind every digit position (its own glyph for
    a decimal point or colon), plus `ghost_digits` unlit positions left of each line."""
    if not isinstance(font, FontFace) or not is_segment_font(font.label):
        return []
    em = max(4, int(round(height / height_per_em(font))))
    full = slanted(truetype_glyph(font, em, GHOST_CHAR_14 if "14" in font.label else GHOST_CHAR, stroke, aspect),
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
            for k in range(1, record["ghost_digits"] + 1):
                x = pen - k * (full.advance + gap)
                ghosts.append(PlacedGlyph(-k, full, x + full.left, baseline + full.top))
    return ghosts


def hollow_glyphs(glyphs: list[PlacedGlyph], edge: float) -> list[PlacedGlyph]:
    """The glyphs with only a band along their ink's edges kept (outlined segments), `edge` times the stroke's
    thickness wide. The outer edge stays where it was, so every character's ink box is unchanged."""
    outlines = {}  # one outline per distinct bitmap (a line's repeated digits share theirs)
    out = []
    for g in glyphs:
        key = id(g.glyph)
        if key not in outlines:
            outlines[key] = replace(g.glyph, bitmap=outline(g.glyph.bitmap, edge))
        out.append(replace(g, glyph=outlines[key]))
    return out


DOT_LENGTH = 2.0  # a piece of ink at most this many stroke thicknesses long is a dot, drawn whole


def outline(bitmap: np.ndarray, edge: float) -> np.ndarray:
    """The coverage less its inside: a band `edge` times the stroke thickness wide (at least 1 px) along the
    edges. The thickness is twice the largest distance from ink to its edge (a segment's width).

    A dot (a decimal point, each dot of a colon: a piece of ink no longer than DOT_LENGTH thicknesses) stays
    whole: its outline closes over its small inside, and real outlined displays show their points solid."""
    if bitmap.size == 0 or not (bitmap > 127).any():
        return bitmap
    padded = cv2.copyMakeBorder(bitmap, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    thickness = 2 * float(cv2.distanceTransform((padded > 127).astype(np.uint8), cv2.DIST_L2, 5).max())
    band = max(1, int(round(edge * thickness)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    padded = cv2.copyMakeBorder(bitmap, band, band, band, band, cv2.BORDER_CONSTANT, value=0)
    inner = cv2.erode(padded, kernel)[band:-band, band:-band]
    count, pieces, stats, _ = cv2.connectedComponentsWithStats((bitmap > 0).astype(np.uint8), connectivity=8)
    for k in range(1, count):
        if max(stats[k, cv2.CC_STAT_WIDTH], stats[k, cv2.CC_STAT_HEIGHT]) <= DOT_LENGTH * thickness:
            inner[pieces == k] = 0
    return cv2.subtract(bitmap, inner)


def hollow_lines(set_lines: list[TypesetLine], font, record: dict | None) -> list[TypesetLine]:
    """The lines outlined when the block's display record draws `hollow` and the font is a segment font."""
    if record is None or not record.get("hollow") or not isinstance(font, FontFace) \
            or not is_segment_font(font.label):
        return set_lines
    return [replace(tl, glyphs=hollow_glyphs(tl.glyphs, record["hollow"])) for tl in set_lines]


def plate_marks(set_lines: list[TypesetLine], height: float, aspect: float, gap: float,
                record: dict) -> list[PlacedGlyph]:
    """The unlabelled marks printed like the text: the emblem left of each line and a dot in each space."""
    marks = []
    for tl in set_lines:
        if not tl.glyphs:
            continue
        if record.get("emblem"):
            emblem = emblem_glyph(record["emblem"], height, aspect)
            first = tl.glyphs[0]
            pen = first.x - first.glyph.left - emblem.advance - max(gap, 0.2 * height)
            baseline = first.y - first.glyph.top
            marks.append(PlacedGlyph(-1, emblem, pen + emblem.left, baseline + emblem.top))
        if record.get("separator"):
            dot = separator_glyph(height)
            text = tl.source.text
            for before, after in zip(tl.glyphs, tl.glyphs[1:]):
                between = text[before.char_index + 1:after.char_index]
                if between and not between.strip():  # only spaces between two drawn characters: a gap
                    x = (before.x + before.glyph.bitmap.shape[1] + after.x) / 2
                    baseline = before.y - before.glyph.top
                    marks.append(PlacedGlyph(-1, dot, x + dot.left, baseline + dot.top))
    return marks


def inside_page(glyph: PlacedGlyph, H: np.ndarray, width: int, height: int) -> bool:
    """Whether the glyph's bitmap lands wholly on the page (text is placed so; unlit ghosts may fall off it)."""
    h, w = glyph.glyph.bitmap.shape
    corners = geo.apply(H @ geo.translate(glyph.x, glyph.y), geo.rect_quad(0, 0, w, h))
    return bool(np.all(np.isfinite(corners)) and corners[:, 0].min() >= 0 and corners[:, 1].min() >= 0
                and corners[:, 0].max() <= width and corners[:, 1].max() <= height)
