"""`fit`: measure real line crops and a recipe's own crops alike, show the gap, and write a recipe that covers the real.

Real crops are read from a folder of images (no labels are read). The recipe's crops are rendered here, framed as
`generate --crops` frames them (the same `crops` stream, margins and capture size), and measured at the pixel size
a camera took them at: a crop the recipe captures at `crops.text_height_px` is averaged down to that size first
(the pixels `crops.capture_at` scales back up). Both sides are measured by `measure.measure_crop`.

The fitted recipe is the original YAML with the fields below replaced (recipes have no include mechanism, so it
is a complete recipe; every change is listed in its header):

| measure | recipe field | rule |
|---|---|---|
| text height | `crops.text_height_px` when the recipe sets it, else `typography.height_px` | real p5-p95, times the recipe's own ratio of nominal to measured height |
| contrast | `colour.contrast` | the recipe's range moved by (real - synthetic) at p5 and at p95 |
| polarity | `colour.polarity` | the real shares of dark-on-light and light-on-dark |
| brightness | `background.brightness` | the recipe's range moved by (real - synthetic) at p5 and at p95 |
| blur | `effects.partial_blur` | real blur beyond the recipe's sharpest crops (in quadrature): p = share of crops with more than 0.5 px, sigma = its p10-p90, in page px |
| noise | `effects.noise.gaussian_sigma` | real p5-p95, in page px |
| JPEG | `effects.jpeg.p` | share of real crops with blockiness over 8 (z-score; crops without blocks read about 1-6) |

Stroke width and ground texture are compared but set nothing (no one recipe field sets them).
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

from .crops import line_crop
from .measure import MEASURES, gap_score, measure_crop
from .recipe import Recipe, recipe_from_dict
from .render import render_sample
from .stages.framing import crop_rng, sample_framing

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm"}
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
    """(measures of every decodable image, how many could not be read)."""
    rows, unreadable = [], 0
    for path in progress(paths):
        img = read_gray(path)
        if img is None or min(img.shape) < 8:
            unreadable += 1
            continue
        rows.append(measure_crop(img))
    return rows, unreadable


def recipe_crops(recipe: Recipe, pages: int, seed: int = 0, start: int = 0):
    """(crop at its capture size, nominal text height, page px per crop px) for every line of `pages` pages.

    The framing is `crops.framed_crops`'s, drawn from the same stream; a crop the recipe captures at a smaller text
    height than it was rendered at is averaged down to that height (INTER_AREA, as `crops.capture_at` does before
    it scales the crop back up), so it has the pixels the camera would have recorded.
    """
    cfg = recipe.crops
    for index in range(start, start + pages):
        sample = render_sample(recipe, seed, index)
        rng = crop_rng(sample.seed, sample.index)
        for line in sample.lines:
            framing = sample_framing(cfg, rng)
            crop = line_crop(sample.image, line.quad, framing["margins"])
            quad = np.asarray(line.quad, np.float64)
            height = float((np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2)
            target = framing["text_height_px"]
            if target is not None and target < height:
                f = target / height
                rows, cols = crop.shape
                crop = cv2.resize(crop, (max(1, round(cols * f)), max(1, round(rows * f))),
                                  interpolation=cv2.INTER_AREA)
                yield crop, float(target), height / target
            else:
                yield crop, height, 1.0


def measure_recipe(recipe: Recipe, pages: int, seed: int = 0,
                   progress: Callable[[Iterable], Iterable] = iter) -> list[dict]:
    """Measures of the recipe's crops of `pages` pages, each with `nominal_height` and `scale` (page px per px)."""
    rows = []
    crops = recipe_crops(recipe, pages, seed)
    for crop, nominal, scale in progress(crops):
        if min(crop.shape) < 8:
            continue
        row = measure_crop(crop)
        row.update(nominal_height=nominal, scale=scale)
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


