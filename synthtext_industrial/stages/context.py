"""Label context: the printed label a code sits on, and the barcodes and other printed text around it.

A real crop of a code on a carton, a bottle or a bag shows more than the code: the edge of the label it is
printed on, a barcode or a DataMatrix beside it, a "NET WT 500 g" or a list of ingredients. None of this is
labelled text, so none of it enters the mask or the ground truth. It is drawn on the page and on the text-free
page (`plain`) alike, so the legibility measure judges the labelled characters against what lies under them.

Two rules keep the ground truth honest:
- a label lies beneath its block's text (drawn before the text is marked) and never over a block placed
  before it;
- barcodes and clutter text are placed after every block, and none of their ink touches a labelled line's
  quad grown by `keep_out` line heights on every side (the keep-out zone): a line crop with margins up to
  that much context never shows unlabelled text.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from pydantic import Field

from ..core import geometry as geo
from ..core.config import FloatRange, IntRange, StrictModel
from ..core.streams import choose, integer, uniform
from .fonts import FontFace, catalog, height_per_em, load_font

CLUTTER_FONTS = ("dejavu-sans-condensed-bold", "liberation-sans-bold", "dinish", "barlow-condensed-semibold",
                 "dejavu-sans-mono", "liberation-mono", "ocr-b")  # fonts with lower case, unlike some code fonts
CLUTTER_WORDS = ("LOT", "EXP", "BEST BEFORE", "USE BY", "NET WT", "NET", "PROD", "MFG", "Ingredients:", "water",
                 "sugar", "salt", "wheat flour", "glucose syrup", "sunflower oil", "milk powder", "cocoa",
                 "E330", "E202", "emulsifier", "lecithin", "Store in a cool, dry place", "KEEP DRY", "MADE IN",
                 "Made in EU", "Nutrition", "Energy", "kcal", "Fat", "Protein", "per 100 g", "RECYCLE", "ml",
                 "g", "kg", "www.example.com", "Batch", "Qty", "REF", "Art.-Nr.", "PN", "Rev.", "Use before")
KEEP_OUT_SLACK_PX = 2  # keep-out grown further by this much: antialiased edges of the ink
EAN_L = ("0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011", "0110111",
         "0001011")
EAN_PARITY = ("LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL")


class ContextConfig(StrictModel):
    """Unlabelled context around the codes: the label they are printed on, barcodes, other printed text."""

    label: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance that a block is printed on a label: a light rectangle under it, "
                                         "larger than the block, with straight edges that may leave the page; 0 = "
                                         "never (and no draws). Blocks on a cylinder or in a display get none.")
    label_level: FloatRange(0.0, 255.0) = Field((205.0, 245.0), description="Gray level of the label.")
    label_texture: FloatRange(0.0, 1.0) = Field(
        (0.0, 0.3), description="How much of the surface texture shows through the label (0 = flat paper).")
    label_margin: FloatRange(0.0, 20.0) = Field(
        (0.4, 2.5), description="Label beyond the block on each side, in text heights (each side drawn apart).")
    label_rotation: FloatRange(-20.0, 20.0) = Field(
        (-2.0, 2.0), description="Turn of the label against its text, in degrees (a label applied askew).")
    label_corner: FloatRange(0.0, 3.0) = Field(
        (0.0, 0.6), description="Radius of the label's rounded corners, in text heights (0 = square).")
    label_shadow: FloatRange(0.0, 1.0) = Field(
        (0.0, 0.4), description="Darkness of the thin shadow along the label's lower right edge, as a fraction "
                                "of the surface's gray level (0 = none).")
    barcodes: IntRange(0, 20) = Field(
        (0, 0), description="1-D barcodes per page (EAN-13 with guard bars and digits, or bars of random widths); "
                            "[0, 0] = none (and no draws).")
    barcode_height_px: FloatRange(8.0, 1000.0) = Field((50.0, 160.0), description="Height of a barcode's bars, px.")
    barcode_module_px: FloatRange(0.8, 20.0) = Field(
        (1.2, 3.0), description="Width of a barcode's narrowest bar, px.")
    matrix_codes: IntRange(0, 20) = Field(
        (0, 0), description="2-D matrix codes per page (DataMatrix-like random modules with an L finder and a "
                            "clock track); [0, 0] = none (and no draws).")
    matrix_modules: IntRange(8, 64) = Field((10, 26), description="Modules per side of a matrix code.")
    matrix_module_px: FloatRange(1.0, 30.0) = Field((2.5, 7.0), description="Side of one module, px.")
    clutter: IntRange(0, 60) = Field(
        (0, 0), description="Pieces of unlabelled printed text per page (1-4 lines of words and numbers each); "
                            "[0, 0] = none (and no draws).")
    clutter_height_px: FloatRange(5.0, 300.0) = Field(
        (9.0, 30.0), description="Capital height of clutter text, px (per piece).")
    clutter_words: list[str] = Field(
        default_factory=lambda: list(CLUTTER_WORDS), min_length=1,
        description="Words clutter text is made of (with random numbers between them); drawn in fonts with "
                    "lower case: " + ", ".join(CLUTTER_FONTS))
    contrast: FloatRange(0.0, 255.0) = Field(
        (60.0, 160.0), description="How much darker barcodes and clutter are than the surface under them "
                                   "(lighter on a dark surface).")
    rotation: FloatRange(-180.0, 180.0) = Field(
        (-4.0, 4.0), description="Rotation of each barcode, matrix code and clutter piece, in degrees.")
    keep_out: float = Field(
        1.0, ge=0.0, le=20.0, description="Barcodes and clutter stay outside every labelled line's quad grown by "
                                          "this many line heights on each side, so line crops with up to this "
                                          "much context show no unlabelled text.")
    attempts: int = Field(40, ge=1, le=1000, description="Random positions tried per barcode or clutter piece "
                                                         "before it is left out.")

    def page_items(self) -> bool:
        """Whether the page draws anything beyond labels (no draws otherwise)."""
        return max(self.barcodes[1], self.matrix_codes[1], self.clutter[1]) > 0


# ----------------------------------------------------------------------------- the label


@dataclass
class Label:
    """One block's label, drawn before its position is known (sizes in text heights, angles in degrees)."""

    level: float
    texture: float
    margins: tuple[float, float, float, float]  # left, top, right, bottom
    rotation: float
    corner: float
    shadow: float


