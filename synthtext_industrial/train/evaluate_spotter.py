"""Detection and end-to-end scores of a spotter, the ICDAR way.

Detections are matched one-to-one to ground-truth lines, greedily by score, at IoU >= 0.5 on
axis-aligned boxes (frames.match_quads, the rule real frames are scored by too): detection precision / recall /
F1. End to end, a match counts only if the text is read exactly too: end-to-end precision / recall / F1; `string_accuracy` is the end-to-end recall
(the share of ground-truth lines found and read exactly), and `page_accuracy` the share of pages with
every line read and nothing extra. Every ground-truth line and every unmatched detection is written to
predictions.csv, so a person can see what goes wrong.
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .frames import box_quads, match_quads, prf
from .spotter import draw_spots


def match_boxes(pred_boxes: np.ndarray, pred_scores: Sequence[float], gt_boxes: np.ndarray,
                iou: float = 0.5) -> list[tuple[int, int]]:
    """One-to-one (prediction, ground truth) pairs: best-scoring predictions first, each to its best free GT.

    The boxes are matched as quads by frames.match_quads, the one matching rule of every evaluation (on
    axis-aligned boxes polygon IoU is box IoU)."""
    pairs, _ = match_quads(box_quads(pred_boxes), pred_scores, box_quads(gt_boxes), None, iou)
    return pairs


@dataclass
class PageSpots:
    source: str
    gt_boxes: np.ndarray  # [L, 4], same pixel frame as pred_boxes
    gt_texts: list[str]
    pred_boxes: np.ndarray  # [K, 4]
    pred_texts: list[str]
    pred_scores: list[float]
    pairs: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self):
        self.pairs = match_boxes(self.pred_boxes, self.pred_scores, self.gt_boxes)


@dataclass(frozen=True)
class SpottingScore:
    pages: int
    gt_lines: int
    detections: int
    precision: float  # detection, IoU >= 0.5
    recall: float
    f1: float
    e2e_precision: float  # matched and read exactly
    e2e_recall: float
    e2e_f1: float
    string_accuracy: float  # = e2e_recall: ground-truth lines found and read exactly
    page_accuracy: float  # pages with every line read exactly and no extra detection

    def as_dict(self) -> dict:
        return asdict(self)


def score_pages(pages: Iterable[PageSpots]) -> SpottingScore:
    count = gt = detected = matched = correct = perfect = 0
    for page in pages:
        count += 1
        gt += len(page.gt_texts)
        detected += len(page.pred_texts)
        matched += len(page.pairs)
        right = sum(page.pred_texts[p] == page.gt_texts[g] for p, g in page.pairs)
        correct += right
        perfect += right == len(page.gt_texts) == len(page.pred_texts)
    p, r, f = prf(matched, detected, gt)
    ep, er, ef = prf(correct, detected, gt)
    return SpottingScore(count, gt, detected, p, r, f, ep, er, ef, er, perfect / count if count else 0.0)


def dataset_pages(out: str | Path, limit: int | None = None) -> Iterator[tuple[str, np.ndarray, np.ndarray, list[str]]]:
    """(source id, page image, GT boxes [L, 4] in page pixels, texts) streamed from LMDB or TFRecord page shards."""
    from ..store.readers import tf_dataset

    from .spotter import page_boxes

    pages = tf_dataset(out, kind="images", num_parallel_calls=None)
    if limit is not None:
        pages = pages.take(limit)
    for page in pages.as_numpy_iterator():
        yield (page["source_id"].decode(), page["image"][..., 0], page_boxes(page["line_quads"], 1.0, 1.0),
               [t.decode("utf-8") for t in page["texts"]])


def write_predictions(path: Path, pages: list[PageSpots]) -> None:
    """One row per GT line (with its match, if any) and per unmatched detection."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "truth", "prediction", "correct", "gt_box", "pred_box", "score"])
        fmt = lambda box: ",".join(f"{v:.0f}" for v in box)  # noqa: E731
        for page in pages:
            by_gt = {g: p for p, g in page.pairs}
            for g, text in enumerate(page.gt_texts):
                p = by_gt.get(g)
                writer.writerow([page.source, text, "" if p is None else page.pred_texts[p],
                                 int(p is not None and page.pred_texts[p] == text), fmt(page.gt_boxes[g]),
                                 "" if p is None else fmt(page.pred_boxes[p]),
                                 "" if p is None else f"{page.pred_scores[p]:.3f}"])
            matched = set(by_gt.values())
            for p, text in enumerate(page.pred_texts):
                if p not in matched:
                    writer.writerow([page.source, "", text, 0, "", fmt(page.pred_boxes[p]),
                                     f"{page.pred_scores[p]:.3f}"])


def evaluate_spotter(run: str | Path, data: str | Path, out_dir: str | Path, limit: int | None = None,
                     batch_size: int = 4, worst: int = 6) -> SpottingScore:
    """Spot every page of a generated dataset, score it, write predictions.csv and failures-*.png into out_dir."""
    import cv2

    from .runs import load_spotter
    from .spotter import Spot, spot_pages

    model = load_spotter(run)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[PageSpots] = []
    failures = []
    chunk: list = []

    def flush():
        for (source, image, boxes, texts), spots in zip(chunk, spot_pages(model, [c[1] for c in chunk], batch_size)):
            page = PageSpots(source, boxes, texts, np.array([s.box for s in spots], np.float32).reshape(-1, 4),
                             [s.text for s in spots], [s.score for s in spots])
            results.append(page)
            if len(failures) < worst and score_pages([page]).page_accuracy < 1.0:
                truth = [Spot(tuple(b), t, 1.0) for b, t in zip(boxes, texts)]
                drawn = draw_spots(image, spots)
                for s in truth:  # ground truth in blue, thin
                    x0, y0, x1, y1 = (int(round(v)) for v in s.box)
                    cv2.rectangle(drawn, (x0, y0), (x1, y1), (255, 0, 0), 1)
                failures.append(drawn)
        chunk.clear()

    for item in dataset_pages(data, limit):
        chunk.append(item)
        if len(chunk) >= batch_size:
            flush()
    if chunk:
        flush()
    write_predictions(out_dir / "predictions.csv", results)
    for k, image in enumerate(failures):
        cv2.imwrite(str(out_dir / f"failures-{k}.png"), image)
    return score_pages(results)