def fitted_fields(recipe: Recipe, real: list[dict], syn: list[dict]) -> dict[str, tuple[object, object, str]]:
    """{dotted field: (old value, new value, why)} for the recipe fields the real measures set."""
    out: dict[str, tuple[object, object, str]] = {}
    heights = column(real, "text_height")
    ratio = np.array([r["nominal_height"] / r["text_height"] for r in syn
                      if math.isfinite(r["text_height"]) and r["text_height"] > 0])
    k = float(np.median(ratio)) if ratio.size else 1.0
    scale = float(np.median([r["scale"] for r in syn])) if syn else 1.0
    if heights.size:
        h5, h95 = quantiles(heights, (5, 95))
        why = (f"real text height p5-p95 {h5:.1f}-{h95:.1f} px x {k:.2f} (this recipe's nominal / measured "
               f"height)")
        if recipe.crops.text_height_px is not None:
            out["crops.text_height_px"] = (list(recipe.crops.text_height_px), _range(h5 * k, h95 * k, 4, 200), why)
        else:
            out["typography.height_px"] = (list(recipe.typography.height_px), _range(h5 * k, h95 * k, 6, 1000), why)
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
    blur_r, blur_s = column(real, "blur"), column(syn, "blur")
    if blur_r.size and blur_s.size:
        base = quantiles(blur_s, (10,))[0]
        extra = np.sqrt(np.maximum(blur_r ** 2 - base ** 2, 0))
        blurred = extra[extra > BLURRED]
        pb = recipe.effects.partial_blur
        old = {"p": pb.p, "sigma": list(pb.sigma)}
        new = {"p": round(float(blurred.size / extra.size), 2), "sigma": list(pb.sigma)}
        if blurred.size:
            b10, b90 = quantiles(blurred, (10, 90))
            new["sigma"] = _range(b10 * scale, b90 * scale, 0.1, 50, 2)
        out["effects.partial_blur"] = (old, new, f"real blur beyond this recipe's sharpest crops ({base:.2f} px), "
                                                 f"x {scale:.2f} page px per crop px")
    noise = column(real, "noise")
    if noise.size:
        n5, n95 = quantiles(noise, (5, 95))
        out["effects.noise.gaussian_sigma"] = (list(recipe.effects.noise.gaussian_sigma),
                                               _range(n5 * scale, n95 * scale, 0, 100, 2),
                                               f"real noise p5-p95 x {scale:.2f} page px per crop px")
    blocky = column(real, "blockiness")
    if blocky.size:
        out["effects.jpeg.p"] = (recipe.effects.jpeg.p, round(float(np.mean(blocky > BLOCKY)), 2),
                                 f"share of real crops with blockiness over {BLOCKY}")
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


