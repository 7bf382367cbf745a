"""Camera frames with line ground truth: the two file formats, quad matching and the detection / end-to-end scores.

Formats (docs/reader.md):

- `labels.jsonl`: one JSON object per line, `{"image": "relative/path.jpg", "lines": [{"quad": [[x, y] x 4],
  "text": "..."}, ...]}`; the quad runs clockwise from the text's top-left (as read) in image pixels; a line with
  `"text": "###"` or `"ignore": true` is a don't-care region. Image paths are relative to the labels file.
- ICDAR 2015: a folder of images, each with `gt_<image stem>.txt` beside it (or in the folder's `gt/`), one
  `x1,y1,x2,y2,x3,y3,x4,y4,text` line per text line (UTF-8, a BOM is allowed; the text may hold commas; `###`
  is don't care). An image without a gt file has no text.

Scores (the ICDAR 2015 rules, on quads): a detection lying more than half (by area) inside a don't-care region is
dropped first; the rest are matched one-to-one to the cared-for ground truth, best-scoring detections first, each
to its free line of highest polygon IoU, if that is >= 0.5. Detection precision = matches / detections,
recall = matches / cared-for lines; end to end, a match counts only when its text is read exactly (after the
optional normalisation: `ignore_case`, `only`). String and character accuracy are over the matched lines.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .text import char_accuracy, normalise

DONT_CARE = "###"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
FORMATS = ("jsonl", "icdar")


class FrameLabelError(ValueError):
    """A labels file that cannot be read: the message names the file, the line and what is wrong."""


# ----------------------------------------------------------------------------- ground truth


@dataclass
class TruthLine:
    quad: np.ndarray  # [4, 2] image pixels, clockwise from the text's top-left
    text: str
    ignore: bool = False  # a don't-care region (`###`)


@dataclass
class FrameTruth:
    image: Path  # absolute, or relative to the working folder
    lines: list[TruthLine]

    @property
    def name(self) -> str:
        return self.image.name


def _quad(value, where: str) -> np.ndarray:
    try:
        quad = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise FrameLabelError(f"{where}: quad must be 4 [x, y] points, got {value!r}") from None
    if quad.shape != (4, 2) or not np.isfinite(quad).all():
        raise FrameLabelError(f"{where}: quad must be 4 [x, y] points, got {value!r}")
    return quad


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, line) of a UTF-8 text file (BOM allowed), blank lines left out."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FrameLabelError(f"{path}: cannot read it as UTF-8 ({exc})") from None
    return [(number, raw) for number, raw in enumerate(text.splitlines(), start=1) if raw.strip()]


def read_labels_jsonl(path: str | Path) -> list[FrameTruth]:
    """The frames of a labels.jsonl file (image paths resolved against its folder); FrameLabelError when a line is
    not what docs/reader.md describes. Blank lines are skipped; images are not opened here."""
    path = Path(path)
    frames = []
    for number, raw in _numbered_lines(path):
        where = f"{path}:{number}"
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FrameLabelError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or not entry["image"]:
            raise FrameLabelError(f"{where}: expected an object with \"image\" (a path) and \"lines\"")
        lines = entry.get("lines", [])
        if not isinstance(lines, list):
            raise FrameLabelError(f"{where}: \"lines\" must be a list, got {type(lines).__name__}")
        truths = []
        for k, line in enumerate(lines):
            here = f"{where}: line {k}"
            if not isinstance(line, dict) or "quad" not in line:
                raise FrameLabelError(f"{here}: expected an object with \"quad\" and \"text\"")
            quad = _quad(line["quad"], here)
            ignore = line.get("ignore", False)
            if not isinstance(ignore, bool):
                raise FrameLabelError(f"{here}: \"ignore\" must be true or false, got {ignore!r}")
            label = line.get("text", DONT_CARE if ignore else None)
            if not isinstance(label, str):
                raise FrameLabelError(f"{here}: \"text\" must be a string (\"###\" for don't care), got {label!r}")
            truths.append(TruthLine(quad, label, ignore or label == DONT_CARE))
        frames.append(FrameTruth(path.parent / entry["image"], truths))
    return frames


def icdar_gt_path(image: Path) -> Path:
    """Where an image's ICDAR 2015 ground truth is: gt_<stem>.txt beside it, else in the folder's gt/."""
    beside = image.with_name(f"gt_{image.stem}.txt")
    if beside.exists():
        return beside
    nested = image.parent / "gt" / f"gt_{image.stem}.txt"
    return nested if nested.exists() else beside


def read_icdar_gt(path: str | Path) -> list[TruthLine]:
    """The lines of one ICDAR 2015 gt file: `x1,y1,...,x4,y4,text` (the text may hold commas; `###` = don't care)."""
    path = Path(path)
    lines = []
    for number, raw in _numbered_lines(path):
        parts = raw.split(",", 8)
        if len(parts) < 9:
            raise FrameLabelError(f"{path}:{number}: expected x1,y1,x2,y2,x3,y3,x4,y4,text, got {raw!r}")
        try:
            coords = [float(v) for v in parts[:8]]
        except ValueError:
            raise FrameLabelError(f"{path}:{number}: the first 8 fields must be numbers, got {raw!r}") from None
        label = parts[8]
        lines.append(TruthLine(_quad(np.reshape(coords, (4, 2)), f"{path}:{number}"), label, label == DONT_CARE))
    return lines


def read_icdar_folder(folder: str | Path) -> list[FrameTruth]:
    """Every image in `folder` (not recursive, sorted by name) with its ICDAR 2015 gt file's lines."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FrameLabelError(f"{folder}: not a folder")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FrameLabelError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
    frames = []
    for image in images:
        gt = icdar_gt_path(image)
        frames.append(FrameTruth(image, read_icdar_gt(gt) if gt.exists() else []))
    return frames


def load_frames(frames: str | Path, labels: str | Path | None = None) -> list[FrameTruth]:
    """Frames with ground truth: from `labels` (labels.jsonl) when given, else FRAMES/labels.jsonl if it exists, else
    the ICDAR 2015 gt files in FRAMES. Checks that every image exists."""
    frames = Path(frames)
    if labels is None and (frames / "labels.jsonl").exists():
        labels = frames / "labels.jsonl"
    result = read_labels_jsonl(labels) if labels is not None else read_icdar_folder(frames)
    if not result:
        raise FrameLabelError(f"{labels or frames}: no frames in it")
    for frame in result:
        if not frame.image.is_file():
            raise FrameLabelError(f"{labels or frames}: image {frame.image} does not exist")
    return result


def _number(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def write_frame_labels(dataset: str | Path, out: str | Path, fmt: str = "jsonl", limit: int | None = None) -> int:
    """Write a generated dataset's pages as frames with real-frame ground truth: OUT/<name>.png plus labels.jsonl
    (fmt="jsonl") or gt_<name>.txt per image (fmt="icdar"). Returns the number of frames written."""
    import cv2

    from ..core.groundtruth import parse_ground_truth
    from ..store.format import load_manifest
    from ..store.shards import decode_gray, iter_shard

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    dataset, out = Path(dataset), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(dataset)
    rows, count = [], 0
    for entry in (e for e in manifest["shards"] if e["kind"] == "images"):
        for record in iter_shard(manifest["format"], "images", dataset / entry["path"]):
            if limit is not None and count >= limit:
                break
            gt = parse_ground_truth(record.gt)
            name = f"page-{gt['seed']}-{gt['index']:06d}"
            if not cv2.imwrite(str(out / f"{name}.png"), decode_gray(record.image)):
                raise OSError(f"could not write {out / name}.png")
            lines = [{"quad": [[round(float(x), 2), round(float(y), 2)] for x, y in line["quad"]],
                      "text": line["text"]} for line in gt["lines"]]
            if fmt == "jsonl":
                rows.append(json.dumps({"image": f"{name}.png", "lines": lines}, ensure_ascii=False))
            else:
                (out / f"gt_{name}.txt").write_text(
                    "".join(",".join(_number(v) for point in line["quad"] for v in point) + f",{line['text']}\n"
                            for line in lines), encoding="utf-8")
            count += 1
    if fmt == "jsonl":
        (out / "labels.jsonl").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return count


# ----------------------------------------------------------------------------- quad geometry and matching


def box_quads(boxes) -> np.ndarray:
    """Axis-aligned boxes [N, 4] (x0, y0, x1, y1) -> quads [N, 4, 2] clockwise from the top-left."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = boxes.T
    return np.stack([np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x1, y1], -1),
                     np.stack([x0, y1], -1)], axis=1)


