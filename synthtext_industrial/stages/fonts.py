"""Fonts: the bundled catalogue, glyph coverage (checked with fontTools before any
rendering) and cached glyph bitmaps from Pillow's FreeType renderer.

A `FontFace` is one concrete font to draw with: a file plus variable-font axis
values plus characters it must not be used for (glyphs that are missing, or that
look like another character, e.g. lowercase drawn as capitals).
"""
from __future__ import annotations

import csv
import hashlib
import string
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import cv2
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont
from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..core.assets import bundled_dir
from ..core.config import StrictModel, resolve_path

CATEGORIES = ("dot-matrix", "segment", "ocr", "monospace", "industrial-sans", "engraving", "stencil")
REFERENCE_CHAR = "0"  # character heights are measured on the digit zero, which every font draws


@dataclass(frozen=True)
class FontInfo:
    """One row of fonts/CATALOG.tsv."""

    id: str
    path: Path
    category: str
    licence: str
    axes: tuple[tuple[str, float], ...]
    exclude: str
    lookalikes: tuple[str, ...]  # groups of characters drawn alike apart from width, e.g. ("0O",)


@cache
def catalog() -> dict[str, FontInfo]:
    """The bundled fonts by id."""
    folder = bundled_dir("fonts")
    fonts = {}
    with open(folder / "CATALOG.tsv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            axes = tuple(
                (k.strip(), float(v)) for k, v in (item.split("=") for item in row["axes"].split(",") if item)
            )
            fonts[row["id"]] = FontInfo(row["id"], folder / row["file"], row["category"], row["licence"],
                                        axes, row["exclude"] or "", tuple((row.get("lookalikes") or "").split()))
    return fonts


@cache
def cmap_chars(path: str) -> frozenset[str]:
    """Characters the font file maps to a glyph (fontTools, no rendering)."""
    with TTFont(path, lazy=True) as font:
        cmap = font.getBestCmap() or {}
    return frozenset(chr(code) for code in cmap)


@dataclass(frozen=True)
class FontFace:
    """A concrete font to render with."""

    label: str  # bundled id or file name, for messages
    path: str
    axes: tuple[tuple[str, float], ...] = ()
    exclude: str = ""
    lookalikes: tuple[str, ...] = ()
    check_drawing: bool = False  # a font file from a recipe: its character map alone is not trusted
    twin: str = ""  # the bundled font this file is a copy of, whose exclusions it takes

    def coverage(self) -> frozenset[str]:
        """Characters this face may draw (space always counts: it draws nothing)."""
        return (cmap_chars(self.path) - frozenset(self.exclude)) | {" "}

    def missing_reasons(self, chars: frozenset[str] | set[str]) -> dict[str, str]:
        """Each character of `chars` this face cannot draw, with why."""
        mapped = cmap_chars(self.path)
        excluded = f"excluded for the bundled font {self.twin or self.label}, which draws them unreadably"
        reasons = {c: excluded if c in mapped else "not in the font" for c in sorted(set(chars) - self.coverage())}
        if self.check_drawing:
            reasons.update(drawing_problems(self, frozenset(chars) & self.coverage()))
        return dict(sorted(reasons.items()))

    def missing(self, chars: frozenset[str] | set[str]) -> str:
        """The characters of `chars` this face cannot draw, sorted, as one string."""
        return "".join(self.missing_reasons(chars))


PROBE_EM = 96  # em size the drawing check renders at: big enough that distinct shapes differ in pixels
INK = 128  # a glyph with no pixel this dark draws nothing


def _keep_order(char: str) -> tuple[int, int]:
    """Of characters drawn alike, the one that keeps the drawing: digits, capitals, small letters, the rest."""
    for rank, group in enumerate((string.digits, string.ascii_uppercase, string.ascii_lowercase, string.printable)):
        if char in group:
            return rank, ord(char)
    return 4, ord(char)