def fitted_recipe_text(recipe: Recipe, changes: dict[str, tuple[object, object, str]], photos: str) -> str:
    """The recipe's YAML with the fitted fields replaced, its header listing each change."""
    data = copy.deepcopy(yaml.safe_load(recipe.raw_text) or {})
    for dotted, (_old, new, _why) in changes.items():
        _set(data, dotted, new)
    if data.get("name"):
        data["name"] = f"{data['name']}-fit"
    header = [f"# {Path(recipe.source).name} fitted to the real crops in {photos} by `synthtext-industrial fit`.",
              "# Changed fields (old -> new: why):"]
    header += [f"#   {dotted}: {json.dumps(old)} -> {json.dumps(new)}: {why}"
               for dotted, (old, new, why) in changes.items()]
    header.append(f"# Relative asset paths resolve against this file's folder; the original is in "
                  f"{Path(recipe.source).parent} (pass it as --assets-root if they no longer resolve).")
    return "\n".join(header) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


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

    def table(self) -> str:
        head = (f"{'measure':<22}{'unit':<13}{'real p5':>9}{'p50':>9}{'p95':>9}   {'synth p5':>9}{'p50':>9}"
                f"{'p95':>9}{'KS':>7}")
        lines = [f"real: {self.photos} ({len(self.real)} crops measured"
                 + (f", {self.unreadable} unreadable" if self.unreadable else "") + ")",
                 f"synthetic: {self.recipe} ({len(self.synthetic)} crops)", head, "-" * len(head)]
        for name, (what, unit) in MEASURES.items():
            r, s = column(self.real, name), column(self.synthetic, name)
            if name == "polarity":
                lines.append(f"{'dark-on-light share':<22}{'':<13}{np.mean(r > 0) if r.size else math.nan:>27.2f}   "
                             f"{np.mean(s > 0) if s.size else math.nan:>27.2f}{ks_distance(r, s):>7.2f}")
                continue
            rq, sq = quantiles(r), quantiles(s)
            lines.append(f"{what[:21]:<22}{unit:<13}" + "".join(f"{v:>9.2f}" for v in rq) + "   "
                         + "".join(f"{v:>9.2f}" for v in sq) + f"{ks_distance(r, s):>7.2f}")
        lines.append(f"domain gap (MMD^2, Gaussian kernel, real-standardised measures): {self.gap:.4f}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        def summary(rows):
            return {name: dict(zip(("p5", "p50", "p95"), quantiles(column(rows, name))), n=int(column(rows, name).size))
                    for name in MEASURES}

        return {"photos": self.photos, "recipe": self.recipe, "real_crops": len(self.real),
                "synthetic_crops": len(self.synthetic), "unreadable": self.unreadable, "gap_mmd2": self.gap,
                "real": summary(self.real), "synthetic": summary(self.synthetic),
                "ks": {name: ks_distance(column(self.real, name), column(self.synthetic, name)) for name in MEASURES},
                "changes": {k: {"old": o, "new": n, "why": w} for k, (o, n, w) in self.changes.items()}}


def histogram_sheet(real: list[dict], synthetic: list[dict], panel=(420, 220)) -> np.ndarray:
    """One panel per measure: the real histogram as gray bars, the synthetic one as a red outline (each of unit area)."""
    pw, ph = panel
    cols = 3
    names = list(MEASURES)
    sheet = np.full((ph * math.ceil(len(names) / cols), pw * cols, 3), 255, np.uint8)
    for n, name in enumerate(names):
        x0, y0 = (n % cols) * pw, (n // cols) * ph
        r, s = column(real, name), column(synthetic, name)
        both = np.concatenate([r, s])
        title = f"{MEASURES[name][0]} ({MEASURES[name][1]})" if MEASURES[name][1] else MEASURES[name][0]
        cv2.putText(sheet, title[:52], (x0 + 8, y0 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        if not both.size:
            continue
        lo, hi = np.percentile(both, [1, 99])
        if hi <= lo:
            lo, hi = lo - 1, hi + 1
        edges = np.linspace(lo, hi, 31)
        hr = np.histogram(np.clip(r, lo, hi), edges)[0] / max(r.size, 1)
        hs = np.histogram(np.clip(s, lo, hi), edges)[0] / max(s.size, 1)
        top = max(hr.max(), hs.max(), 1e-9)
        left, bottom, width, height = x0 + 30, y0 + ph - 34, pw - 50, ph - 70
        bw = width / 30
        for i in range(30):
            bar = int(round(hr[i] / top * height))
            cv2.rectangle(sheet, (int(left + i * bw), bottom - bar), (int(left + (i + 1) * bw) - 1, bottom),
                          (170, 170, 170), -1)
        points = []
        for i in range(30):
            y = int(round(bottom - hs[i] / top * height))
            points += [(int(left + i * bw), y), (int(left + (i + 1) * bw), y)]
        cv2.polylines(sheet, [np.array(points, np.int32)], False, (0, 0, 220), 2, cv2.LINE_AA)
        cv2.line(sheet, (left, bottom), (left + width, bottom), (0, 0, 0), 1)
        for value, anchor in ((lo, left), (hi, left + width - 50)):
            cv2.putText(sheet, f"{value:.3g}", (int(anchor), bottom + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0),
                        1, cv2.LINE_AA)
        cv2.putText(sheet, f"real n={r.size}", (x0 + pw - 150, y0 + 36), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (120, 120, 120), 1, cv2.LINE_AA)
        cv2.putText(sheet, f"synthetic n={s.size}", (x0 + pw - 150, y0 + 52), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 220), 1, cv2.LINE_AA)
    return sheet


def fit(photos: str | Path, recipe: Recipe, out: str | Path, pages: int = 200, seed: int = 0,
        max_images: int = 1000, progress: Callable[..., Iterable] | None = None) -> FitReport:
    """Measure the real crops in `photos` and `pages` pages of `recipe`'s crops; write into `out`:
    report.txt (the table), report.json, histograms.png and fitted.yaml (checked to load as a recipe)."""
    progress = progress or (lambda items, **_kw: items)
    paths = find_images(photos)
    if len(paths) > max_images:  # an even sample, the same for a seed
        keep = np.sort(np.random.default_rng(seed).choice(len(paths), max_images, replace=False))
        paths = [paths[i] for i in keep]
    real, unreadable = measure_images(paths, lambda items: progress(items, desc="measuring real crops", unit="img"))
    if not real:
        raise FitError(f"{photos}: none of its {len(paths)} images could be read")
    synthetic = measure_recipe(recipe, pages, seed,
                               lambda items: progress(items, desc="rendering and measuring the recipe's crops",
                                                      unit="crop"))
    report = FitReport(str(photos), recipe.source, real, synthetic, unreadable, gap_score(real, synthetic, seed=seed))
    report.changes = fitted_fields(recipe, real, synthetic)
    text = fitted_recipe_text(recipe, report.changes, str(photos))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fitted_path = out / "fitted.yaml"
    recipe_from_dict(yaml.safe_load(text), str(fitted_path), Path(recipe.source).parent, text=text)  # it must load
    fitted_path.write_text(text, encoding="utf-8")
    (out / "report.txt").write_text(report.table() + "\n", encoding="utf-8")
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    if not cv2.imwrite(str(out / "histograms.png"), histogram_sheet(real, synthetic)):
        raise OSError(f"could not write {out / 'histograms.png'}")
    return report
