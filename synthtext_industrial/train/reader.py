"""A frame reader: a detector run finds the lines of a camera frame, a recognizer run reads each one's rectified crop.

A reader run is a folder holding `reader.json` (`"model": "reader"`): the detector and recognizer runs (paths
absolute, or relative to the reader folder) and the reader's own settings (ReaderConfig). The detector is an
oriented detector run (`train detector`, train/detector.py: rotated boxes in reading order) or a spotter run's
detection head (axis-aligned boxes, turned into quads). Everything after the detector is quad-based: detections are
put in reading order and their crops rectified upright (rotation, perspective) by portable.reading_order and
portable.rectified_crop, the code the exported Jetson kit carries a copy of. See docs/reader.md.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from pydantic import Field

from ..core.config import StrictModel
from ..core import portable
from .runs import RunError, run_kind

READER_FILE = "reader.json"
DETECTORS = ("detector", "spotter")  # the run kinds a reader finds lines with
MIN_SIDE = portable.MIN_SIDE  # detections narrower or lower than this (frame pixels) are dropped: nothing to read


class ReaderConfig(StrictModel):
    """reader.json: which runs, and how the reader uses them."""

    detector: str = Field(description="the detector run (an oriented detector or a spotter run), absolute or "
                                      "relative to the reader folder")
    recognizer: str = Field(description="the recognizer run, absolute or relative to the reader folder")
    height: Optional[int] = Field(None, description="detector input height frames are resized to; null = the "
                                                    "detector run's")
    width: Optional[int] = Field(None, description="detector input width; null = the detector run's")
    score_threshold: Optional[float] = Field(None, ge=0.0, le=1.0,
                                             description="detection score threshold; null = the detector run's")
    crop_margin: tuple[float, float, float, float] = Field(
        (0.15, 0.15, 0.15, 0.15), description="context around each detected quad in line heights (left, top, "
                                              "right, bottom), as the recognizer's training crops were framed")
    grammar: bool = Field(True, description="decode with the grammar of the recipes the recognizer was trained on "
                                            "(where they are still found)")

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"model": "reader", **self.model_dump()}, indent=1, ensure_ascii=False)
                              + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "ReaderConfig":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"{path} is unreadable ({exc})") from None
        if not isinstance(data, dict) or data.pop("model", None) != "reader":
            raise RunError(f"{path} does not describe a reader (\"model\": \"reader\")")
        try:
            return cls(**data)
        except ValueError as exc:
            raise RunError(f"{path}: {exc}") from None

    def detector_overrides(self) -> dict:
        """The detector config fields this reader sets (input size, threshold): load_detector's overrides."""
        return {k: v for k, v in (("height", self.height), ("width", self.width),
                                  ("score_threshold", self.score_threshold)) if v is not None}

    def run_path(self, folder: Path, which: str) -> Path:
        path = Path(getattr(self, which))
        return path if path.is_absolute() else Path(folder) / path


def trained_crop_margin(recognizer: str | Path) -> tuple[float, float, float, float]:
    """The mean margins (left, top, right, bottom, line heights) of the crops the recognizer run was trained on: the
    middle of each dataset's recipe `crops` ranges (datasets with crops), CROP_MARGIN for lines cut from pages;
    datasets no longer found and line folders count as CROP_MARGIN. Window framing (`crops.window`) is not modelled."""
    import yaml

    from ..stages.framing import CropConfig
    from ..store.format import load_manifest
    from .lines import CROP_MARGIN

    try:
        data = json.loads((Path(recognizer) / "training.json").read_text(encoding="utf-8")).get("data", [])
    except (OSError, ValueError, AttributeError):
        data = []
    margins = []
    for entry in data if isinstance(data, list) else []:
        try:
            manifest = load_manifest(entry["path"])
            recipe = yaml.safe_load(manifest.get("recipe") or "") or {} if manifest.get("crops") else {}
            crops = CropConfig(**(recipe.get("crops") or {}))
        except Exception:  # a moved dataset, a line folder, an old recipe: the default framing
            margins.append((CROP_MARGIN,) * 4)
            continue
        mx, my = sum(crops.margin_x) / 2, sum(crops.margin_y) / 2
        margins.append((mx, my, mx, my) if manifest.get("crops") else (CROP_MARGIN,) * 4)
    if not margins:
        return (CROP_MARGIN,) * 4
    return tuple(round(float(v), 4) for v in np.mean(margins, axis=0))