def _hull(quad) -> np.ndarray:
    import cv2

    return cv2.convexHull(np.asarray(quad, np.float32).reshape(-1, 1, 2))


def quad_area(quad) -> float:
    """Area of the quad's convex hull (a self-crossing quad counts as its hull)."""
    import cv2

    return float(cv2.contourArea(_hull(quad)))


def intersection_area(a, b) -> float:
    """Area shared by two quads' convex hulls."""
    import cv2

    hull_a, hull_b = _hull(a), _hull(b)
    if cv2.contourArea(hull_a) <= 0 or cv2.contourArea(hull_b) <= 0:
        return 0.0
    area, _ = cv2.intersectConvexConvex(hull_a, hull_b, handleNested=True)
    return max(0.0, float(area))


def quad_iou(a, b) -> float:
    """Polygon intersection over union of two convex quads (0 when either is degenerate)."""
    inter = intersection_area(a, b)
    union = quad_area(a) + quad_area(b) - inter
    return inter / union if union > 0 else 0.0


def _bounds(quads: np.ndarray) -> np.ndarray:
    return np.concatenate([quads.min(axis=1), quads.max(axis=1)], axis=1)


def quad_iou_matrix(a, b) -> np.ndarray:
    """IoU matrix [len(a), len(b)]; pairs whose bounding boxes do not touch are 0 without polygon work."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4, 2), np.asarray(b, np.float64).reshape(-1, 4, 2)
    out = np.zeros((len(a), len(b)))
    if not len(a) or not len(b):
        return out
    ba, bb = _bounds(a), _bounds(b)
    touch = ((ba[:, None, 0] < bb[None, :, 2]) & (bb[None, :, 0] < ba[:, None, 2])
             & (ba[:, None, 1] < bb[None, :, 3]) & (bb[None, :, 1] < ba[:, None, 3]))
    for i, j in zip(*np.nonzero(touch)):
        out[i, j] = quad_iou(a[i], b[j])
    return out


def dont_care_detections(pred_quads, gt_quads, gt_ignore: Sequence[bool], inside: float = 0.5) -> list[int]:
    """Detections (indices) more than `inside` of whose area lies within one don't-care ground-truth region."""
    pred_quads = np.asarray(pred_quads, np.float64).reshape(-1, 4, 2)
    regions = [q for q, ignore in zip(np.asarray(gt_quads, np.float64).reshape(-1, 4, 2), gt_ignore) if ignore]
    dropped = []
    for p, quad in enumerate(pred_quads):
        area = quad_area(quad)
        if area > 0 and any(intersection_area(quad, r) > inside * area for r in regions):
            dropped.append(p)
    return dropped


