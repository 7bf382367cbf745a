"""`fit`: measure real line crops and a recipe's own crops alike, show the gap, and write a recipe that covers the real.

Real crops are read from a folder of images (no labels are read). The recipe's crops are rendered here exactly as
`generate --crops` writes them (`crops.framed_crops`: the same `crops` stream, margins, and capture at
`crops.text_height_px` scaled back up), so both sides are measured at the size a recognizer is trained on, by
`measure.measure_crop`.

The fitted recipe is the original YAML with the fields below replaced (recipes have no include mechanism, so it is
a complete recipe; its header lists every change, old -> new and why). Each rule reads how the recipe's present
values show in its own measured crops, so the fit is then refined: the fitted recipe is rendered, measured and
fitted again (`refine` rounds), and finally measured once more for the report (its gap and histograms).

| measure | recipe field | rule |
|---|---|---|
| text height | `typography.height_px` | real p5-p95 x the recipe's drawn / measured height (median); a minimum at which a block no longer fits the page is lowered to the largest that fits |
| blur | `effects.blur` (whole frame) | real blur beyond the recipe's sharpest crops (its p10, in quadrature): p = share over 0.5 px, sigma = their p10-p90; refined by the real / fitted median |
| contrast | `colour.contrast` | the recipe's range moved by (real - synthetic) at p5 and at p95 |
| polarity | `colour.polarity` | the real shares of dark-on-light and light-on-dark |
| brightness | `background.brightness`, and `display.window_level` where the recipe draws displays | the recipe's range moved by (real - synthetic) at p5 and at p95 |
| noise | `effects.noise` | real p5-p95, or the recipe's range x real / synthetic median once its noise shows; p = share of real crops with noise over 1 gray level |
| JPEG | `effects.jpeg.p` | share of real crops with blockiness over 8 (z-score; crops without blocks read about 1-6) |

Stroke width and ground texture are compared but set nothing (no one recipe field sets them); `crops` framing and
capture size are left as the recipe has them.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
import yaml

from .crops import framed_line_crops
from .measure import MEASURES, gap_score, measure_crop
from .core.config import RecipeError
from .fit import misfits
from .recipe import Recipe, recipe_from_dict
from .render import render_sample

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm"}
NOISY = 1.0  # gray levels of noise std that count as a noisy crop
BLURRED = 0.5  # px of blur beyond the recipe's sharpest crops that counts as a blurred crop
BLOCKY = 8.0  # blockiness (z-score) that counts as a JPEG-blocky crop (no blocks: about 1-6)


class FitError(ValueError):
    """Input `fit` cannot use (a missing folder, a folder without images): one line naming it."""


def find_images(folder: str | Path) -> list[Path]:
    """Every image file under `folder` (recursively), sorted; FitError when there is none."""
    root = Path(folder)
    if not root.exists():
        raise FitError(f"{folder}: no such folder")
    if not root.is_dir():
        raise FitError(f"{folder}: not a folder (give a folder of real line-crop images)")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise FitError(f"{folder}: no images in it (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths


def read_gray(path: Path) -> np.ndarray | None:
    """A grayscale uint8 image, or None when the file cannot be decoded."""
    data = np.fromfile(str(path), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None


def measure_images(paths: list[Path], progress: Callable[[Iterable], Iterable] = iter) -> tuple[list[dict], int]:
    """(measures of every decodable image, each with its `file`, how many could not be read)."""
    rows, unreadable = [], 0
    for path in progress(paths):
        img = read_gray(path)
        if img is None or min(img.shape) < 8:
            unreadable += 1
            continue
        rows.append({**measure_crop(img), "file": str(path)})
    return rows, unreadable


def measure_photos(photos: str | Path, max_images: int = 1000, seed: int = 0,
                   progress: Callable[..., Iterable] | None = None) -> tuple[list[dict], int]:
    """(measures, unreadable count) of at most `max_images` images of the folder (an even sample for a seed)."""
    progress = progress or (lambda items, **_kw: items)
    paths = find_images(photos)
    if len(paths) > max_images:
        keep = np.sort(np.random.default_rng(seed).choice(len(paths), max_images, replace=False))
        paths = [paths[i] for i in keep]
    real, unreadable = measure_images(paths, lambda items: progress(items, desc="measuring real crops", unit="img"))
    if not real:
        raise FitError(f"{photos}: none of its {len(paths)} images could be read")
    return real, unreadable


def recipe_crops(recipe: Recipe, pages: int, seed: int = 0, start: int = 0):
    """(crop, text height on the page, capture text height or None) for every line of `pages` pages.

    The crops are the ones `generate --crops` writes (`crops.framed_crops`: the same stream, margins and capture
    at `crops.text_height_px`, scaled back up), so they are measured at the size a recognizer is trained on.
    """
    for index in range(start, start + pages):
        for framed in framed_line_crops(render_sample(recipe, seed, index), recipe.crops):
            yield framed.image, framed.text_height, framed.framing["text_height_px"]


def measure_recipe(recipe: Recipe, pages: int, seed: int = 0,
                   progress: Callable[[Iterable], Iterable] = iter) -> list[dict]:
    """Measures of the recipe's crops of `pages` pages, each with `nominal_height` (the text height the recipe
    drew) and `capture_height` (the text height it was captured at: at most the nominal one)."""
    rows = []
    for crop, nominal, target in progress(recipe_crops(recipe, pages, seed)):
        if min(crop.shape) < 8:
            continue
        row = measure_crop(crop)
        row.update(nominal_height=nominal, capture_height=min(nominal, target) if target is not None else nominal)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- comparing

def column(rows: list[dict], name: str) -> np.ndarray:
    values = np.array([r[name] for r in rows], np.float64)
    return values[np.isfinite(values)]


def quantiles(values: np.ndarray, qs=(5, 50, 95)) -> list[float]:
    return [float(v) for v in np.percentile(values, qs)] if values.size else [math.nan] * len(qs)


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance: the largest gap between the two empirical CDFs (0 same, 1 apart)."""
    if not a.size or not b.size:
        return math.nan
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / a.size
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return float(np.abs(cdf_a - cdf_b).max())


