"""Preprocessing, box decoding, line rectification and grammar-constrained CTC decoding in numpy and OpenCV only:
the one code that training, evaluation, the frame reader, export and the Jetson kit run.

The Jetson kit (export/jetson_kit/infer.py) must run without this package, so it carries a generated copy of
everything below the marker line; `python tools/vendor_kit.py` writes it, and tests/test_export.py checks the
copy byte for byte. Edit here, never in infer.py.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

# ---- vendored into export/jetson_kit/infer.py from here ----


def preprocess(image: np.ndarray, height: int, width: int, keep_ratio: bool = False) -> np.ndarray:
    """A grayscale line or page image as the model's input: [height, width, 1] float32, pixels 0-255.

    Stretched to the input size (pages; lines of runs with resize "stretch", as deep-text-recognition-benchmark
    does), or with `keep_ratio` (lines of runs with resize "pad") scaled to the input height keeping its aspect
    ratio and padded on the right with its own mean gray, so a glyph keeps its shape whatever the crop's width
    (squeezed to the input width only when wider). INTER_AREA when shrinking rows, else INTER_LINEAR.
    """
    if image.ndim == 3:
        image = image[..., 0]
    interpolation = cv2.INTER_AREA if image.shape[0] > height else cv2.INTER_LINEAR
    if not keep_ratio:
        return cv2.resize(image, (width, height), interpolation=interpolation).astype(np.float32)[..., None]
    rows, cols = image.shape[:2]
    scaled = min(width, max(1, int(round(cols * height / max(rows, 1)))))
    resized = cv2.resize(image, (scaled, height), interpolation=interpolation)
    out = np.full((height, width), round(float(resized.mean())), np.float32)
    out[:, :scaled] = resized
    return out[..., None]


def letterbox(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A grayscale frame as an oriented detector's input, its aspect ratio kept: ([height, width, 1] float32,
    scale (sx, sy)); input pixels = frame pixels x scale.

    Scaled to fit and padded on the right and bottom with its own mean gray, so text keeps its shape in a 16:9 frame
    read by a 4:3 detector (stretched, the fuel-pump photos' digits came out a third taller for their width than
    they are); a frame of the input's own aspect is the plain resize. INTER_AREA when shrinking rows, else INTER_LINEAR.
    """
    if image.ndim == 3:
        image = image[..., 0]
    rows, cols = image.shape[:2]
    fit = min(width / cols, height / rows)
    w, h = min(width, max(1, round(cols * fit))), min(height, max(1, round(rows * fit)))
    interpolation = cv2.INTER_AREA if rows > h else cv2.INTER_LINEAR
    resized = cv2.resize(image, (w, h), interpolation=interpolation)
    scale = np.array([w / cols, h / rows], np.float32)
    if (w, h) == (width, height):
        return resized.astype(np.float32)[..., None], scale
    out = np.full((height, width), round(float(resized.mean())), np.float32)
    out[:h, :w] = resized
    return out[..., None], scale


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of boxes (x0, y0, x1, y1)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def decode_boxes(score: np.ndarray, geometry: np.ndarray, threshold: float, nms_iou: float, stride: int = 4,
                 max_candidates: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [K, 4] x0, y0, x1, y1 in input pixels, scores [K]) of one page's score [h, w(, 1)] and geometry
    [h, w, 4] (distances to top, left, bottom, right): cells above threshold vote, locality-aware NMS merges."""
    score = np.asarray(score).reshape(score.shape[0], score.shape[1])
    r, c = np.nonzero(score > threshold)
    if r.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    s = score[r, c]
    order = np.argsort(-s, kind="stable")[:max_candidates]
    r, c, s = r[order], c[order], s[order]
    cy, cx = (r + 0.5) * stride, (c + 0.5) * stride
    t, left, b, right = (geometry[r, c, k] for k in range(4))
    candidates = np.stack([cx - left, cy - t, cx + right, cy + b], axis=1)
    alive = np.ones(len(s), bool)
    boxes, scores = [], []
    for k in range(len(s)):
        if not alive[k]:
            continue
        group = alive & (box_iou(candidates[k:k + 1], candidates)[0] > nms_iou)
        group[k] = True
        weights = s[group][:, None]
        boxes.append((candidates[group] * weights).sum(axis=0) / weights.sum())
        scores.append(float(s[group].mean()))
        alive &= ~group
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32)


def rbox_quads(centres: np.ndarray, distances: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Rotated boxes (RBOX) as quads [N, 4, 2]: from points [N, 2], their distances [N, 4] to the box's top, left,
    bottom and right sides in the box's own frame, and the reading direction [N, 2] (cos, sin of the angle of the
    text's baseline, left to right as read). Corners run clockwise from the text's top-left as read: for text upside
    down the first is the image's bottom-right."""
    u = np.asarray(directions, np.float64).reshape(-1, 2)
    u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-9)
    v = np.stack([-u[:, 1], u[:, 0]], axis=1)  # the text's "down", 90 degrees clockwise on screen from u
    c = np.asarray(centres, np.float64).reshape(-1, 2)
    t, left, b, r = (np.asarray(distances, np.float64).reshape(-1, 4)[:, k:k + 1] for k in range(4))
    return np.stack([c - left * u - t * v, c + r * u - t * v, c + r * u + b * v, c - left * u + b * v], axis=1)