def match_quads(pred_quads, pred_scores: Sequence[float], gt_quads, gt_ignore: Sequence[bool] | None = None,
                iou: float = 0.5) -> tuple[list[tuple[int, int]], list[int]]:
    """(pairs, dropped): one-to-one (prediction, ground truth) pairs at IoU >= `iou`, best-scoring predictions first,
    each to its free cared-for line of highest IoU; `dropped` lists the predictions ignored because they lie mostly
    inside a don't-care region (they are never paired, and a don't-care line is never paired)."""
    pred_quads = np.asarray(pred_quads, np.float64).reshape(-1, 4, 2)
    gt_quads = np.asarray(gt_quads, np.float64).reshape(-1, 4, 2)
    ignore = np.zeros(len(gt_quads), bool) if gt_ignore is None else np.asarray(gt_ignore, bool).reshape(-1)
    dropped = dont_care_detections(pred_quads, gt_quads, ignore) if ignore.any() else []
    if not len(pred_quads) or not len(gt_quads):
        return [], dropped
    overlaps = quad_iou_matrix(pred_quads, gt_quads)
    free = ~ignore
    pairs = []
    skip = set(dropped)
    for p in np.argsort(-np.asarray(pred_scores, np.float64), kind="stable"):
        if int(p) in skip:
            continue
        candidates = np.where(free, overlaps[p], -1.0)
        g = int(candidates.argmax())
        if candidates[g] >= iou:
            free[g] = False
            pairs.append((int(p), g))
    return pairs, dropped


# ----------------------------------------------------------------------------- scoring