def _stored_path(run: str | Path, folder: Path) -> str:
    """A run's path as reader.json keeps it: absolute if given so, else relative to the reader folder."""
    run = Path(run)
    if run.is_absolute():
        return str(run)
    return os.path.relpath(run.resolve(), folder.resolve())


def create_reader(detector: str | Path, recognizer: str | Path, out: str | Path, height: int | None = None,
                  width: int | None = None, score_threshold: float | None = None,
                  crop_margin: float | Sequence[float] | None = None, grammar: bool = True) -> ReaderConfig:
    """Write OUT/reader.json for a trained detector run (an oriented detector, or a spotter: its detection head) and a
    trained recognizer run; RunError when either is not what it should be or OUT already holds something else.
    `crop_margin` defaults to the recognizer's training margins (trained_crop_margin)."""
    from .detector import DetectorConfig
    from .spotter import SpotterConfig

    out = Path(out)
    kind = run_kind(detector, trained=True)
    if kind not in DETECTORS:
        raise RunError(f"{detector} is a {kind} run, not a detector: give a detector run (`train detector`: oriented "
                       f"boxes) or a spotter run (its detection head finds the lines)")
    if run_kind(recognizer, trained=True) != "recognizer":
        raise RunError(f"{recognizer} is not a recognizer run")
    if out.exists() and any(out.iterdir()) and not (out / READER_FILE).exists():
        raise RunError(f"{out} exists and is not a reader folder: choose another --out")
    found = (DetectorConfig if kind == "detector" else SpotterConfig).load(Path(detector) / "config.json")
    if height is not None or width is not None:
        try:
            found.model_copy(update={"height": height or found.height, "width": width or found.width}).check_input()
        except ValueError as exc:
            raise RunError(str(exc)) from None
    if crop_margin is None:
        margin = trained_crop_margin(recognizer)
    else:
        margin = (float(crop_margin),) * 4 if np.isscalar(crop_margin) else tuple(float(m) for m in crop_margin)
    out.mkdir(parents=True, exist_ok=True)
    config = ReaderConfig(detector=_stored_path(detector, out), recognizer=_stored_path(recognizer, out),
                          height=height, width=width, score_threshold=score_threshold, crop_margin=margin,
                          grammar=grammar)
    config.save(out / READER_FILE)
    return config


def is_reader(folder: str | Path) -> bool:
    return (Path(folder) / READER_FILE).is_file()


@dataclass
class FrameLine:
    quad: np.ndarray  # [4, 2] frame pixels, clockwise from the text's top-left
    text: str
    confidence: float  # the recognizer's (product of the best path's per-step probabilities)
    score: float = 1.0  # the detection's score (matching ranks detections by it)
    rejected: bool = False  # with a grammar: no string it accepts explains the crop (text is then "")


@dataclass
class Reader:
    path: Path
    config: ReaderConfig
    detector: object  # train.detector.Detector or train.spotter.Spotter, at the reader's input size
    recognizer: object  # keras model
    recognizer_config: object  # RecognizerConfig
    grammar: object | None = None


def load_reader(path: str | Path, which: str = "best") -> Reader:
    """A reader run, ready to read frames: both runs' weights loaded (RunError when one is missing)."""
    from .runs import load_detector, load_recognizer, load_spotter

    path = Path(path)
    if not is_reader(path):
        raise RunError(f"{path} has no {READER_FILE}: not a reader run (make one with `reader create`)")
    config = ReaderConfig.load(path / READER_FILE)
    detector, recognizer = config.run_path(path, "detector"), config.run_path(path, "recognizer")
    kinds = {}
    for run, role, wanted in ((detector, "detector", DETECTORS), (recognizer, "recognizer", ("recognizer",))):
        try:
            kinds[role] = run_kind(run, trained=True)
        except RunError as exc:
            raise RunError(f"{path / READER_FILE}: its {role}: {exc}") from None
        if kinds[role] not in wanted:
            raise RunError(f"{path / READER_FILE}: {run} is a {kinds[role]} run, not a {' or '.join(wanted)} run")
    found = (load_detector if kinds["detector"] == "detector" else load_spotter)(detector, which,
                                                                              **config.detector_overrides())
    model, recognizer_config = load_recognizer(recognizer, which)
    return Reader(path, config, found, model, recognizer_config, reader_grammar(config, recognizer))


