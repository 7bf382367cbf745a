"""Honest accuracy of a trained recognizer on a generated dataset or on real labelled photos.

Reports string accuracy and character accuracy (1 - normalised edit distance) like
the published system's Table 2, writes every prediction to predictions.csv and a
sheet of the worst failures, so a person can look at what goes wrong.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from .text import Accuracy, accuracy, char_accuracy, normalise


@dataclass
class Prediction:
    source: str
    truth: str
    text: str
    confidence: float
    image: np.ndarray
    rejected: bool = False  # with a grammar: no string it accepts explains the line (text is "")
    unconstrained: str | None = None  # with a grammar: the greedy reading


def dataset_lines(out: str | Path, limit: int | None = None) -> Iterator[tuple[str, np.ndarray, str]]:
    """(source, line image, text) for the lines of a generated dataset: its crops, or cut from its pages."""
    from ..core.groundtruth import parse_ground_truth
    from ..crops import line_crop
    from ..store.shards import decode_gray
    from ..store.format import load_manifest
    from ..store.shards import iter_shard

    out = Path(out)
    manifest = load_manifest(out)
    kind = "crops" if manifest.get("crops") else "images"
    count = 0
    for entry in (e for e in manifest["shards"] if e["kind"] == kind):
        for record in iter_shard(manifest["format"], kind, out / entry["path"]):
            image = decode_gray(record.image)
            if kind == "crops":
                lines = [(record.source, image, record.text)]
            else:
                gt = parse_ground_truth(record.gt)
                lines = [(f"{gt['seed']}:{gt['index']}:{k}", line_crop(image, np.asarray(line["quad"])), line["text"])
                         for k, line in enumerate(gt["lines"])]
            for line in lines:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield line


def labelled_images(labels: str | Path) -> Iterator[tuple[str, np.ndarray, str]]:
    """(path, image, text) from a labels file of `path<TAB>text` lines."""
    import cv2

    from .lines import read_labels_tsv

    for path, text in read_labels_tsv(labels):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FileNotFoundError(f"{labels}: cannot read image {path}")
        yield str(path), image, text


def predict_all(model, config, items, batch_size: int = 64, beam_width: int = 0, grammar=None) -> list[Prediction]:
    from .recognizer import read_lines

    predictions, batch = [], []

    def flush():
        readings = read_lines(model, config, [image for _, image, _ in batch], batch_size, beam_width, grammar)
        predictions.extend(Prediction(src, truth, r.text, r.confidence, image, r.rejected, r.unconstrained)
                           for (src, image, truth), r in zip(batch, readings))
        batch.clear()

    for item in items:
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return predictions


def write_predictions(path: Path, predictions: list[Prediction], ignore_case: bool, only: str | None) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "truth", "prediction", "correct", "char_accuracy", "confidence", "rejected",
                         "unconstrained"])
        for p in predictions:
            t, q = normalise(p.truth, ignore_case, only), normalise(p.text, ignore_case, only)
            writer.writerow([p.source, p.truth, p.text, int(t == q), f"{char_accuracy(t, q):.4f}",
                             f"{p.confidence:.4f}", int(p.rejected), p.unconstrained or ""])


def failure_sheet(predictions: list[Prediction], ignore_case: bool, only: str | None, worst: int = 24,
                  width: int = 320) -> np.ndarray | None:
    """The worst-read lines stacked, each captioned with truth and prediction; None if every line is right."""
    import cv2

    scored = [(char_accuracy(normalise(p.truth, ignore_case, only), normalise(p.text, ignore_case, only)), k, p)
              for k, p in enumerate(predictions)]
    failures = sorted((s for s in scored if s[0] < 1.0), key=lambda s: (s[0], s[1]))[:worst]
    if not failures:
        return None
    rows = []
    for score, _, p in failures:
        h, w = p.image.shape[:2]
        tile = cv2.resize(p.image, (width, max(8, min(96, round(h * width / w)))), interpolation=cv2.INTER_AREA)
        caption = np.full((36, width), 32, np.uint8)
        read = f"rejected (greedy {p.unconstrained})" if p.rejected else p.text
        for j, text in enumerate((f"truth {p.truth}", f"read  {read}  ({score:.2f})")):
            cv2.putText(caption, text.encode("ascii", "replace").decode(), (4, 14 + 16 * j),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.42, 255, 1, cv2.LINE_AA)
        rows += [tile, caption, np.full((4, width), 0, np.uint8)]
    return np.vstack(rows)


def evaluate_recognizer(run: str | Path, items, out_dir: str | Path, ignore_case: bool = False,
                        only: str | None = None, batch_size: int = 64, beam_width: int = 0,
                        grammar=None) -> Accuracy:
    """Read every item, score it, write predictions.csv and failures.png into out_dir.

    With a `grammar` (train/grammar.py), decoding keeps to the strings it accepts; a rejected line counts as
    read wrong (its text is "") and the result's `rejected` counts them.
    """
    import cv2

    from .runs import load_recognizer

    model, config = load_recognizer(run)
    predictions = predict_all(model, config, items, batch_size, beam_width, grammar)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(out_dir / "predictions.csv", predictions, ignore_case, only)
    sheet = failure_sheet(predictions, ignore_case, only)
    if sheet is not None:
        cv2.imwrite(str(out_dir / "failures.png"), sheet)
    result = accuracy([p.truth for p in predictions], [p.text for p in predictions], ignore_case, only)
    if grammar is None:
        return result
    return replace(result, rejected=sum(p.rejected for p in predictions))