@dataclass
class FrameResult:
    """One frame's ground truth and predictions, matched on construction."""

    source: str
    gt_quads: np.ndarray  # [L, 4, 2]
    gt_texts: list[str]
    gt_ignore: list[bool]
    pred_quads: np.ndarray  # [K, 4, 2]
    pred_texts: list[str]
    pred_scores: list[float]
    ignore_case: bool = False
    only: str | None = None
    pairs: list[tuple[int, int]] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # detections inside don't-care regions

    def __post_init__(self):
        self.gt_quads = np.asarray(self.gt_quads, np.float64).reshape(-1, 4, 2)
        self.pred_quads = np.asarray(self.pred_quads, np.float64).reshape(-1, 4, 2)
        self.gt_ignore = [bool(v) for v in self.gt_ignore]
        self.pairs, self.dropped = match_quads(self.pred_quads, self.pred_scores, self.gt_quads, self.gt_ignore)

    def same(self, p: int, g: int) -> bool:
        return normalise(self.pred_texts[p], self.ignore_case, self.only) == \
            normalise(self.gt_texts[g], self.ignore_case, self.only)

    @property
    def counts(self) -> dict:
        """gt (cared-for lines), detections (not dropped), matched, correct (matched and read exactly)."""
        return {"gt": sum(not i for i in self.gt_ignore), "detections": len(self.pred_texts) - len(self.dropped),
                "matched": len(self.pairs), "correct": sum(self.same(p, g) for p, g in self.pairs)}

    @property
    def e2e_f1(self) -> float:
        c = self.counts
        return prf(c["correct"], c["detections"], c["gt"])[2] if c["gt"] or c["detections"] else 1.0


def prf(hits: int, predicted: int, truths: int) -> tuple[float, float, float]:
    precision = hits / predicted if predicted else 0.0
    recall = hits / truths if truths else 0.0
    return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)


@dataclass(frozen=True)
class FrameScore:
    frames: int
    gt_lines: int  # cared-for ground-truth lines (don't-care regions excluded)
    ignored_lines: int  # don't-care regions
    detections: int  # detections scored (those inside don't-care regions excluded)
    ignored_detections: int
    matched: int
    correct: int
    precision: float  # detection, IoU >= 0.5 on quads
    recall: float
    f1: float
    e2e_precision: float  # matched and read exactly
    e2e_recall: float
    e2e_f1: float
    string_accuracy: float  # of the matched lines: read exactly
    char_accuracy: float  # of the matched lines: mean 1 - normalised edit distance
    frame_accuracy: float  # frames with every cared-for line read exactly and no extra detection

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        rows = [("", "precision", "recall", "F1"),
                ("detection (IoU 0.5)", self.precision, self.recall, self.f1),
                ("end to end", self.e2e_precision, self.e2e_recall, self.e2e_f1)]
        out = [f"{rows[0][0]:<20} {rows[0][1]:>9} {rows[0][2]:>9} {rows[0][3]:>9}"]
        out += [f"{name:<20} {p:>9.4f} {r:>9.4f} {f:>9.4f}" for name, p, r, f in rows[1:]]
        out.append(f"{self.frames} frames, {self.gt_lines} lines ({self.ignored_lines} don't care), "
                   f"{self.detections} detections ({self.ignored_detections} in don't-care regions); matched lines: "
                   f"string accuracy {self.string_accuracy:.4f}, character accuracy {self.char_accuracy:.4f}; "
                   f"frame accuracy {self.frame_accuracy:.4f}")
        return "\n".join(out)


def score_frames(frames: Iterable[FrameResult]) -> FrameScore:
    n = gt = ignored = detected = dropped = matched = correct = perfect = 0
    chars = 0.0
    for frame in frames:
        c = frame.counts
        n += 1
        gt += c["gt"]
        ignored += sum(frame.gt_ignore)
        detected += c["detections"]
        dropped += len(frame.dropped)
        matched += c["matched"]
        correct += c["correct"]
        perfect += c["correct"] == c["gt"] == c["detections"]
        chars += sum(char_accuracy(normalise(frame.gt_texts[g], frame.ignore_case, frame.only),
                                   normalise(frame.pred_texts[p], frame.ignore_case, frame.only))
                     for p, g in frame.pairs)
    p, r, f = prf(matched, detected, gt)
    ep, er, ef = prf(correct, detected, gt)
    return FrameScore(n, gt, ignored, detected, dropped, matched, correct, p, r, f, ep, er, ef,
                      correct / matched if matched else 0.0, chars / matched if matched else 0.0,
                      perfect / n if n else 0.0)