def reader_grammar(config: ReaderConfig, recognizer: str | Path):
    """The Grammar a reader decodes with: its recognizer's recipes' (train/grammar.py: run_grammar) when reader.json's
    `grammar` is on and they are found and small enough, else None (greedy decoding)."""
    from .grammar import GrammarTooLarge, run_grammar

    if not config.grammar:
        return None
    try:
        return run_grammar(recognizer)
    except (GrammarTooLarge, ValueError):
        return None


def detect_boxes(spotter, images: Sequence[np.ndarray], batch_size: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """(boxes [K, 4] x0, y0, x1, y1 in each image's pixels, scores [K]) from the spotter's detection head alone."""
    from .spotter import decode_boxes

    config = spotter.config
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        batch = np.stack([portable.preprocess(im, config.height, config.width) for im in chunk])
        _, score, geometry = spotter.detector(batch, training=False)
        score, geometry = np.asarray(score), np.asarray(geometry)
        for k, image in enumerate(chunk):
            boxes, scores = decode_boxes(score[k], geometry[k], config.score_threshold, config.nms_iou)
            sx, sy = image.shape[1] / config.width, image.shape[0] / config.height
            out.append((boxes.reshape(-1, 4) * np.array([sx, sy, sx, sy], np.float32), scores))
    return out


def detect_quads(detector, images: Sequence[np.ndarray], batch_size: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """(quads [K, 4, 2] in each image's pixels, clockwise from the text's top-left as read, scores [K]): an oriented
    detector's rotated boxes, or a spotter's axis-aligned boxes as quads."""
    from .detector import Detector, detect_pages
    from .frames import box_quads

    if isinstance(detector, Detector):
        return detect_pages(detector, list(images), batch_size)
    return [(box_quads(boxes), scores) for boxes, scores in detect_boxes(detector, images, batch_size)]


def read_frames(reader: Reader, images: Sequence[np.ndarray], batch_size: int = 4) -> list[list[FrameLine]]:
    """The lines of each grayscale frame: detected quads, each crop rectified and read; top to bottom, then left to
    right."""
    from .recognizer import read_lines

    images = [im if im.ndim == 2 else im[..., 0] for im in images]
    found = [portable.reading_order(detected, scores, MIN_SIDE)
             for detected, scores in detect_quads(reader.detector, images, batch_size)]
    crops = [portable.rectified_crop(image, quad, reader.config.crop_margin) for image, lines in zip(images, found)
             for quad, _ in lines]
    readings = iter(read_lines(reader.recognizer, reader.recognizer_config, crops, grammar=reader.grammar)
                    if crops else [])
    out = []
    for lines in found:
        frame = []
        for quad, score in lines:
            r = next(readings)
            frame.append(FrameLine(quad, r.text, float(r.confidence), score, bool(r.rejected)))
        out.append(frame)
    return out


def read_frame(reader: Reader, image: np.ndarray) -> list[FrameLine]:
    """The lines of one grayscale frame (see read_frames)."""
    return read_frames(reader, [image])[0]


def spot_frames(spotter, images: Sequence[np.ndarray], batch_size: int = 4) -> list[list[FrameLine]]:
    """The spotter alone, end to end, as FrameLines: its boxes as quads, its own reading (confidence = score)."""
    from .frames import box_quads
    from .spotter import spot_pages

    images = [im if im.ndim == 2 else im[..., 0] for im in images]
    return [[FrameLine(box_quads([s.box])[0], s.text, float(s.score), float(s.score)) for s in spots]
            for spots in spot_pages(spotter, list(images), batch_size)]


def detect_frames(detector, images: Sequence[np.ndarray], batch_size: int = 4) -> list[list[FrameLine]]:
    """An oriented detector alone as FrameLines (text "", confidence = score): its detection scores on frames."""
    images = [im if im.ndim == 2 else im[..., 0] for im in images]
    return [[FrameLine(np.asarray(q, np.float64), "", float(s), float(s)) for q, s in zip(quads, scores)]
            for quads, scores in detect_quads(detector, images, batch_size)]