def _range(lo: float, hi: float, low: float, high: float, digits: int = 1) -> list[float]:
    """[lo, hi] clipped to [low, high], in order, rounded."""
    lo, hi = sorted((float(np.clip(lo, low, high)), float(np.clip(hi, low, high))))
    return [round(lo, digits), round(hi, digits)]


def _shifted(old: tuple[float, float], real: np.ndarray, syn: np.ndarray, low: float, high: float) -> list[float]:
    """The recipe's range moved by how far the real p5 and p95 lie from the synthetic p5 and p95."""
    r5, r95 = quantiles(real, (5, 95))
    s5, s95 = quantiles(syn, (5, 95))
    return _range(old[0] + r5 - s5, old[1] + r95 - s95, low, high)


def fitted_fields(recipe: Recipe, real: list[dict], syn: list[dict],
                  base_blur: float | None = None) -> dict[str, tuple[object, object, str]]:
    """{dotted field: (value now, fitted value, why)} for the recipe fields the real measures set.

    `syn` are the measures of `recipe`'s own crops: every rule reads how this recipe's values show in its measured
    crops, so running it again on the fitted recipe and its crops refines the fit (`fit(..., refine=1)`).
    `base_blur`: the blur of the original recipe's sharpest crops (its p10), given when refining.
    """
    out: dict[str, tuple[object, object, str]] = {}
    usable = [r for r in syn if math.isfinite(r["text_height"]) and r["text_height"] > 0]
    k = float(np.median([r["nominal_height"] / r["text_height"] for r in usable])) if usable else 1.0
    heights = column(real, "text_height")
    if heights.size:
        h5, h95 = quantiles(heights, (5, 95))
        out["typography.height_px"] = (list(recipe.typography.height_px), _range(h5 * k, h95 * k, 6, 1000),
                                       f"real text height p5-p95 {h5:.1f}-{h95:.1f} px x {k:.2f} (this recipe's "
                                       f"drawn / measured height)")
    blur_r, blur_s = column(real, "blur"), column(syn, "blur")
    if blur_r.size and blur_s.size:
        base = quantiles(blur_s, (10,))[0] if base_blur is None else base_blur
        extra = np.sqrt(np.maximum(blur_r ** 2 - base ** 2, 0))
        blurred = extra[extra > BLURRED]
        cfg = recipe.effects.blur
        old = {"p": cfg.p, "sigma": list(cfg.sigma)}
        new = {"p": round(float(blurred.size / extra.size), 2), "sigma": list(cfg.sigma)}
        why = f"real blur beyond this recipe's sharpest crops ({base:.2f} px), p10-p90, where over {BLURRED} px"
        if blurred.size and cfg.p > 0 and base_blur is not None:  # a refinement: scale what the recipe draws
            got = math.sqrt(max(quantiles(blur_s, (50,))[0] ** 2 - base ** 2, 0.01))
            target = math.sqrt(max(quantiles(blur_r, (50,))[0] ** 2 - base ** 2, 0.01))
            new["sigma"] = _range(cfg.sigma[0] * target / got, cfg.sigma[1] * target / got, 0.1, 50, 2)
            why = (f"this recipe's frame blur x {target / got:.2f} (real / synthetic median blur beyond "
                   f"{base:.2f} px)")
        elif blurred.size:
            new["sigma"] = _range(*quantiles(blurred, (10, 90)), 0.1, 50, 2)
        out["effects.blur"] = (old, new, why)
    contrast_r, contrast_s = column(real, "contrast"), column(syn, "contrast")
    if contrast_r.size and contrast_s.size:
        out["colour.contrast"] = (list(recipe.colour.contrast),
                                  _shifted(recipe.colour.contrast, contrast_r, contrast_s, 0, 255),
                                  "moved by real - synthetic contrast at p5 and p95")
    polarity = column(real, "polarity")
    if polarity.size:
        dark = float(np.mean(polarity > 0))
        old = recipe.colour.polarity
        out["colour.polarity"] = ({"dark_on_light": old.dark_on_light, "light_on_dark": old.light_on_dark},
                                  {"dark_on_light": round(dark, 2), "light_on_dark": round(1 - dark, 2)},
                                  "the real shares of each polarity")
    bright_r, bright_s = column(real, "brightness"), column(syn, "brightness")
    if bright_r.size and bright_s.size:
        out["background.brightness"] = (list(recipe.background.brightness),
                                        _shifted(recipe.background.brightness, bright_r, bright_s, -255, 255),
                                        "moved by real - synthetic ground brightness at p5 and p95")
        if recipe.display.p > 0:  # the ground of a display crop is its glass
            out["display.window_level"] = (list(recipe.display.window_level),
                                           _shifted(recipe.display.window_level, bright_r, bright_s, 0, 255),
                                           "the glass is the ground of a display's crop: moved by real - synthetic "
                                           "ground brightness at p5 and p95")
    noise_r, noise_s = column(real, "noise"), column(syn, "noise")
    if noise_r.size and noise_s.size:
        cfg = recipe.effects.noise
        old = {"p": cfg.p, "gaussian_sigma": list(cfg.gaussian_sigma)}
        n5, n50, n95 = quantiles(noise_r)
        s50 = quantiles(noise_s, (50,))[0]
        share = round(float(np.mean(noise_r > NOISY)), 2)
        if cfg.p > 0 and cfg.gaussian_sigma[1] > 0 and s50 > 0.3:
            gain = n50 / s50
            new = {"p": share, "gaussian_sigma": _range(cfg.gaussian_sigma[0] * gain,
                                                        cfg.gaussian_sigma[1] * gain, 0, 100, 2)}
            why = f"this recipe's noise x {gain:.2f} (real / synthetic median noise)"
        else:
            new = {"p": share, "gaussian_sigma": _range(n5, n95, 0, 100, 2)}
            why = "real noise p5-p95"
        why += f"; p: share of real crops with noise over {NOISY:g} gray level"
        out["effects.noise"] = (old, new, why)
    fill_r, fill_s = column(real, "fill"), column(syn, "fill")
    if fill_r.size and fill_s.size and recipe.crops.window < 1:
        # margin_y is drawn per side in line heights, so the margins above and below add up to 1 / fill - 1
        # line heights; each side takes half of the real - synthetic difference of that sum.
        r5, r95 = quantiles(1 / np.clip(fill_r, 0.05, 1) - 1, (5, 95))
        s5, s95 = quantiles(1 / np.clip(fill_s, 0.05, 1) - 1, (5, 95))
        old = recipe.crops.margin_y
        out["crops.margin_y"] = (list(old), _range(old[0] + (r5 - s5) / 2, old[1] + (r95 - s95) / 2, 0, 5, 2),
                                 "each side moved by half the real - synthetic margins above and below the text "
                                 "(1 / fill - 1 line heights) at p5 and p95")
    blocky = column(real, "blockiness")
    if blocky.size:
        out["effects.jpeg.p"] = (recipe.effects.jpeg.p, round(float(np.mean(blocky > BLOCKY)), 2),
                                 f"share of real crops with blockiness over {BLOCKY:g}")
    return out