def _quad_text(quad) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in np.asarray(quad).reshape(4, 2))


PREDICTION_COLUMNS = ["frame", "status", "truth", "prediction", "correct", "char_accuracy", "iou", "score",
                      "gt_quad", "pred_quad"]


def write_predictions(path: str | Path, frames: Sequence[FrameResult]) -> None:
    """One row per ground-truth line (status `matched`, `missed` or `dont_care`) and per unmatched detection
    (`false_positive`, or `ignored` inside a don't-care region), frame by frame: the scores can be recomputed
    from it (docs/reader.md)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(PREDICTION_COLUMNS)
        for frame in frames:
            by_gt = {g: p for p, g in frame.pairs}
            for g, text in enumerate(frame.gt_texts):
                p = by_gt.get(g)
                if p is None:
                    writer.writerow([frame.source, "dont_care" if frame.gt_ignore[g] else "missed", text, "", 0,
                                     "", "", "", _quad_text(frame.gt_quads[g]), ""])
                    continue
                t = normalise(text, frame.ignore_case, frame.only)
                q = normalise(frame.pred_texts[p], frame.ignore_case, frame.only)
                writer.writerow([frame.source, "matched", text, frame.pred_texts[p], int(t == q),
                                 f"{char_accuracy(t, q):.4f}", f"{quad_iou(frame.pred_quads[p], frame.gt_quads[g]):.4f}",
                                 f"{frame.pred_scores[p]:.4f}", _quad_text(frame.gt_quads[g]),
                                 _quad_text(frame.pred_quads[p])])
            paired, dropped = set(by_gt.values()), set(frame.dropped)
            for p, text in enumerate(frame.pred_texts):
                if p not in paired:
                    writer.writerow([frame.source, "ignored" if p in dropped else "false_positive", "", text, 0, "",
                                     "", f"{frame.pred_scores[p]:.4f}", "", _quad_text(frame.pred_quads[p])])


def write_frame_summary(path: str | Path, frames: Sequence[FrameResult]) -> None:
    """frames.csv: per frame, the counts behind the scores and its end-to-end F1."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["frame", "gt", "detections", "matched", "correct", "e2e_f1"])
        for frame in frames:
            c = frame.counts
            writer.writerow([frame.source, c["gt"], c["detections"], c["matched"], c["correct"],
                             f"{frame.e2e_f1:.4f}"])