@lru_cache(maxsize=256)
def drawing_problems(face: FontFace, chars: frozenset[str]) -> dict[str, str]:
    """Characters of `chars` the font maps but cannot really draw, with why, found by drawing them.

    A glyph that draws nothing, draws the font's missing-glyph shape (.notdef), or draws exactly what
    another character draws (a seven-segment font's 'a' is its 'A') cannot show its label. Of two
    characters drawn alike, the digit, else the capital, keeps the drawing; the other is missing.
    """
    mapped = cmap_chars(face.path)
    unmapped = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in mapped)
    notdef = truetype_glyph(face, PROBE_EM, unmapped)

    def key(glyph: Glyph) -> tuple:
        return glyph.bitmap.shape, glyph.bitmap.tobytes(), round(glyph.top)

    drawn = {c: truetype_glyph(face, PROBE_EM, c)
             for c in ((frozenset(string.printable) | chars) & mapped) if not c.isspace()}
    keeper: dict[tuple, str] = {}
    for c in sorted(drawn, key=_keep_order):
        keeper.setdefault(key(drawn[c]), c)
    problems = {}
    for c in sorted(chars & drawn.keys()):
        glyph = drawn[c]
        if glyph.bitmap.size == 0 or glyph.bitmap.max() < INK:
            problems[c] = "draws nothing"
        elif notdef.bitmap.size and key(glyph) == key(notdef):
            problems[c] = "draws the font's missing-glyph box"
        elif keeper[key(glyph)] != c:
            problems[c] = f"is drawn exactly like {keeper[key(glyph)]!r}"
    return problems


@lru_cache(maxsize=256)
def axis_problem(face: FontFace) -> str:
    """Why the face's axis values cannot be set ('' when they can): Pillow fails only when it draws."""
    if not face.axes:
        return ""
    with TTFont(face.path, lazy=True) as font:
        fvar = font["fvar"] if "fvar" in font else None
        ranges = {a.axisTag: (a.minValue, a.maxValue) for a in fvar.axes} if fvar else {}
    if not ranges:
        return f"{face.label} is not a variable font: it has no axes to set; remove `axes`"
    allowed = ", ".join(f"{n} {lo:g}-{hi:g}" for n, (lo, hi) in ranges.items())
    for name, value in face.axes:
        if name not in ranges:
            return f"{face.label} has no axis {name!r}; its axes: {allowed}"
        lo, hi = ranges[name]
        if not lo <= value <= hi:
            return f"{face.label} axis {name} = {value:g} is out of range; its axes: {allowed}"
    return ""


def describe_missing(reasons: dict[str, str]) -> str:
    """'!' draws nothing; 'ab' are drawn exactly like 'AB'; ... (one line of an error message)."""
    alike = [(c, why[len("is drawn exactly like "):].strip("'")) for c, why in reasons.items()
             if why.startswith("is drawn exactly like ")]
    groups: dict[str, str] = {}
    for c, why in reasons.items():
        if not why.startswith("is drawn exactly like "):
            groups[why] = groups.get(why, "") + c
    parts = [f"{chars!r} {'is' if len(chars) == 1 else 'are'} {why}" if why.startswith(("not", "excluded"))
             else f"{chars!r} {why}" for why, chars in groups.items()]
    if alike:
        parts.append(f"{''.join(c for c, _ in alike)!r} drawn exactly like {''.join(k for _, k in alike)!r}")
    return "; ".join(parts)


@cache
def _bundled_by_content() -> dict[str, list[FontInfo]]:
    """Bundled catalogue entries by the SHA-256 of their font file."""
    by_hash: dict[str, list[FontInfo]] = {}
    for info in catalog().values():
        by_hash.setdefault(hashlib.sha256(info.path.read_bytes()).hexdigest(), []).append(info)
    return by_hash


def bundled_twin(path: str) -> list[FontInfo]:
    """The catalogue entries whose font file has the same bytes as `path` (a copied bundled font)."""
    return _bundled_by_content().get(hashlib.sha256(Path(path).read_bytes()).hexdigest(), [])


def lookalikes_to_avoid(groups: tuple[str, ...], charset: frozenset[str] | set[str]) -> frozenset[str]:
    """Characters a font should not draw from character classes, so that every label can be read.

    In each group of lookalikes (characters the font draws alike apart from width, which the
    recipe's aspect range erases) the first one the charset can print is kept and the others
    are avoided; a group with one member in the charset is no ambiguity.
    """
    avoid: set[str] = set()
    for group in groups:
        present = [c for c in group if c in charset]
        avoid.update(present[1:])
    return frozenset(avoid)


