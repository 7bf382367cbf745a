"""What a line crop looks like, in numbers: the measures `fit` compares between real and synthetic crops.

Every measure is a small pure function of one grayscale uint8 crop (numpy and OpenCV only) and works the same on a
real photo and on a rendered crop, without labels. They all start from one binarisation (`ink_mask`): Otsu on a
lightly smoothed crop, the ink being the minority class (text covers less of a line crop than its ground), with
frames (components that touch the border and span the crop: bezels, label edges) and specks left out, and the
split made again inside a frame when that is all it found (a display's glass).

`measure_crop` returns all of them as a dict (NaN where a crop has no usable ink); `gap_score` is the one number
that says how far two sets of crops are apart on these measures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SIGMAS = np.geomspace(0.25, 12.0, 30)  # the blur grid `blur_sigma` searches, px
SMOOTH = 0.7  # px: the smoothing under the binarisation (keeps noise from breaking strokes)
CUTS = (0.2, 0.35, 0.5, 0.65)  # where `blur_sigma` cuts the crop, from ground (0) to ink (1)


@dataclass(frozen=True)
class Ink:
    """One crop's binarisation: the ink mask (uint8 0/1), whether the ink is darker than its ground, and the region
    (bool) the text was found in: the whole crop, or the inside of a frame around it (a display's glass)."""

    mask: np.ndarray
    dark: bool
    region: np.ndarray

    @property
    def empty(self) -> bool:
        return int(self.mask.sum()) < 4


def _minority_ink(smooth: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, bool, np.ndarray]:
    """(ink, dark, other side): Otsu's split of the region's pixels, the side with fewer pixels as ink."""
    values = smooth[region].reshape(-1, 1)
    threshold, _b = cv2.threshold(values, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = (smooth > threshold) & region
    dark = int(bright.sum()) > int(region.sum()) / 2  # the bright side is the majority: ink is dark
    ink = (region & ~bright) if dark else bright
    return ink.astype(np.uint8), dark, region & ~ink.astype(bool)


def ink_mask(img: np.ndarray) -> Ink:
    """The crop's ink: Otsu's threshold on the crop smoothed by 0.7 px, the minority side as ink.

    Why the minority: a line crop is mostly ground, whichever polarity the text has. Components that touch the
    border and span 80% of its width or 90% of its height are dropped (a bezel, a label edge: text in a tight crop
    touches the border too, but does not span it), and so are specks smaller than 2% of the largest component.
    When that leaves nothing, the split found a frame (a display's bezel around its glass), not the text: the
    split is made again inside the frame, once.
    """
    smooth = cv2.GaussianBlur(img, (0, 0), SMOOTH)
    region = np.ones(img.shape, bool)
    for attempt in range(2):
        mask, dark, rest = _minority_ink(smooth, region)
        count, labels, stats, _c = cv2.connectedComponentsWithStats(mask, connectivity=8)
        outside = cv2.dilate((~region).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        touching = np.zeros(count, bool)
        touching[np.unique(labels[outside])] = True
        rows, cols = img.shape
        x, y, w, h, area = (stats[:, i] for i in range(5))
        on_border = (x == 0) | (y == 0) | (x + w >= cols) | (y + h >= rows) | touching
        inner = ~(on_border & ((w >= 0.8 * cols) | (h >= 0.9 * rows)))  # a frame spans the crop; text may touch it
        inner[0] = False
        big = area >= 0.02 * (area[1:].max() if count > 1 else 1)
        keep = inner & big
        if keep.any() or attempt == 1:
            break
        inside = cv2.erode(rest.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        if inside.sum() < 64:
            break
        region = inside
    if not keep.any():
        keep = big.copy()
        keep[0] = False
    lut = keep.astype(np.uint8)
    return Ink(lut[labels], dark, region)


def text_height(ink: Ink) -> float:
    """Text height in px: the spread of the ink's rows, (98th - 2nd percentile of their y) / 0.96.

    A line's ink is spread about evenly over its height, so this is the height of a solid block holding it, and a
    decimal point, a comma or a speck changes it little (an extreme row would).
    """
    ys = np.nonzero(ink.mask)[0]
    if ys.size < 4:
        return math.nan
    lo, hi = np.percentile(ys, [2, 98])
    return float((hi - lo + 1) / 0.96)


def stroke_width(ink: Ink) -> float:
    """Stroke width in px: 2 x the median distance-transform value on the strokes' ridges, minus 1.

    The distance from a stroke's centre line to the nearest ground pixel is half its width (OpenCV counts a pixel
    beside the ground as 1, hence the -1); the ridge is where the distance is a local maximum.
    """
    if ink.empty:
        return math.nan
    dist = cv2.distanceTransform(ink.mask, cv2.DIST_L2, 3)
    ridge = (dist > 0) & (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8)))
    return float(max(1.0, 2 * np.median(dist[ridge]) - 1)) if ridge.any() else math.nan


def _ground(ink: Ink, pad: int = 2) -> np.ndarray:
    """Ground pixels: the text's region more than `pad` px away from the ink (blurred edges count as neither)."""
    return (cv2.dilate(ink.mask, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)) == 0) & ink.region


def levels(img: np.ndarray, ink: Ink) -> tuple[float, float]:
    """(ink level, ground level): the median gray of the ink's core and of the ground.

    The core is the ink at least 1 px inside its edge where there is such ink (a thin stroke's edge pixels are half
    ground after any blur), otherwise all of it.
    """
    ground = _ground(ink)
    core = cv2.erode(ink.mask, np.ones((3, 3), np.uint8)).astype(bool)
    if core.sum() < 4:
        core = ink.mask.astype(bool)
    ground_level = float(np.median(img[ground])) if ground.any() else math.nan
    return float(np.median(img[core])), ground_level


def ground_texture(img: np.ndarray, ink: Ink) -> float:
    """Texture of the ground: the robust std (1.4826 x MAD) of the ground after a 1.5 px Gaussian.

    The Gaussian removes most pixel noise (measured apart by `noise_level`), so what is left is the surface: grain,
    fibres, brushing, gradients, a bezel in frame.
    """
    ground = _ground(ink, 3)
    if ground.sum() < 16:
        return math.nan
    values = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.5)[ground]
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def noise_level(img: np.ndarray) -> float:
    """Pixel noise std in gray levels, by Immerkaer's method (1996) on the flat half of the crop.

    The 3x3 kernel [[1,-2,1],[-2,4,-2],[1,-2,1]] cancels any locally linear image and keeps noise, whose std is
    sqrt(pi/2)/6 x the mean absolute response; only the pixels whose local gradient is in the lower half are
    used, so edges of strokes and texture count little.
    """
    if min(img.shape) < 5:
        return math.nan
    f = img.astype(np.float32)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(f, -1, kernel, borderType=cv2.BORDER_REFLECT))[1:-1, 1:-1]
    smooth = cv2.GaussianBlur(f, (0, 0), 1.0)
    grad = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))[1:-1, 1:-1]
    flat = grad <= np.median(grad)
    return float(math.sqrt(math.pi / 2) / 6 * response[flat].mean())