def _set(data: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if isinstance(value, dict) and isinstance(node.get(keys[-1]), dict):
        node[keys[-1]] = {**node[keys[-1]], **value}
    else:
        node[keys[-1]] = value


def fitted_data(recipe: Recipe, changes: dict[str, tuple[object, object, str]]) -> dict:
    """The recipe's YAML data with the fitted fields replaced."""
    data = copy.deepcopy(yaml.safe_load(recipe.raw_text) or {})
    for dotted, (_old, new, _why) in changes.items():
        _set(data, dotted, new)
    return data


def fitted_recipe_text(recipe: Recipe, data: dict, changes: dict[str, tuple[object, object, str]],
                       photos: str) -> str:
    """The fitted recipe as YAML, its header listing each change."""
    data = dict(data)
    if data.get("name"):
        data["name"] = f"{data['name']}-fit"
    header = [f"# {Path(recipe.source).name} fitted to the real crops in {photos} by `synthtext-industrial fit`.",
              "# Changed fields (old -> new: why):"]
    header += [f"#   {dotted}: {json.dumps(old)} -> {json.dumps(new)}: {why}"
               for dotted, (old, new, why) in changes.items()]
    header.append(f"# Relative asset paths resolve against this file's folder; the original is in "
                  f"{Path(recipe.source).parent} (pass it as --assets-root if they no longer resolve).")
    return "\n".join(header) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def validated(data: dict, source: str, base_dir: Path) -> tuple[Recipe, str | None]:
    """(the recipe `data` makes, a note or None). A smallest text height at which a block no longer fits the page
    (the renderer shrinks large text, never below the minimum) is lowered to the largest that fits."""
    try:
        return recipe_from_dict(data, source, base_dir), None
    except RecipeError as exc:
        if "does not fit" not in str(exc):
            raise
    lo, hi = data["typography"]["height_px"]
    trial = copy.deepcopy(data)
    trial["typography"]["height_px"] = [6, hi]
    recipe = recipe_from_dict(trial, source, base_dir)
    wanted = recipe.model_copy(update={"typography": recipe.typography.model_copy(update={"height_px": (lo, hi)})})
    largest = max(6, min(m.largest_height for m in misfits(wanted)))
    data["typography"]["height_px"] = [float(largest), hi]
    note = f"typography.height_px min lowered from {lo:g} to {largest:g} px, the largest at which every block fits"
    return recipe_from_dict(data, source, base_dir), note


# ----------------------------------------------------------------------------- report

@dataclass
class FitReport:
    photos: str
    recipe: str
    real: list[dict]
    synthetic: list[dict]
    unreadable: int
    gap: float
    changes: dict[str, tuple[object, object, str]] = field(default_factory=dict)
    fitted: list[dict] = field(default_factory=list)  # the fitted recipe's crops, measured
    fitted_gap: float = math.nan
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        head = (f"{'measure':<22}{'unit':<12}{'real p5':>9}{'p50':>8}{'p95':>8}  {'recipe p5':>9}{'p50':>8}"
                f"{'p95':>8}{'KS':>6}  {'fitted p50':>10}{'KS':>6}")
        lines = [f"real: {self.photos} ({len(self.real)} crops measured"
                 + (f", {self.unreadable} unreadable" if self.unreadable else "") + ")",
                 f"recipe: {self.recipe} ({len(self.synthetic)} crops); fitted: fitted.yaml ({len(self.fitted)} crops)",
                 head, "-" * len(head)]
        for name, (what, unit) in MEASURES.items():
            r, s, f = column(self.real, name), column(self.synthetic, name), column(self.fitted, name)
            if name == "polarity":
                share = [float(np.mean(v > 0)) if v.size else math.nan for v in (r, s, f)]
                lines.append(f"{'dark-on-light share':<34}{share[0]:>25.2f}  {share[1]:>25.2f}"
                             f"{ks_distance(r, s):>6.2f}  {share[2]:>10.2f}{ks_distance(r, f):>6.2f}")
                continue
            rq, sq = quantiles(r), quantiles(s)
            lines.append(f"{what[:21]:<22}{unit[:11]:<12}{rq[0]:>9.2f}{rq[1]:>8.2f}{rq[2]:>8.2f}  {sq[0]:>9.2f}"
                         f"{sq[1]:>8.2f}{sq[2]:>8.2f}{ks_distance(r, s):>6.2f}  {quantiles(f, (50,))[0]:>10.2f}"
                         f"{ks_distance(r, f):>6.2f}")
        lines.append(f"domain gap (MMD^2, Gaussian kernel, real-standardised measures; lower is closer): recipe "
                     f"{self.gap:.4f}, fitted {self.fitted_gap:.4f}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict:
        def summary(rows):
            return {name: dict(zip(("p5", "p50", "p95"), quantiles(column(rows, name))), n=int(column(rows, name).size))
                    for name in MEASURES}

        return {"photos": self.photos, "recipe": self.recipe, "real_crops": len(self.real),
                "synthetic_crops": len(self.synthetic), "fitted_crops": len(self.fitted),
                "unreadable": self.unreadable, "gap_mmd2": self.gap, "fitted_gap_mmd2": self.fitted_gap,
                "fitted_closer": bool(self.fitted_gap < self.gap),
                "real": summary(self.real), "synthetic": summary(self.synthetic), "fitted": summary(self.fitted),
                "ks": {name: ks_distance(column(self.real, name), column(self.synthetic, name)) for name in MEASURES},
                "ks_fitted": {name: ks_distance(column(self.real, name), column(self.fitted, name))
                              for name in MEASURES},
                "changes": {k: {"old": o, "new": n, "why": w} for k, (o, n, w) in self.changes.items()},
                "notes": self.notes}


def write_measures(path: Path, real: list[dict], synthetic: list[dict], fitted: list[dict]) -> None:
    """Every crop's measures, one row each: set (real, recipe, fitted), the real crop's file, then the measures."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["set", "file", *MEASURES])
        for name, rows in (("real", real), ("recipe", synthetic), ("fitted", fitted)):
            for row in rows:
                writer.writerow([name, row.get("file", ""), *(f"{row[m]:.4g}" for m in MEASURES)])


def histogram_sheet(real: list[dict], synthetic: list[dict], fitted: list[dict] | None = None,
                    panel=(420, 220)) -> np.ndarray:
    """One panel per measure: the real histogram as gray bars, the recipe's as a red outline and the fitted
    recipe's as a blue one (each of unit area)."""
    pw, ph = panel
    cols = 3
    names = list(MEASURES)
    sheet = np.full((ph * math.ceil(len(names) / cols), pw * cols, 3), 255, np.uint8)
    for n, name in enumerate(names):
        x0, y0 = (n % cols) * pw, (n // cols) * ph
        r, s, f = column(real, name), column(synthetic, name), column(fitted or [], name)
        both = np.concatenate([r, s, f])
        title = f"{MEASURES[name][0]} ({MEASURES[name][1]})" if MEASURES[name][1] else MEASURES[name][0]
        cv2.putText(sheet, title[:52], (x0 + 8, y0 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        if not both.size:
            continue
        lo, hi = np.percentile(both, [1, 99])
        if hi <= lo:
            lo, hi = lo - 1, hi + 1
        logged = lo > 0 and hi / lo > 8  # heavy tails (sizes, blur): bins even in log
        edges = np.geomspace(lo, hi, 31) if logged else np.linspace(lo, hi, 31)
        hr = np.histogram(np.clip(r, lo, hi), edges)[0] / max(r.size, 1)
        hs = np.histogram(np.clip(s, lo, hi), edges)[0] / max(s.size, 1)
        hf = np.histogram(np.clip(f, lo, hi), edges)[0] / max(f.size, 1)
        if logged:
            cv2.putText(sheet, "log axis", (x0 + pw // 2 - 25, y0 + ph - 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (0, 0, 0), 1, cv2.LINE_AA)
        top = max(hr.max(), hs.max(), hf.max() if f.size else 0, 1e-9)
        left, bottom, width, height = x0 + 30, y0 + ph - 34, pw - 50, ph - 70
        bw = width / 30
        for i in range(30):
            bar = int(round(hr[i] / top * height))
            cv2.rectangle(sheet, (int(left + i * bw), bottom - bar), (int(left + (i + 1) * bw) - 1, bottom),
                          (170, 170, 170), -1)
        for hist, colour, size in ((hs, (0, 0, 220), s.size), (hf, (200, 90, 0), f.size)):
            if not size:
                continue
            points = []
            for i in range(30):
                y = int(round(bottom - hist[i] / top * height))
                points += [(int(left + i * bw), y), (int(left + (i + 1) * bw), y)]
            cv2.polylines(sheet, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
        cv2.line(sheet, (left, bottom), (left + width, bottom), (0, 0, 0), 1)
        for value, anchor in ((lo, left), (hi, left + width - 50)):
            cv2.putText(sheet, f"{value:.3g}", (int(anchor), bottom + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0),
                        1, cv2.LINE_AA)
        cv2.putText(sheet, f"real n={r.size}", (x0 + pw - 150, y0 + 36), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (120, 120, 120), 1, cv2.LINE_AA)
        cv2.putText(sheet, f"recipe n={s.size}", (x0 + pw - 150, y0 + 52), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 220), 1, cv2.LINE_AA)
        if f.size:
            cv2.putText(sheet, f"fitted n={f.size}", (x0 + pw - 150, y0 + 68), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (200, 90, 0), 1, cv2.LINE_AA)
    return sheet


def gap_verdict(gap: float, fitted_gap: float, recipe: str) -> str | None:
    """A note when the fitted recipe is not closer to the real crops than the recipe it came from, by the gap score:
    then training on it is not expected to read the real photos better (on the binarised medicine dot-matrix
    crops the fitted gap rose 0.770 -> 0.795 and real accuracy fell 0.55 -> 0.47, docs/fit.md)."""
    if not fitted_gap >= gap:
        return None
    return (f"the fitted recipe is NOT closer to the real crops than {Path(recipe).name} by the gap score (fitted "
            f"{fitted_gap:.4f} >= recipe {gap:.4f}): keep training on {Path(recipe).name}, and look at "
            f"histograms.png (processed or binarised photos, with no noise, full contrast and a white ground, pull "
            f"the fit towards clean renders)")


def fit(photos: str | Path, recipe: Recipe, out: str | Path, pages: int = 200, seed: int = 0,
        max_images: int = 1000, refine: int = 1, progress: Callable[..., Iterable] | None = None,
        real: tuple[list[dict], int] | None = None) -> FitReport:
    """Measure the real crops in `photos` and `pages` pages of `recipe`'s crops, fit the recipe, and measure the
    fitted recipe's crops too; write into `out`: report.txt (the table), report.json, measures.csv (every crop),
    histograms.png (real vs recipe vs fitted) and fitted.yaml (a recipe). `refine` rounds measure the fitted recipe and fit it again.
    `real`: (measures, unreadable count) of the same photos taken before, to fit several recipes to one set."""
    progress = progress or (lambda items, **_kw: items)
    if not recipe.raw_text:
        raise FitError(f"{recipe.source}: fit needs a recipe read from a YAML file")
    real, unreadable = real if real is not None else measure_photos(photos, max_images, seed, progress)

    def measured(r: Recipe, what: str) -> list[dict]:
        return measure_recipe(r, pages, seed, lambda items: progress(items, desc=f"measuring {what} crops",
                                                                     unit="crop"))

    synthetic = measured(recipe, "the recipe's")
    report = FitReport(str(photos), recipe.source, real, synthetic, unreadable, gap_score(real, synthetic, seed=seed))
    out = Path(out)
    fitted_path = out / "fitted.yaml"
    base = Path(recipe.source).parent
    current, current_rows, changes, note = recipe, synthetic, {}, None
    blur = column(synthetic, "blur")
    base_blur = quantiles(blur, (10,))[0] if blur.size else None
    for round_ in range(1 + refine):
        if round_:
            current_rows = measured(current, f"the fitted recipe's (round {round_ + 1})")
        for key, (old, new, why) in fitted_fields(current, real, current_rows, base_blur).items():
            changes[key] = (changes[key][0] if key in changes else old, new, why)
        data = fitted_data(recipe, changes)
        current, note = validated(data, str(fitted_path), base)
        if note:
            changes["typography.height_px"] = (changes["typography.height_px"][0], data["typography"]["height_px"],
                                               changes["typography.height_px"][2] + f"; {note}")
    report.changes = changes
    report.notes = [note] if note else []
    report.fitted = measured(current, "the fitted recipe's")
    report.fitted_gap = gap_score(real, report.fitted, seed=seed)
    verdict = gap_verdict(report.gap, report.fitted_gap, recipe.source)
    report.notes += [verdict] if verdict else []
    text = fitted_recipe_text(recipe, fitted_data(recipe, changes), changes, str(photos))
    recipe_from_dict(yaml.safe_load(text), str(fitted_path), base, text=text)  # what is written loads
    out.mkdir(parents=True, exist_ok=True)
    fitted_path.write_text(text, encoding="utf-8")
    (out / "report.txt").write_text(report.table() + "\n", encoding="utf-8")
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    write_measures(out / "measures.csv", real, synthetic, report.fitted)
    if not cv2.imwrite(str(out / "histograms.png"), histogram_sheet(real, synthetic, report.fitted)):
        raise OSError(f"could not write {out / 'histograms.png'}")
    return report