def sample_label(cfg: ContextConfig, rng: np.random.Generator) -> Label | None:
    """Whether this block is on a label and its parameters; no draws when the recipe never asks."""
    if cfg.label <= 0 or rng.random() >= cfg.label:
        return None
    return Label(level=uniform(rng, cfg.label_level), texture=uniform(rng, cfg.label_texture),
                 margins=tuple(uniform(rng, cfg.label_margin) for _ in range(4)),
                 rotation=uniform(rng, cfg.label_rotation), corner=uniform(rng, cfg.label_corner),
                 shadow=uniform(rng, cfg.label_shadow))


def label_outline(label: Label, extent: tuple[float, float, float, float], height: float, H: np.ndarray,
                  scale: float = 1.0) -> np.ndarray:
    """The label's outline on the page (N x 2, clockwise, rounded corners sampled): a rectangle around the
    block's extent in the block frame, turned by `label.rotation` about the block's centre and still holding
    the whole block, its margins times `scale`."""
    x0, y0, x1, y1 = extent
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    t = math.radians(label.rotation)
    hw = w / 2 * abs(math.cos(t)) + h / 2 * abs(math.sin(t))  # the block turned into the label's frame
    hh = w / 2 * abs(math.sin(t)) + h / 2 * abs(math.cos(t))
    left, top, right, bottom = (m * height * scale for m in label.margins)
    lx0, ly0, lx1, ly1 = -hw - left, -hh - top, hw + right, hh + bottom
    r = min(label.corner * height, (lx1 - lx0) / 2, (ly1 - ly0) / 2)
    points = []
    for (px, py), start in (((lx1 - r, ly0 + r), -90), ((lx1 - r, ly1 - r), 0), ((lx0 + r, ly1 - r), 90),
                            ((lx0 + r, ly0 + r), 180)):  # clockwise on screen from the top right
        for a in np.radians(np.linspace(start, start + 90, 7 if r > 0.5 else 1)):
            points.append((px + r * math.cos(a), py + r * math.sin(a)))
    return geo.apply(H @ geo.translate(cx, cy) @ geo.rotate(-label.rotation), np.array(points))