def _fit_blur(img: np.ndarray, mask: np.ndarray, near: np.ndarray) -> tuple[float, float]:
    """(sigma, residual): the Gaussian blur of `mask` that, scaled and offset by least squares, best draws `img`
    on the pixels `near` (the grid SIGMAS, refined by a parabola in log sigma)."""
    pad = int(3 * SIGMAS[-1]) + 2
    target = cv2.copyMakeBorder(img.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    mask = cv2.copyMakeBorder(mask.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    near = cv2.copyMakeBorder(near.astype(np.uint8), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0).astype(bool)
    y = target[near]
    y_c = y - y.mean()
    residuals = []
    for sigma in SIGMAS:
        x = cv2.GaussianBlur(mask, (0, 0), float(sigma))[near]
        x_c = x - x.mean()
        denom = float(x_c @ x_c)
        residuals.append(float(y_c @ y_c) - (float(x_c @ y_c) ** 2 / denom if denom > 1e-9 else 0.0))
    r = np.asarray(residuals)
    k = int(np.argmin(r))
    if 0 < k < len(r) - 1:
        a, b, c = r[k - 1], r[k], r[k + 1]
        curvature = a - 2 * b + c
        shift = float(np.clip(0.5 * (a - c) / curvature, -1, 1)) if curvature > 0 else 0.0
        step = math.log(SIGMAS[1] / SIGMAS[0])
        return float(math.exp(math.log(SIGMAS[k]) + shift * step)), float(b)
    return float(SIGMAS[k]), float(r[k])


def blur_sigma(img: np.ndarray, ink: Ink) -> float:
    """Blur of the text as the sigma (px) of a Gaussian, found by drawing the text again at each blur.

    The crop near its ink is fitted, by least squares, with ground + amplitude x (a sharp ink mask blurred by
    sigma), for every sigma of a grid. The sharp mask is the crop thresholded at 20%, 35%, 50% and 65% of the way
    from ground to ink (a blurred wide edge crosses 50% where the sharp edge was; a thin stroke, whose blurred
    peak falls short of the ink level, is better drawn from a lower cut); the (cut, sigma) with the least residual
    wins. The free amplitude absorbs what is left of a mask made a little thin or thick. A cleanly rendered,
    anti-aliased edge reads about 0.4-0.6 px.
    """
    if ink.empty:
        return math.nan
    ink_level, ground_level = levels(img, ink)
    if not math.isfinite(ground_level) or abs(ground_level - ink_level) < 1:
        return math.nan
    near = cv2.dilate(ink.mask, np.ones((7, 7), np.uint8), iterations=3)
    f = img.astype(np.float32)
    best = (math.nan, math.inf)
    for cut in CUTS:
        level = ground_level + cut * (ink_level - ground_level)
        sharp = ((f < level) if ink_level < ground_level else (f > level)) & (near > 0)
        if sharp.sum() < 4:
            continue
        found = _fit_blur(img, sharp, near > 0)
        if found[1] < best[1]:
            best = found
    return best[0]


def blockiness(img: np.ndarray) -> float:
    """JPEG blockiness: how far the strongest of the 8 phases of an 8-px grid stands out, as a robust z-score.

    Per phase (x mod 8, columns and rows apart), the mean step |d[x]| between neighbouring pixels, counted only in
    quiet places (both steps beside it at most 3 levels + 2 x the crop's noise std), where JPEG's 8x8 blocks show
    as a small step at every block boundary. The score is (strongest phase - median of the others) / their robust
    spread (1.4826 x MAD, at least 0.02 levels), averaged over columns and rows: a few units for a crop without
    blocks (the largest of 8 noisy means), far more where blocks show. A crop cut from a rotated or warped page
    loses the grid and reads low whatever its JPEG quality.
    """
    f = img.astype(np.float32)
    quiet_step = 3 + 2 * (noise_level(img) if min(img.shape) >= 5 else 0.0)
    out = []
    for d in (np.abs(np.diff(f, axis=1)), np.abs(np.diff(f, axis=0)).T):  # columns, then rows: each its own grid
        if d.shape[1] < 18:
            continue
        quiet = np.maximum(d[:, :-2], d[:, 2:]) <= quiet_step
        step = np.where(quiet, d[:, 1:-1], 0)
        counts = np.array([quiet[:, p::8].sum() for p in range(8)])
        if counts.min() < 8:
            continue
        phases = np.sort(np.array([step[:, p::8].sum() for p in range(8)]) / counts)
        others = phases[:-1]
        spread = 1.4826 * np.median(np.abs(others - np.median(others)))
        out.append((phases[-1] - np.median(others)) / max(spread, 0.02))
    return float(np.mean(out)) if out else math.nan


MEASURES = {  # name: (what, unit) in table order
    "text_height": ("text height", "px"),
    "fill": ("text height / crop height", "ratio"),
    "stroke_width": ("stroke width", "px"),
    "contrast": ("text/ground contrast", "gray levels"),
    "polarity": ("polarity (+1 dark on light, -1 light on dark)", ""),
    "brightness": ("ground brightness", "gray level"),
    "texture": ("ground texture", "gray levels"),
    "blur": ("blur sigma", "px"),
    "noise": ("noise std", "gray levels"),
    "blockiness": ("JPEG blockiness", "z-score"),
}


def half_way(img: np.ndarray, ink: Ink, ink_level: float, ground_level: float) -> Ink:
    """The ink cut half way between its ground and ink levels, near the ink found: where a blurred edge crosses
    50% is where the sharp edge was, so sizes measured on this mask do not grow with blur as Otsu's do."""
    if ink.empty or not (math.isfinite(ink_level) and math.isfinite(ground_level)) or ink_level == ground_level:
        return ink
    near = cv2.dilate(ink.mask, np.ones((5, 5), np.uint8)).astype(bool) & ink.region
    middle = (ink_level + ground_level) / 2
    cut = (img < middle) if ink_level < ground_level else (img > middle)
    mask = (cut & near).astype(np.uint8)
    return Ink(mask, ink.dark, ink.region) if mask.sum() >= 4 else ink


BLUR_TEXT_HEIGHT = 64  # px: a crop with taller text is measured for blur scaled down to this text height


def scaled_blur(img: np.ndarray, ink: Ink, height: float) -> float:
    """`blur_sigma` in the crop's own px, measured on the crop scaled down so its text is at most 64 px tall.

    The fit draws the mask blurred at 30 sigmas, 4 times, which costs too much on a 2-megapixel crop. Averaging
    down by f (INTER_AREA) adds about (1 - f^2) / 12 px^2 of variance at the small scale, which is taken off
    before scaling the sigma back up.
    """
    f = BLUR_TEXT_HEIGHT / height if math.isfinite(height) else 1.0
    if f >= 1.0:
        return blur_sigma(img, ink)
    rows, cols = img.shape
    small = cv2.resize(img, (max(1, round(cols * f)), max(1, round(rows * f))), interpolation=cv2.INTER_AREA)
    sigma = blur_sigma(small, ink_mask(small))
    return float(math.sqrt(max(sigma ** 2 - (1 - f * f) / 12, 0.0025)) / f) if math.isfinite(sigma) else math.nan


def measure_crop(img: np.ndarray) -> dict[str, float]:
    """Every measure of one grayscale crop (uint8 HxW); NaN where the crop has no ink to measure."""
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"a crop must be a 2-D uint8 array, got {img.dtype} with shape {img.shape}")
    ink = ink_mask(img)
    ink_level, ground_level = levels(img, ink) if not ink.empty else (math.nan, math.nan)
    sharp = half_way(img, ink, ink_level, ground_level)
    height = text_height(sharp)
    return {
        "text_height": height,
        "fill": height / img.shape[0],  # a recognizer resizes the crop's height: this is the text's share of it
        "stroke_width": stroke_width(sharp),
        "contrast": abs(ground_level - ink_level),
        "polarity": 1.0 if ink.dark else -1.0,
        "brightness": ground_level,
        "texture": ground_texture(img, ink),
        "blur": scaled_blur(img, ink, height),
        "noise": noise_level(img),
        "blockiness": blockiness(img),
    }


# ----------------------------------------------------------------------------- the domain gap

GAP_FEATURES = ("stroke/height", "blur/height", "contrast", "polarity", "brightness", "texture", "noise",
                "blockiness")
# The least scale of each feature in `gap_score`: a difference smaller than this does not matter to a reader, so a
# real set whose spread is narrower (noise 0.1-0.2 in clean crops) does not turn a trifle into a large gap.
GAP_FLOORS = np.array([0.01, 0.005, 5.0, 1.0, 5.0, 1.0, 0.5, 1.0])


def gap_features(rows: list[dict[str, float]]) -> np.ndarray:
    """The vectors the gap compares: what a recognizer still sees once it resizes a crop to its input height.

    Text height itself is left out (the input is resized), so stroke width and blur are taken relative to it;
    gray levels, polarity, noise and blockiness are kept as they are. Rows with a NaN are dropped.
    """
    feats = np.array([[r["stroke_width"] / r["text_height"], r["blur"] / r["text_height"], r["contrast"],
                       r["polarity"], r["brightness"], r["texture"], r["noise"], r["blockiness"]]
                      for r in rows], np.float64).reshape(-1, len(GAP_FEATURES))
    return feats[np.isfinite(feats).all(axis=1)]


def _scale(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and robust scale of the real features: IQR / 1.349, at least GAP_FLOORS."""
    centre = np.median(real, axis=0)
    q75, q25 = np.percentile(real, [75, 25], axis=0)
    return centre, np.maximum((q75 - q25) / 1.349, GAP_FLOORS)


def mmd2(a: np.ndarray, b: np.ndarray, bandwidth: float) -> float:
    """Unbiased squared maximum mean discrepancy between samples a and b with a Gaussian (RBF) kernel.

    0 in expectation when both come from one distribution (it can read a little below 0), larger as they part.
    """
    def kernel(x, y):
        d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
        return np.exp(-np.maximum(d2, 0) / (2 * bandwidth ** 2))

    m, n = len(a), len(b)
    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    return float((kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
                 - 2 * kab.mean())


def gap_score(real_rows: list[dict[str, float]], synthetic_rows: list[dict[str, float]],
              max_rows: int = 2000, seed: int = 0) -> float:
    """The domain gap: MMD^2 (Gaussian kernel) between real and synthetic crops' `gap_features`.

    Each feature is standardised by the REAL set's median and robust scale, never below its GAP_FLOORS (so the
    scores of several recipes against one real set are on one scale), and the kernel's bandwidth is fixed at sqrt(number of features) in
    those units (one robust std per feature). At most `max_rows` crops of each side are used (drawn with `seed`).
    """
    real, syn = gap_features(real_rows), gap_features(synthetic_rows)
    if len(real) < 2 or len(syn) < 2:
        return math.nan
    rng = np.random.default_rng(seed)
    if len(real) > max_rows:
        real = real[rng.choice(len(real), max_rows, replace=False)]
    if len(syn) > max_rows:
        syn = syn[rng.choice(len(syn), max_rows, replace=False)]
    centre, scale = _scale(real)
    return mmd2((real - centre) / scale, (syn - centre) / scale, math.sqrt(len(GAP_FEATURES)))