def check_lookalikes(groups: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    for group in groups:
        if len(set(group)) < 2 or len(set(group)) != len(group):
            raise ValueError(f"lookalike group {group!r} must list 2 or more different characters, "
                             f"the one to keep first (e.g. '0O': draw 0, never O)")
    return tuple(groups)


@lru_cache(maxsize=512)
def load_font(face: FontFace, em_px: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(face.path, size=em_px, layout_engine=ImageFont.Layout.BASIC)
    if face.axes:
        # Recipes and the catalogue give axis tags (wght, ROND); Pillow lists the axes, in the font's fvar
        # order, by their display names (Weight, Roundness), so tags are matched by position.
        wanted = dict(face.axes)
        values = [wanted.get(tag, axis["default"]) for tag, axis in zip(_axis_tags(face.path),
                                                                         font.get_variation_axes())]
        font.set_variation_by_axes(values)
    return font


@lru_cache(maxsize=64)
def _axis_tags(path: str) -> tuple[str, ...]:
    """The font's variation axis tags in fvar order (the order Pillow lists and sets them in)."""
    with TTFont(path, lazy=True) as font:
        return tuple(axis.axisTag for axis in font["fvar"].axes) if "fvar" in font else ()


@lru_cache(maxsize=256)
def height_per_em(face: FontFace) -> float:
    """Ink height of the reference digit per pixel of em size, to turn a character height into a font size."""
    font = load_font(face, 200)
    left, top, right, bottom = font.getbbox(REFERENCE_CHAR, anchor="ls")
    return max(bottom - top, 1) / 200.0


@dataclass(frozen=True)
class Glyph:
    """A character's bitmap placed relative to the pen position on the baseline."""

    bitmap: np.ndarray  # h x w uint8 coverage, tight around the ink (may be 0x0 for blank glyphs)
    left: float  # x of bitmap column 0 relative to the pen
    top: float  # y of bitmap row 0 relative to the baseline (negative: above it)
    advance: float


ASPECT_STEP = 1 / 64  # stretches are quantised so that stretched glyphs can be cached


def quantise_aspect(aspect: float) -> float:
    return max(round(aspect / ASPECT_STEP), 1) * ASPECT_STEP


# Alternative forms of seven-segment digits, as unions of intersections of DSEG7 glyphs drawn at one origin
# (DSEG7 draws every character on the same segment grid). Real displays differ in 6, 7 and 9: with or without
# their "tail" segment. DSEG7 draws all three with tails (its 7 lights the upper-left segment too).
SEGMENT_FORMS = {
    "tailless_7": ("7", (("7", "3"),)),  # 7 of the top and right segments only, as most pumps and meters draw it
    "tailless_6": ("6", (("b",),)),  # 6 without the top segment
    "tailless_9": ("9", (("q",),)),  # 9 without the bottom segment
}


SEGMENT_MIN_SHARE = 0.2  # a piece of a form smaller than this share of its largest segment is a speck


def has_segment_forms(face) -> bool:
    """Whether `face` is a seven-segment font whose glyphs the forms above are built from."""
    return isinstance(face, FontFace) and face.label.lower().startswith("dseg7")


@lru_cache(maxsize=16384)
def truetype_glyph(face: FontFace, em_px: int, char: str, stroke: int = 0, aspect: float = 1.0,
                   form: tuple[tuple[str, ...], ...] = ()) -> Glyph:
    """A glyph stretched horizontally by `aspect`; with a `form`, the union of intersections of the listed
    characters' glyphs drawn at one origin instead of `char`'s own (its advance stays `char`'s).

    The stretch always shrinks a rendering with area averaging (x for condensed
    text; y of a rendering `aspect` times larger for widened text), so edges keep
    a one-pixel antialiasing ramp; enlarging a bitmap would smear them.
    """
    render_em = int(round(em_px * max(aspect, 1.0)))
    font = load_font(face, render_em)
    x_scale = min(aspect, 1.0)
    y_scale = 1.0 / max(aspect, 1.0)
    advance = font.getlength(char) * x_scale
    terms = form or ((char,),)
    boxes = [font.getbbox(c, anchor="ls", stroke_width=stroke) for term in terms for c in term]
    left, top, right, bottom = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                                max(b[3] for b in boxes))
    width, height = max(right - left, 0), max(bottom - top, 0)
    if width == 0 or height == 0:
        return Glyph(np.zeros((0, 0), np.uint8), 0.0, 0.0, advance)

    def drawn(c: str) -> np.ndarray:
        image = Image.new("L", (width, height), 0)
        ImageDraw.Draw(image).text((-left, -top), c, font=font, fill=255, anchor="ls",
                                   stroke_width=stroke, stroke_fill=255)
        return np.asarray(image)

    bitmap = np.max([np.min([drawn(c) for c in term], axis=0) for term in terms], axis=0)
    if form:  # where two glyphs' strokes only meet, their intersection leaves specks, no segment: drop them
        count, labels, stats, _ = cv2.connectedComponentsWithStats((bitmap > 0).astype(np.uint8))
        areas = stats[:, cv2.CC_STAT_AREA]
        keep = areas >= SEGMENT_MIN_SHARE * areas[1:].max(initial=0)
        keep[0] = False
        bitmap = np.where(keep[labels], bitmap, 0).astype(np.uint8)
    if x_scale != 1.0 or y_scale != 1.0:
        size = (max(int(round(width * x_scale)), 1), max(int(round(height * y_scale)), 1))
        bitmap = cv2.resize(bitmap, size, interpolation=cv2.INTER_AREA)
        x_scale, y_scale = size[0] / width, size[1] / height  # what the rounding actually gave
    rows, cols = np.nonzero(bitmap)
    if rows.size == 0:
        return Glyph(np.zeros((0, 0), np.uint8), 0.0, 0.0, advance)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    return Glyph(np.ascontiguousarray(bitmap[r0:r1, c0:c1]), left * x_scale + c0, top * y_scale + r0, advance)


# ----------------------------------------------------------------------------- recipe section

class TrueTypeSource(StrictModel):
    """A font to draw with: a bundled font by id, every bundled font of a category, or a font file."""

    font: str | None = Field(None, description="id of a bundled font (see `synthtext-industrial fonts`)")
    category: Literal[CATEGORIES] | None = Field(None, description="every bundled font of this category")  # type: ignore[valid-type]
    file: str | None = Field(None, description="a .ttf/.otf file, relative to the recipe")
    weight: float = Field(1.0, gt=0, description="relative chance of drawing this entry")
    axes: dict[str, float] = Field(default_factory=dict, description="variable-font axis values, e.g. {wght: 700}")
    lookalikes: list[str] | None = Field(
        None, description="groups of characters this font draws alike apart from width, the one to keep first "
                          "(e.g. ['0O']); null: the catalogue's groups for bundled fonts, none for files")
    missing_glyphs: Literal["error", "skip"] = Field(
        "error", description="a text the font cannot draw: `error` refuses the recipe, `skip` uses another font")

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in ("font", "category", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `font` (bundled id), `category` or `file`"
                             + (f"; got {', '.join(given)}" if given else ""))
        return self

    @field_validator("lookalikes")
    @classmethod
    def _check_lookalikes(cls, value):
        return None if value is None else list(check_lookalikes(value))

    @field_validator("font")
    @classmethod
    def _known_font(cls, value):
        if value is not None and value not in catalog():
            import difflib
            close = difflib.get_close_matches(value, catalog(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown bundled font {value!r}{hint}; bundled fonts: {', '.join(catalog())}")
        return value

    @field_validator("file")
    @classmethod
    def _font_file(cls, value, info: ValidationInfo):
        if value is None:
            return value
        path = resolve_path(value, info.context)
        if not path.is_file():
            raise ValueError(f"font file {value!r} not found (looked at {path})")
        try:
            cmap_chars(str(path))
        except Exception as exc:  # fontTools raises many kinds for a non-font file
            raise ValueError(f"{value!r} is not a readable TrueType/OpenType font: {exc}") from None
        return str(path)

    def faces(self) -> list[FontFace]:
        """The concrete faces this entry stands for."""
        extra_axes = tuple(sorted(self.axes.items()))
        if self.file is not None:
            # a copy of a bundled font keeps the catalogue's exclusions and lookalikes; every file is also
            # checked by drawing, as the catalogue's fonts are checked by the tests
            twins = bundled_twin(self.file)
            exclude = "".join(sorted({c for info in twins for c in info.exclude}))
            lookalikes = self.lookalikes if self.lookalikes is not None else (twins[0].lookalikes if twins else ())
            return [FontFace(Path(self.file).name, self.file, extra_axes, exclude, tuple(lookalikes),
                             check_drawing=True, twin=twins[0].id if twins else "")]
        infos = [catalog()[self.font]] if self.font else [f for f in catalog().values() if f.category == self.category]
        faces = []
        for info in infos:
            axes = dict(info.axes)
            axes.update(self.axes)
            lookalikes = info.lookalikes if self.lookalikes is None else tuple(self.lookalikes)
            faces.append(FontFace(info.id, str(info.path), tuple(sorted(axes.items())), info.exclude, lookalikes))
        return faces