def draw_label(pages: list[np.ndarray], outline: np.ndarray, label: Label) -> None:
    """Paint the label (in place, on each page): its shadow a few pixels down and right, then the paper,
    keeping `label.texture` of the surface's detail. Work is confined to the label's box."""
    rows, cols = pages[0].shape
    x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in outline.min(axis=0))
    x1, y1 = (min(int(np.ceil(v)) + 6, n) for v, n in zip(outline.max(axis=0), (cols, rows)))
    if x1 <= x0 or y1 <= y0:
        return
    local = outline - (x0, y0)
    paper = _fill_poly(local, y1 - y0, x1 - x0)
    shadow = cv2.GaussianBlur(_fill_poly(local + 2.0, y1 - y0, x1 - x0), (5, 5), 1.0) * label.shadow
    for page in pages:
        region = page[y0:y1, x0:x1]
        surface = region.astype(np.float32)
        detail = surface - float(surface.mean())
        out = surface * (1 - shadow)
        out = out * (1 - paper) + (label.level + label.texture * detail) * paper
        region[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _fill_poly(points: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Antialiased coverage (0..1) of a polygon."""
    mask = np.zeros((rows, cols), np.uint8)
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


# ----------------------------------------------------------------------------- barcodes, matrix codes, text


def _overlap(n: int, size: float) -> np.ndarray:
    """(pixels x n) lengths of pixel [i, i+1) covered by cell [j size, (j+1) size): exact area coverage."""
    pixels = int(math.ceil(n * size))
    edges = np.arange(pixels + 1, dtype=np.float64)
    lo = np.minimum.outer(edges[1:], (np.arange(n) + 1) * size)
    hi = np.maximum.outer(edges[:-1], np.arange(n) * size)
    return np.clip(lo - hi, 0.0, 1.0)


def ean13(rng: np.random.Generator) -> tuple[str, np.ndarray, np.ndarray]:
    """A random EAN-13 number with its check digit: (digits, bar modules, guard-bar modules), 95 modules."""
    digits = [int(d) for d in rng.integers(0, 10, 12)]
    digits.append((10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10)
    bits = "101"
    for d, parity in zip(digits[1:7], EAN_PARITY[digits[0]]):
        bits += EAN_L[d] if parity == "L" else _flip(EAN_L[d])[::-1]  # L or G code
    bits += "01010" + "".join(_flip(EAN_L[d]) for d in digits[7:]) + "101"  # R codes
    guard = "101" + "0" * 42 + "01010" + "0" * 42 + "101"
    as_array = lambda s: np.array([int(c) for c in s], np.float64)  # noqa: E731
    return "".join(map(str, digits)), as_array(bits), as_array(guard)


def _flip(code: str) -> str:
    return "".join("1" if c == "0" else "0" for c in code)


def random_bars(rng: np.random.Generator) -> np.ndarray:
    """Bars and spaces of random widths (1-4 modules), as a Code 128 or Code 39 symbol looks: modules."""
    widths = rng.integers(1, 5, int(rng.integers(25, 60)))
    return np.concatenate([np.full(w, 1.0 - k % 2) for k, w in enumerate(widths)] + [np.ones(2)])


def barcode_patch(cfg: ContextConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A 1-D barcode's coverage (uint8) with its quiet zone, and its record."""
    module, height = uniform(rng, cfg.barcode_module_px), uniform(rng, cfg.barcode_height_px)
    if rng.random() < 0.5:
        number, bars, guard = ean13(rng)
        record = {"kind": "ean13", "digits": number}
    else:
        bars = random_bars(rng)
        guard, number, record = np.zeros_like(bars), "", {"kind": "bars"}
    quiet = np.zeros(9)
    bars, guard = np.concatenate([quiet, bars, quiet]), np.concatenate([quiet, guard, quiet])
    across = _overlap(len(bars), module)
    rows, extra = int(round(height)), int(round(5 * module))
    patch = np.vstack([np.tile(across @ bars, (rows, 1)), np.tile(across @ guard, (extra, 1))])
    if number and rng.random() < 0.7:  # the digits under the bars
        face = _clutter_face(rng)
        digits = text_patch(number[0] + "  " + number[1:7] + "  " + number[7:], face, 7 * module)
        if digits.shape[1] <= patch.shape[1]:
            line = np.zeros((digits.shape[0] + 2, patch.shape[1]), np.float64)
            left = (patch.shape[1] - digits.shape[1]) // 2
            line[2:, left:left + digits.shape[1]] = digits / 255.0
            patch = np.vstack([patch, line])
            record["human_readable"] = True
    record.update(module_px=round(module, 3), height_px=round(height, 2))
    return np.round(patch * 255).astype(np.uint8), record


def matrix_patch(cfg: ContextConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A DataMatrix-like code: random modules inside a solid L (left, bottom) and a clock track (top, right),
    with a quiet zone of 2 modules."""
    n, module = integer(rng, cfg.matrix_modules), uniform(rng, cfg.matrix_module_px)
    grid = (rng.random((n, n)) < 0.5).astype(np.float64)
    grid[:, 0], grid[-1, :] = 1.0, 1.0
    grid[0, :] = np.arange(n) % 2 == 0
    grid[:, -1] = np.arange(n) % 2 == (n - 1) % 2
    grid = np.pad(grid, 2)
    across = _overlap(n + 4, module)
    patch = across @ grid @ across.T
    return np.round(patch * 255).astype(np.uint8), {"kind": "matrix", "modules": n, "module_px": round(module, 3)}


def _clutter_face(rng: np.random.Generator) -> FontFace:
    info = catalog()[choose(rng, CLUTTER_FONTS)]
    return FontFace(info.id, str(info.path), info.axes)


def text_patch(text: str, face: FontFace, height: float) -> np.ndarray:
    """One line of text drawn with `face`, its capital height about `height` px: coverage (uint8)."""
    from PIL import Image, ImageDraw

    font = load_font(face, max(int(round(height / height_per_em(face))), 4))
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    canvas = Image.new("L", (max(right - left, 1) + 2, max(bottom - top, 1) + 2), 0)
    ImageDraw.Draw(canvas).text((1 - left, 1 - top), text, fill=255, font=font, anchor="ls")
    return np.asarray(canvas)


def clutter_words(cfg: ContextConfig, rng: np.random.Generator) -> str:
    """One line of clutter: 1-6 words of the recipe's list with a random number now and then."""
    words = []
    for _ in range(int(rng.integers(1, 7))):
        if rng.random() < 0.25:
            words.append(str(int(rng.integers(0, 10 ** int(rng.integers(1, 6))))) +
                         choose(rng, ["", "", "g", " ml", "%", ".5"]))
        else:
            words.append(choose(rng, cfg.clutter_words))
    return " ".join(words)


def clutter_patch(cfg: ContextConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A piece of unlabelled printed text: 1-4 left-aligned lines in one font and size."""
    face, height = _clutter_face(rng), uniform(rng, cfg.clutter_height_px)
    texts = [clutter_words(cfg, rng) for _ in range(int(rng.integers(1, 5)))]
    lines = [text_patch(t, face, height) for t in texts]
    pitch = int(round(height * 1.6))
    patch = np.zeros((pitch * (len(lines) - 1) + max(p.shape[0] for p in lines), max(p.shape[1] for p in lines)),
                     np.uint8)
    for k, line in enumerate(lines):
        view = patch[k * pitch:k * pitch + line.shape[0], :line.shape[1]]
        np.maximum(view, line, out=view)
    return patch, {"kind": "text", "font": face.label, "height_px": round(height, 2), "lines": texts}


# ----------------------------------------------------------------------------- placing them


def keep_out_quad(quad: np.ndarray, margin: float) -> np.ndarray:
    """A line quad grown by `margin` line heights on every side, along its own sides (the line's frame)."""
    q = np.asarray(quad, np.float64)
    along = (q[1] - q[0]) + (q[2] - q[3])
    down = (q[3] - q[0]) + (q[2] - q[1])
    height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    u = along / max(np.linalg.norm(along), 1e-9) * margin * height
    v = down / max(np.linalg.norm(down), 1e-9) * margin * height
    return q + np.array([-u - v, u - v, u + v, -u + v])


def keep_out_mask(quads: list[np.ndarray], margin: float, shape: tuple[int, int]) -> np.ndarray:
    """The page's keep-out zone: every line quad grown by `margin` line heights, and KEEP_OUT_SLACK_PX more."""
    mask = np.zeros(shape, np.uint8)
    for quad in quads:
        cv2.fillConvexPoly(mask, np.round(keep_out_quad(quad, margin) * 16).astype(np.int32), 255, cv2.LINE_AA,
                           shift=4)
    size = 2 * KEEP_OUT_SLACK_PX + 1
    return cv2.dilate(mask, np.ones((size, size), np.uint8))


@dataclass
class Placed:
    """Where a patch landed: its page box and warped coverage (uint8) in that box."""

    x0: int
    y0: int
    coverage: np.ndarray
    quad: np.ndarray


def _warp(patch: np.ndarray, H: np.ndarray, shape: tuple[int, int]) -> Placed | None:
    h, w = patch.shape
    quad = geo.apply(H, geo.rect_quad(0, 0, w, h))
    x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in quad.min(axis=0))
    x1, y1 = (min(int(np.ceil(v)) + 2, n) for v, n in zip(quad.max(axis=0), (shape[1], shape[0])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    cov = cv2.warpPerspective(patch, geo.to_cv(geo.translate(-x0, -y0) @ H), (x1 - x0, y1 - y0),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return Placed(x0, y0, cov, quad)


def place_patch(patch: np.ndarray, G: np.ndarray, blocked: np.ndarray, rotation: tuple[float, float],
                attempts: int, rng: np.random.Generator) -> tuple[Placed | None, float]:
    """Try random positions (centre anywhere on the page, so a piece may leave it) until the patch's warped ink
    misses every blocked pixel: (where it went or None, its rotation)."""
    rows, cols = blocked.shape
    angle = uniform(rng, rotation)
    h, w = patch.shape
    for _ in range(attempts):
        cx, cy = rng.uniform(0, cols), rng.uniform(0, rows)
        H = G @ geo.translate(cx, cy) @ geo.rotate(angle) @ geo.translate(-w / 2, -h / 2)
        placed = _warp(patch, H, (rows, cols))
        if placed is None or not placed.coverage.any():
            continue
        ph, pw = placed.coverage.shape
        if (blocked[placed.y0:placed.y0 + ph, placed.x0:placed.x0 + pw][placed.coverage > 0] > 0).any():
            continue
        return placed, angle
    return None, angle


def print_patch(pages: list[np.ndarray], placed: Placed, contrast: float) -> None:
    """Print the coverage `contrast` gray levels darker than the surface under it (lighter where the surface is
    dark, as white print on black plastic), in place on each page."""
    ph, pw = placed.coverage.shape
    ink = placed.coverage.astype(np.float32) / 255.0 * contrast
    sign = 1.0 if float(pages[0][placed.y0:placed.y0 + ph, placed.x0:placed.x0 + pw].mean()) < 100 else -1.0
    for page in pages:
        region = page[placed.y0:placed.y0 + ph, placed.x0:placed.x0 + pw]
        region[:] = np.clip(region.astype(np.float32) + sign * ink + 0.5, 0, 255).astype(np.uint8)


MAKERS = {"barcodes": barcode_patch, "matrix_codes": matrix_patch, "clutter": clutter_patch}


def draw_page_context(cfg: ContextConfig, rng: np.random.Generator, pages: list[np.ndarray],
                      line_quads: list[np.ndarray], G: np.ndarray) -> dict:
    """Draw the page's barcodes, matrix codes and clutter text (in place, on each page) outside the keep-out
    zone and apart from each other; the record lists what was drawn and what found no room."""
    shape = pages[0].shape
    blocked = keep_out_mask(line_quads, cfg.keep_out, shape)
    record: dict = {"keep_out": cfg.keep_out, "items": [], "left_out": 0}
    counts = {name: integer(rng, getattr(cfg, name)) if getattr(cfg, name)[1] > 0 else 0 for name in MAKERS}
    record["asked"] = counts
    for name, make in MAKERS.items():
        for _ in range(counts[name]):
            patch, item = make(cfg, rng)
            contrast = uniform(rng, cfg.contrast)
            placed, angle = place_patch(patch, G, blocked, cfg.rotation, cfg.attempts, rng)
            if placed is None:
                record["left_out"] += 1
                continue
            print_patch(pages, placed, contrast)
            ph, pw = placed.coverage.shape
            apart = cv2.dilate((placed.coverage > 0).astype(np.uint8), np.ones((9, 9), np.uint8))
            view = blocked[placed.y0:placed.y0 + ph, placed.x0:placed.x0 + pw]
            np.maximum(view, apart * 255, out=view)
            record["items"].append({**item, "quad": np.round(placed.quad, 2).tolist(), "rotation": round(angle, 3),
                                    "contrast": round(contrast, 2)})
    return record


def label_record(label: Label, outline: np.ndarray, scale: float) -> dict:
    return {**{k: (round(v, 4) if isinstance(v, float) else [round(m, 4) for m in v])
               for k, v in asdict(label).items()},
            "margin_scale": scale, "outline": np.round(outline, 2).tolist()}