def convex_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two convex quads [4, 2] (OpenCV's convex polygon intersection); 0 if degenerate."""
    hull_a = cv2.convexHull(np.asarray(a, np.float32).reshape(-1, 1, 2))
    hull_b = cv2.convexHull(np.asarray(b, np.float32).reshape(-1, 1, 2))
    area_a, area_b = float(cv2.contourArea(hull_a)), float(cv2.contourArea(hull_b))
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter = max(0.0, float(cv2.intersectConvexConvex(hull_a, hull_b, handleNested=True)[0]))
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


END_WEIGHT_POWER = 3  # how fast a cell's say in a line end falls with its distance to it: 1, 2, 3, 4, 8 measured


def merge_rboxes(centres: np.ndarray, distances: np.ndarray, directions: np.ndarray,
                 scores: np.ndarray) -> np.ndarray:
    """One quad [4, 2] (clockwise from the text's top-left as read) from the rotated boxes that cells of one line
    predict: centres [N, 2], distances [N, 4] to top, left, bottom, right, directions [N, 2], scores [N].

    The reading direction is the score-weighted mean of the cells'. Each side is placed where the cells put it,
    weighted by score; the left and right ends are weighted also by (line height / the distance the cell regressed
    to that end) ** END_WEIGHT_POWER, capped at 1: a cell in the middle of a long line sees its ends from far off,
    or not at all, while the cells near an end see it (AdvancedEAST's head and tail cells, in a weighted form).
    On default.yaml test frames this halved the line-end error of a plain mean at p90 (0.52 -> 0.32 line heights)
    and lifted end-to-end F1 from 0.80 to 0.85 (docs/reader.md). One cell gives its own box back."""
    s = np.asarray(scores, np.float64).reshape(-1)
    d = np.asarray(distances, np.float64).reshape(-1, 4)
    u = (np.asarray(directions, np.float64).reshape(-1, 2) * s[:, None]).sum(axis=0)
    u = u / max(float(np.linalg.norm(u)), 1e-9)
    v = np.array([-u[1], u[0]])
    c = np.asarray(centres, np.float64).reshape(-1, 2)
    along, down = c @ u, c @ v
    height = max(float(((d[:, 0] + d[:, 2]) * s).sum() / s.sum()), 1e-6)
    w_left = s * (height / np.maximum(d[:, 1], height)) ** END_WEIGHT_POWER
    w_right = s * (height / np.maximum(d[:, 3], height)) ** END_WEIGHT_POWER
    left = float(((along - d[:, 1]) * w_left).sum() / w_left.sum())
    right = float(((along + d[:, 3]) * w_right).sum() / w_right.sum())
    top = float(((down - d[:, 0]) * s).sum() / s.sum())
    bottom = float(((down + d[:, 2]) * s).sum() / s.sum())
    return np.stack([left * u + top * v, right * u + top * v, right * u + bottom * v, left * u + bottom * v])


def decode_quads(score: np.ndarray, geometry: np.ndarray, direction: np.ndarray, threshold: float,
                 nms_iou: float, stride: int = 4, max_candidates: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(quads [K, 4, 2] in input pixels, clockwise from the text's top-left as read, scores [K]) of one image's
    oriented-detector maps: score [h, w(, 1)], geometry [h, w, 4] (distances to the rotated box's top, left,
    bottom, right) and direction [h, w, 2] (cos, sin of the reading direction: any angle).

    Every cell above `threshold` restores its rotated box (rbox_quads); non-maximum suppression on polygon IoU
    groups overlapping boxes around the best-scoring one, and the group's boxes that read the same way (within 90
    degrees) are merged into one rotated box (merge_rboxes: EAST's locality-aware merge, with each end taken
    mostly from the cells near it)."""
    score = np.asarray(score).reshape(score.shape[0], score.shape[1])
    r, c = np.nonzero(score > threshold)
    if r.size == 0:
        return np.zeros((0, 4, 2), np.float32), np.zeros(0, np.float32)
    s = score[r, c]
    order = np.argsort(-s, kind="stable")[:max_candidates]
    r, c, s = r[order], c[order], s[order]
    centres = np.stack([(c + 0.5) * stride, (r + 0.5) * stride], axis=1)
    directions = np.asarray(direction, np.float64)[r, c]
    distances = np.asarray(geometry, np.float64)[r, c]
    candidates = rbox_quads(centres, distances, directions)
    bounds = np.concatenate([candidates.min(axis=1), candidates.max(axis=1)], axis=1)
    alive = np.ones(len(s), bool)
    quads, scores = [], []
    for k in range(len(s)):
        if not alive[k]:
            continue
        near = np.nonzero(alive & (box_iou(bounds[k:k + 1], bounds)[0] > 0))[0]
        group = np.zeros(len(s), bool)
        group[near[[convex_iou(candidates[k], candidates[j]) > nms_iou for j in near]]] = True
        group[k] = True
        same_way = group & (directions @ directions[k] > 0)
        quads.append(merge_rboxes(centres[same_way], distances[same_way], directions[same_way], s[same_way]))
        scores.append(float(s[same_way].mean()))
        alive &= ~group
    return np.asarray(quads, np.float32).reshape(-1, 4, 2), np.asarray(scores, np.float32)


def roi_boxes(boxes: np.ndarray, map_shape: tuple[int, int], stride: int = 4) -> np.ndarray:
    """Boxes (x0, y0, x1, y1) in input pixels -> normalised (y0, x0, y1, x1) on the feature map (cell k's
    centre is input pixel (k + 0.5) * stride), the convention of tf.image.crop_and_resize."""
    rows, cols = map_shape
    b = np.asarray(boxes, np.float32).reshape(-1, 4) / np.float32(stride) - np.float32(0.5)
    return np.stack([b[:, 1] / np.float32(rows - 1), b[:, 0] / np.float32(cols - 1),
                     b[:, 3] / np.float32(rows - 1), b[:, 2] / np.float32(cols - 1)], axis=1)


def crop_and_resize(features: np.ndarray, boxes: np.ndarray, box_index: np.ndarray, size: tuple[int, int],
                    extrapolation_value: float = 0.0) -> np.ndarray:
    """tf.image.crop_and_resize (bilinear) in numpy: features [B, H, W, C], boxes [N, 4] normalised
    (y0, x0, y1, x1), box_index [N] -> [N, crop_h, crop_w, C]; samples outside the map get extrapolation_value."""
    features = np.asarray(features, np.float32)
    _, height, width, channels = features.shape
    ch, cw = size
    out = np.full((len(boxes), ch, cw, channels), extrapolation_value, np.float32)
    for n, (y0, x0, y1, x1) in enumerate(np.asarray(boxes, np.float32)):
        image = features[int(box_index[n])]
        ys = (y0 * (height - 1) + np.arange(ch, dtype=np.float32) * ((y1 - y0) * (height - 1) / (ch - 1))) \
            if ch > 1 else np.array([0.5 * (y0 + y1) * (height - 1)], np.float32)
        xs = (x0 * (width - 1) + np.arange(cw, dtype=np.float32) * ((x1 - x0) * (width - 1) / (cw - 1))) \
            if cw > 1 else np.array([0.5 * (x0 + x1) * (width - 1)], np.float32)
        valid_y, valid_x = (ys >= 0) & (ys <= height - 1), (xs >= 0) & (xs <= width - 1)
        top = np.floor(ys).astype(int).clip(0, height - 1)
        bottom = np.ceil(ys).astype(int).clip(0, height - 1)
        left = np.floor(xs).astype(int).clip(0, width - 1)
        right = np.ceil(xs).astype(int).clip(0, width - 1)
        dy = (ys - np.floor(ys))[:, None, None]
        dx = (xs - np.floor(xs))[None, :, None]
        tl, tr = image[top][:, left], image[top][:, right]
        bl, br = image[bottom][:, left], image[bottom][:, right]
        upper = tl + (tr - tl) * dx
        lower = bl + (br - bl) * dx
        crop = upper + (lower - upper) * dy
        mask = valid_y[:, None] & valid_x[None, :]
        out[n][mask] = crop[mask]
    return out


MIN_SIDE = 2.0  # detected quads narrower or lower than this (frame pixels) hold nothing to read


def quad_sides(quad: np.ndarray) -> tuple[float, float]:
    """(mean top/bottom length, mean left/right length) of a quad [4, 2] clockwise from the text's top-left: the
    text's width and height."""
    tl, tr, br, bl = np.asarray(quad, np.float64).reshape(4, 2)
    width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    return float(width), float(height)


def reading_order(quads: np.ndarray, scores: np.ndarray, min_side: float = MIN_SIDE) -> list:
    """[(quad [4, 2] float64, score)] of one frame's detections, those with a side under `min_side` dropped, top to
    bottom (by rounded mean y), then left to right: the order a reader prints its lines in."""
    kept = [(np.asarray(q, np.float64).reshape(4, 2), float(s)) for q, s in zip(quads, scores)
            if min(quad_sides(q)) >= min_side]
    return sorted(kept, key=lambda qs: (round(float(qs[0][:, 1].mean())), float(qs[0][:, 0].min())))


def rectified_crop(image: np.ndarray, quad: np.ndarray, margins=(0.15, 0.15, 0.15, 0.15),
                   height: int | None = None, min_height: int = 8) -> np.ndarray:
    """The line inside `quad` (clockwise from the text's top-left as read) of a 2-D uint8 image, rectified upright
    with margins (left, top, right, bottom) x the line height of context: one homography from the text's own frame
    undoes rotation, perspective and upside-down text at once. Without `height` the crop keeps the source
    resolution (at least `min_height` rows); with it the crop is that tall, its width keeping the aspect ratio
    (sampled at the source resolution, then averaged down, so thin strokes do not alias). Outside the image the
    border pixels repeat. crops.line_crop (what datasets are cut with) calls this, so the frame reader and the
    Jetson kit's copy cut lines exactly as training saw them."""
    quad = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    text_width, text_height = quad_sides(quad)
    if text_width < 1e-3 or text_height < 1e-3:
        raise ValueError(f"quad is degenerate (sides {text_width:.3g} x {text_height:.3g} px): {quad.tolist()}")
    text_rect = np.array([[0, 0], [text_width, 0], [text_width, text_height], [0, text_height]], np.float32)
    text_to_image = cv2.getPerspectiveTransform(text_rect, quad.astype(np.float32)).astype(np.float64)
    left, top, right, bottom = (float(m) * text_height for m in margins)
    full_width, full_height = text_width + left + right, text_height + top + bottom
    image_to_padded = _affine(1.0, 1.0, left, top) @ np.linalg.inv(text_to_image)
    native_height = max(min_height, round(full_height))
    out_height = native_height if height is None else int(height)
    out_width = max(1, round(full_width * out_height / full_height))
    if out_height >= native_height:
        return _warp_cv(image, _affine(out_width / full_width, out_height / full_height) @ image_to_padded,
                        out_width, out_height)
    native_width = max(1, round(full_width))
    native = _warp_cv(image, _affine(native_width / full_width, native_height / full_height) @ image_to_padded,
                      native_width, native_height)
    return cv2.resize(native, (out_width, out_height), interpolation=cv2.INTER_AREA)


def _affine(sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """3x3 scale, or translation when sx = sy = 1."""
    return np.array([[sx, 0, dx], [0, sy, dy], [0, 0, 1]], dtype=np.float64)


def _warp_cv(image: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    """Warp by a matrix in continuous pixel coordinates (pixel centres at +0.5), as OpenCV indexes pixels."""
    to_cv = _affine(1.0, 1.0, -0.5, -0.5) @ matrix @ _affine(1.0, 1.0, 0.5, 0.5)
    return cv2.warpPerspective(image, to_cv, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)

GRAMMAR_BEAM_WIDTH = 10  # beams of the grammar-constrained CTC search unless told otherwise


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities of [..., classes] logits, in float64."""
    x = np.asarray(logits, np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def grammar_accepts(grammar: dict, text: str) -> bool:
    """Whether the grammar's automaton (metadata.json's decode.grammar) accepts `text`."""
    state = grammar["start"]
    for ch in text:
        for chars, target in grammar["transitions"][state]:
            if ch in chars:
                state = target
                break
        else:
            return False
    return state in set(grammar["accept"])


def grammar_table(grammar: dict, charset: str) -> dict:
    """The automaton in the model's classes: per state {class index: next state}, the accepting states, and the
    fewest characters each state still needs to reach an accepting state (None: it cannot with this charset)."""
    index = {ch: i for i, ch in enumerate(charset)}
    moves = [{index[ch]: int(target) for chars, target in row for ch in chars if ch in index}
             for row in grammar["transitions"]]
    accept = set(int(q) for q in grammar["accept"])
    need = [None] * len(moves)
    back = [[] for _ in moves]
    for q, row in enumerate(moves):
        for target in row.values():
            back[target].append(q)
    frontier = sorted(accept)
    for q in frontier:
        need[q] = 0
    while frontier:  # breadth-first backwards from the accepting states
        following = []
        for r in frontier:
            for q in back[r]:
                if need[q] is None:
                    need[q] = need[r] + 1
                    following.append(q)
        frontier = following
    return {"start": int(grammar["start"]), "moves": moves, "accept": accept, "need": need}


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) of two Python floats (either may be -inf)."""
    if a < b:
        a, b = b, a
    if b == -math.inf:
        return a
    return a + math.log1p(math.exp(b - a))


def ctc_grammar_beam(logits: np.ndarray, blank: int, table: dict, beam_width: int = GRAMMAR_BEAM_WIDTH,
                     min_char_prob: float = 1e-5, min_ratio: float = 0.01) -> tuple:
    """CTC prefix beam search over the grammar's automaton: (labels, probability) of the most probable labelling
    the grammar accepts, or (None, 0.0) when the reading is rejected: no beam ends in an accepting state, or the
    best that does is less than `min_ratio` times as probable as the model's best path (the valid strings do not
    explain what the model read; they would be forced onto it).

    logits: one line's [steps, classes]. A prefix grows only along the automaton's edges and only while the
    steps left can still spell what it needs to be accepted; per step only characters with probability at least
    `min_char_prob` extend a prefix. The probability is the sum over the paths of the labelling that the beams
    kept, in (0, 1].
    """
    log_probs = log_softmax(logits)
    steps = log_probs.shape[0]
    floor = math.log(min_char_prob) if min_char_prob > 0 else -math.inf
    moves, need = table["moves"], table["need"]
    start = table["start"]
    if need[start] is None or need[start] > steps:
        return None, 0.0
    neg = -math.inf
    # prefix (tuple of labels) -> [log p ending in blank, log p ending in its last label, automaton state]
    beams = {(): [0.0, neg, start]}
    for t in range(steps):
        row = log_probs[t].tolist()  # Python floats: scalar arithmetic is what this loop does
        left = steps - t - 1
        candidates = [k for k, value in enumerate(row) if value >= floor and k != blank]
        following = {}
        for prefix, (p_blank, p_label, state) in beams.items():
            total = _log_add(p_blank, p_label)
            if need[state] <= left:  # stay on this prefix: a blank, or its last label again
                entry = following.get(prefix)
                if entry is None:
                    entry = following[prefix] = [neg, neg, state]
                entry[0] = _log_add(entry[0], total + row[blank])
                if prefix:
                    entry[1] = _log_add(entry[1], p_label + row[prefix[-1]])
            state_moves = moves[state]
            for k in candidates:
                target = state_moves.get(k)
                if target is None or need[target] is None or need[target] > left:
                    continue
                extended = prefix + (k,)
                # a repeated label needs a blank between the two
                p = p_blank + row[k] if prefix and prefix[-1] == k else total + row[k]
                entry = following.get(extended)
                if entry is None:
                    entry = following[extended] = [neg, neg, target]
                entry[1] = _log_add(entry[1], p)
        ranked = sorted(following.items(), key=lambda item: (-_log_add(item[1][0], item[1][1]), item[0]))
        beams = dict(ranked[:beam_width])
    accepted = [(_log_add(p_blank, p_label), prefix) for prefix, (p_blank, p_label, state) in beams.items()
                if state in table["accept"]]
    if not accepted:
        return None, 0.0
    score, prefix = min(accepted, key=lambda item: (-item[0], item[1]))
    if min_ratio > 0 and score < float(log_probs.max(axis=-1).sum()) + math.log(min_ratio):
        return None, 0.0
    return list(prefix), math.exp(score)


def decode_line(logits: np.ndarray, charset: str, blank: int, table: dict | None = None,
                beam_width: int = GRAMMAR_BEAM_WIDTH, min_ratio: float = 0.01) -> tuple:
    """One line's [steps, classes] logits as (text, confidence, rejected, greedy text).

    Without a grammar table: the best path (argmax per step, repeats merged, blanks dropped), its confidence the
    product of the emitted steps' probabilities. With one (`grammar_table`): the most probable labelling the
    grammar accepts (`ctc_grammar_beam`) and its probability; when none is, or the best is under `min_ratio`
    times the best path's probability, the text is "" with confidence 0 and rejected True. The greedy text is
    returned either way, to show what the model saw.
    """
    log_probs = log_softmax(logits)
    best = log_probs.argmax(axis=-1)
    labels, previous = [], None
    for k in best.tolist():
        if k != previous and k != blank:
            labels.append(k)
        previous = k
    greedy = "".join(charset[k] for k in labels)
    if table is None:
        emitted = log_probs.max(axis=-1)[best != blank]
        return greedy, float(np.exp(emitted.sum())), False, greedy
    found, probability = ctc_grammar_beam(logits, blank, table, beam_width, min_ratio=min_ratio)
    if found is None:
        return "", 0.0, True, greedy
    return "".join(charset[k] for k in found), probability, False, greedy