def draw_frame(image: np.ndarray, frame: FrameResult | None = None, quads=None, texts=None,
               width: int | None = None) -> np.ndarray:
    """A BGR copy of a grayscale frame: ground truth green (don't care grey), detections red with their texts.
    Without `frame`, draws `quads`/`texts` alone (red). `width` resizes the result."""
    import cv2

    canvas = cv2.cvtColor(image if image.ndim == 2 else image[..., 0], cv2.COLOR_GRAY2BGR)
    scale = 1.0 if width is None else width / image.shape[1]
    if width is not None:
        canvas = cv2.resize(canvas, (width, max(1, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    thick = max(1, round(canvas.shape[0] / 500))
    font = 0.4 * max(1.0, canvas.shape[0] / 600)

    def poly(quad, colour, text, below):
        pts = np.round(np.asarray(quad, np.float64).reshape(4, 2) * scale).astype(np.int32)
        cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], True, colour, thick, cv2.LINE_AA)
        if text:
            x, y = int(pts[:, 0].min()), int(pts[:, 1].max() + 14 * font / 0.4) if below else int(pts[:, 1].min() - 4)
            cv2.putText(canvas, text.encode("ascii", "replace").decode(), (x, max(12, y)), cv2.FONT_HERSHEY_SIMPLEX,
                        font, colour, thick, cv2.LINE_AA)

    if frame is not None:
        quads, texts = frame.pred_quads, frame.pred_texts
    for quad, text in zip(np.asarray(quads if quads is not None else [], np.float64).reshape(-1, 4, 2),
                          list(texts if texts is not None else [])):
        poly(quad, (0, 0, 230), text or "?", below=False)
    if frame is not None:  # ground truth last, on top of the detections
        for quad, text, ignore in zip(frame.gt_quads, frame.gt_texts, frame.gt_ignore):
            poly(quad, (160, 160, 160) if ignore else (0, 170, 0), text, below=True)
    return canvas


def failure_sheet(frames: Sequence[FrameResult], images: dict[str, np.ndarray] | None = None, worst: int = 6,
                  load=None, width: int = 640, columns: int = 2) -> np.ndarray | None:
    """The `worst` frames by end-to-end F1 (then most errors), drawn with draw_frame in a grid; None if every frame is
    read perfectly. `images` maps frame source to image, or `load(source)` reads one."""
    import cv2

    errors = []
    for k, frame in enumerate(frames):
        c = frame.counts
        wrong = (c["gt"] - c["correct"]) + (c["detections"] - c["correct"])
        if wrong:
            errors.append((frame.e2e_f1, -wrong, k, frame))
    if not errors:
        return None
    tiles = []
    for f1, _, _, frame in sorted(errors, key=lambda e: e[:3])[:worst]:
        image = images[frame.source] if images is not None else load(frame.source)
        tile = draw_frame(image, frame, width=width)
        caption = np.full((22, width, 3), 32, np.uint8)
        cv2.putText(caption, f"{frame.source[-60:]}  e2e F1 {f1:.2f}".encode("ascii", "replace").decode(), (4, 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(np.vstack([caption, tile]))
    height = max(t.shape[0] for t in tiles)
    tiles = [np.vstack([t, np.zeros((height - t.shape[0], width, 3), np.uint8)]) for t in tiles]
    rows = math.ceil(len(tiles) / columns)
    tiles += [np.zeros_like(tiles[0])] * (rows * columns - len(tiles))
    return np.vstack([np.hstack(tiles[r * columns:(r + 1) * columns]) for r in range(rows)])


def frame_results(truths: Sequence[FrameTruth], predictions: Iterable[Sequence], ignore_case: bool = False,
                  only: str | None = None, root: Path | None = None) -> list[FrameResult]:
    """FrameResults from ground truth and, per frame, a list of predicted lines (objects with quad, text, score)."""
    results = []
    for truth, lines in zip(truths, predictions):
        source = str(truth.image.relative_to(root)) if root is not None and truth.image.is_relative_to(root) \
            else str(truth.image)
        results.append(FrameResult(source, [t.quad for t in truth.lines], [t.text for t in truth.lines],
                                   [t.ignore for t in truth.lines], [line.quad for line in lines],
                                   [line.text for line in lines], [line.score for line in lines], ignore_case,
                                   only))
    return results


def iter_frame_images(truths: Sequence[FrameTruth]) -> Iterator[np.ndarray]:
    """The frames' images in grayscale (as `predict` reads them); FrameLabelError for one that cannot be read."""
    import cv2

    for truth in truths:
        image = cv2.imread(str(truth.image), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FrameLabelError(f"cannot read {truth.image} as an image")
        yield image


def evaluate_frames(read, truths: Sequence[FrameTruth], out_dir: str | Path, ignore_case: bool = False,
                    only: str | None = None, batch_size: int = 4, worst: int = 6, root: Path | None = None,
                    log=None) -> FrameScore:
    """Read every frame with `read(images) -> [[line with quad, text, score], ...]`, score it, and write
    metrics.json, predictions.csv, frames.csv and failures.png (the worst frames drawn) into out_dir."""
    import cv2

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[FrameResult] = []
    images = iter_frame_images(truths)
    for start in range(0, len(truths), batch_size):
        chunk = truths[start:start + batch_size]
        batch = [next(images) for _ in chunk]
        results += frame_results(chunk, read(batch), ignore_case, only, root)
        if log is not None:
            log(f"{len(results)}/{len(truths)} frames")
    write_predictions(out_dir / "predictions.csv", results)
    write_frame_summary(out_dir / "frames.csv", results)
    score = score_frames(results)
    (out_dir / "metrics.json").write_text(json.dumps(score.as_dict(), indent=1) + "\n", encoding="utf-8")
    paths = {result.source: truth.image for result, truth in zip(results, truths)}
    sheet = failure_sheet(results, worst=worst,
                          load=lambda source: cv2.imread(str(paths[source]), cv2.IMREAD_GRAYSCALE))
    failures = out_dir / "failures.png"
    if sheet is not None:
        cv2.imwrite(str(failures), sheet)
    elif failures.exists():
        failures.unlink()
    return score
