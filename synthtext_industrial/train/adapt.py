"""Adapt a trained recognizer to a folder of unlabelled real line images: self-training, or batch-norm statistics.

Self-training (`adapt`): each round reads every image with the current model (grammar-constrained where the
grammar is known), keeps the readings that are confident and valid under the grammar as pseudo-labels, and
fine-tunes from the current weights on the run's synthetic datasets mixed with the pseudo-labelled lines (the
mix set by weights), for a fixed number of steps. The next round reads with the fine-tuned model. Only image
files are read from the folder (IMAGE_SUFFIXES): a labels.tsv or any other file next to them is never opened.

OUT/
  adapt.json              source run, options, grammar, and per round: lines read, kept, dropped by reason,
                          confidence of all and of the kept readings, pseudo-label lengths, steps, validation
  rounds/round-N/         the round's training run (config.json, training.json, best.weights.h5, ...) with
    readings.csv          every image's reading, confidence and whether it was kept (or why not)
    pseudo/lines.tsv      the kept pseudo-labels, `path<TAB>text` (a line folder, train/lines.py)
  config.json, training.json, metrics.json, best.weights.h5, checkpoints/
                          the last round's run, copied: OUT is a recognizer run like any other, so predict,
                          evaluate and export take it unchanged (its grammar is the source's: training.json
                          names the same synthetic datasets, and line folders carry no recipe)

Batch-norm adaptation (`adapt_batchnorm`): the weights stay as trained, and only the BatchNormalization layers'
moving mean and variance are re-estimated on the images (forward passes in training mode, averaged over all
images, no gradients). OUT is again a run, with adapt.json recording the mean confidence before and after.
"""
from __future__ import annotations

import csv
import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..core.config import StrictModel
from .lines import LINES_FILE, dump_json

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
RUN_FILES = ("config.json", "training.json", "metrics.json", "best.weights.h5")
DROP_REASONS = ("rejected by the grammar", "empty", "outside the grammar", "too long", "low confidence")


class AdaptSettings(StrictModel):
    """How `adapt` self-trains, saved in adapt.json."""

    rounds: int = 3
    steps: int = 200  # fine-tuning steps per round
    threshold: float = 0.9  # keep readings with at least this confidence
    pseudo_weight: float = 1.0  # sampling weight of the pseudo-labelled lines ...
    weights: list[float] | None = None  # ... and of each synthetic dataset (default 1 each)
    batch_size: int = 32
    learning_rate: float = 1e-4  # peak of a cosine schedule per round, from a fresh optimizer
    beam_width: int = 0  # 0: greedy, or 10 beams with a grammar (as predict)
    augment: bool = False
    seed: int = 0


@dataclass
class Selection:
    """Which readings became pseudo-labels: `reasons[i]` is "kept" or why reading i was dropped."""

    reasons: list[str]

    @property
    def kept(self) -> list[int]:
        return [i for i, reason in enumerate(self.reasons) if reason == "kept"]

    def dropped(self) -> dict[str, int]:
        counts = Counter(self.reasons)
        return {reason: counts[reason] for reason in DROP_REASONS if counts[reason]}


def select_pseudo_labels(readings: Sequence, threshold: float, grammar=None,
                         max_length: int | None = None) -> Selection:
    """Keep a reading (recognizer.LineReading) as a pseudo-label when it is not rejected, not empty, accepted by
    `grammar` (when given; a grammar-constrained reading always is, a greedy one may not be), at most
    `max_length` characters (what the model's sequence can carry), and at least `threshold` confident."""
    reasons = []
    for r in readings:
        if r.rejected:
            reasons.append("rejected by the grammar")
        elif not r.text:
            reasons.append("empty")
        elif grammar is not None and not grammar.accepts(r.text):
            reasons.append("outside the grammar")
        elif max_length is not None and len(r.text) > max_length:
            reasons.append("too long")
        elif r.confidence < threshold:
            reasons.append("low confidence")
        else:
            reasons.append("kept")
    return Selection(reasons)


def find_images(folder: str | Path) -> list[Path]:
    """The image files under `folder` (recursively, sorted): only names ending in IMAGE_SUFFIXES are listed, so
    labels or notes kept beside the photos are never read. ValueError if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of images")
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return found


def load_images(paths: Sequence[Path], log: Callable[[str], None]) -> tuple[list[Path], list[np.ndarray]]:
    """(paths, grayscale images) of the files OpenCV can read, as predict reads them; the others are named in
    the log and left out. ValueError if none can be read."""
    import cv2

    kept, images = [], []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None or image.size == 0:
            log(f"warning: cannot read {path} as an image; left out")
            continue
        kept.append(path)
        images.append(image)
    if not images:
        raise ValueError(f"none of the {len(paths)} image files could be read")
    return kept, images


def _check_out(run: Path, out: Path) -> None:
    if out.resolve() == run.resolve():
        raise ValueError(f"--out {out} is the source run: choose another folder")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: choose another --out")


def _confidence_stats(values: Sequence[float]) -> dict:
    if not len(values):
        return {"mean": None, "min": None, "median": None}
    values = np.asarray(values, float)
    return {"mean": round(float(values.mean()), 4), "min": round(float(values.min()), 4),
            "median": round(float(np.median(values)), 4)}


def reading_summary(readings: Sequence, selection: Selection, previous: Sequence | None = None) -> dict:
    """What adapt.json records about one reading of the images."""
    kept = selection.kept
    summary = {
        "lines": len(readings), "kept": len(kept), "dropped": selection.dropped(),
        "confidence_all": _confidence_stats([r.confidence for r in readings]),
        "confidence_kept": _confidence_stats([readings[i].confidence for i in kept]),
        "kept_lengths": {str(n): c for n, c in sorted(Counter(len(readings[i].text) for i in kept).items())},
    }
    if previous is not None:
        summary["changed_since_last_round"] = sum(a.text != b.text for a, b in zip(readings, previous))
    return summary


def _write_readings(path: Path, paths: Sequence[Path], readings: Sequence, selection: Selection) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "text", "confidence", "kept", "reason", "unconstrained"])
        for p, r, reason in zip(paths, readings, selection.reasons):
            writer.writerow([str(p), r.text, f"{r.confidence:.4f}", int(reason == "kept"), reason,
                             r.unconstrained or ""])


def _write_line_folder(folder: Path, paths: Sequence[Path], readings: Sequence, kept: Sequence[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LINES_FILE).write_text("".join(f"{paths[i].resolve()}\t{readings[i].text}\n" for i in kept),
                                     encoding="utf-8")


def source_data(run: Path) -> tuple[list[str], str | None]:
    """(synthetic datasets, val set) a run was trained on, those still present; line folders are left out."""
    try:
        training = json.loads((run / "training.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{run}/training.json is unreadable ({exc}); give --data") from None
    if not isinstance(training, dict) or not isinstance(training.get("data", []), list):
        raise ValueError(f"{run}/training.json does not list the run's datasets; give --data")
    data = [d["path"] for d in training.get("data", []) if d.get("kind") != "lines"]
    present = [d for d in data if (Path(d) / "manifest.json").exists()]
    if not present:
        raise FileNotFoundError(f"the datasets {run} was trained on ({', '.join(data) or 'none listed'}) are gone; "
                                f"give --data")
    return present, _run_val(run)


def _run_val(run: Path) -> str | None:
    """The held-out set a run was trained with, if its training.json names one that is still there."""
    try:
        val = json.loads((run / "training.json").read_text(encoding="utf-8")).get("val")
    except (OSError, ValueError, AttributeError):
        return None
    return val if val and (Path(val) / "manifest.json").exists() else None


def _copy_run(source: Path, out: Path) -> None:
    for name in RUN_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, out / name)
    if (source / "checkpoints").exists():
        shutil.copytree(source / "checkpoints", out / "checkpoints", dirs_exist_ok=True)


def adapt(run: str | Path, images: str | Path, out: str | Path, settings: AdaptSettings | None = None,
          data: Sequence[str | Path] | None = None, val: str | Path | None = None, grammar="run",
          which: str = "best", log: Callable[[str], None] = print) -> dict:
    """Self-train recognizer `run` on the unlabelled line images in folder `images` into the run `out`.

    data: the synthetic datasets to keep training on (default: the run's, where still present); val: the
    held-out set each round reports on (default: the run's --val, if any). grammar: "run" (the run's recipes',
    when known), None (no grammar), or a train.grammar.Grammar. which: the source run's "best" epoch's weights or
    its "last" checkpoint (each round then starts from the previous round's weights). Returns adapt.json's content; when no round keeps
    any line, nothing is trained, `out` holds adapt.json only and the result's "trained_rounds" is 0.
    """
    from .fit_recognizer import train_recognizer
    from .grammar import run_grammar
    from .loop import TrainSettings
    from .recognizer import read_lines
    from .runs import RunError, load_recognizer, run_kind

    run, out, settings = Path(run), Path(out), settings or AdaptSettings()
    if run_kind(run, trained=True) != "recognizer":
        raise RunError(f"{run} is a spotter run; adapt takes a recognizer run")
    _check_out(run, out)
    paths, pictures = load_images(find_images(images), log)
    if data is None:
        data, default_val = source_data(run)
    else:
        default_val = _run_val(run)
    val = val or default_val
    data = [str(d) for d in data]
    weights = list(settings.weights or [1.0] * len(data))
    if len(weights) != len(data):
        raise ValueError(f"give one weight per synthetic dataset ({len(data)}), got {len(weights)}")
    if grammar == "run":
        grammar = run_grammar(run)
    out.mkdir(parents=True, exist_ok=True)
    record = {"mode": "self-training", "source": str(run), "source_weights": which, "images": str(images), "lines": len(paths),
              "data": data, "val": str(val) if val else None,
              "grammar": list(grammar.sources) if grammar is not None else None,
              "settings": settings.model_dump(), "rounds": [], "trained_rounds": 0}
    current, previous = run, None
    for number in range(1, settings.rounds + 1):
        started = time.perf_counter()
        model, config = load_recognizer(current, which if current == run else "best")
        readings = read_lines(model, config, pictures, beam_width=settings.beam_width, grammar=grammar)
        selection = select_pseudo_labels(readings, settings.threshold, grammar, config.sequence_length // 2)
        folder = out / "rounds" / f"round-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        _write_readings(folder / "readings.csv", paths, readings, selection)
        entry = {"round": number, "read_with": str(current), **reading_summary(readings, selection, previous)}
        record["rounds"].append(entry)
        kept = selection.kept
        dropped = ", ".join(f"{n} {reason}" for reason, n in entry["dropped"].items()) or "none dropped"
        mean = entry["confidence_kept"]["mean"]
        log(f"round {number}: kept {len(kept)} of {len(readings)} lines at confidence >= {settings.threshold:g}"
            + (f" (mean {mean:.3f})" if mean is not None else "") + f"; {dropped}")
        if not kept:
            entry["steps"] = 0
            record["stopped"] = (f"round {number} kept no line at confidence >= {settings.threshold:g}: nothing "
                                 f"to train on")
            log(record["stopped"])
            dump_json(out / "adapt.json", record)
            break
        _write_line_folder(folder / "pseudo", paths, readings, kept)
        train_settings = TrainSettings(epochs=1, steps_per_epoch=settings.steps, batch_size=settings.batch_size,
                                       learning_rate=settings.learning_rate, schedule="cosine",
                                       seed=settings.seed + number, augment=settings.augment,
                                       weights=weights + [settings.pseudo_weight], patience=1, val_lines=256)
        del model
        metrics = train_recognizer(data + [str(folder / "pseudo")], folder, settings=train_settings, val=val,
                                   log=log, init=current, init_which=which if current == run else "best")
        entry["steps"] = settings.steps
        entry["seconds"] = round(time.perf_counter() - started, 1)
        entry["validation"] = {k: v for k, v in metrics["history"][-1].items() if k.startswith("val_")}
        entry["validation_on"] = str(val) if val else "training lines (synthetic and pseudo-labelled)"
        record["trained_rounds"] = number
        current, previous = folder, readings
        dump_json(out / "adapt.json", record)
    if record["trained_rounds"]:
        model, config = load_recognizer(current)
        readings = read_lines(model, config, pictures, beam_width=settings.beam_width, grammar=grammar)
        selection = select_pseudo_labels(readings, settings.threshold, grammar, config.sequence_length // 2)
        record["final"] = {"read_with": str(current), **reading_summary(readings, selection, previous)}
        _copy_run(current, out)
        log(f"after {record['trained_rounds']} round(s): {record['final']['kept']} of {len(readings)} lines at "
            f"confidence >= {settings.threshold:g}; the adapted run is {out}")
    dump_json(out / "adapt.json", record)
    return record


def _all_layers(layer) -> list:
    found = [layer]
    for child in getattr(layer, "layers", []):
        found += _all_layers(child)
    return found


def adapt_batchnorm(run: str | Path, images: str | Path, out: str | Path, batch_size: int = 64, grammar="run",
                    which: str = "best", log: Callable[[str], None] = print) -> dict:
    """Re-estimate only the BatchNormalization moving statistics of recognizer `run` on the images in folder
    `images` (every other weight unchanged) and save the result as the run `out`; returns adapt.json's content.

    The statistics are the average over all images of the batch statistics in a forward pass in training mode
    (dropout off), the way AdaBN does. grammar ("run", None or a Grammar) only shapes the confidence recorded.
    """
    import tensorflow as tf

    from .grammar import run_grammar
    from ..core.portable import preprocess
    from .recognizer import read_lines
    from .runs import RunError, load_recognizer, run_kind

    run, out = Path(run), Path(out)
    if run_kind(run, trained=True) != "recognizer":
        raise RunError(f"{run} is a spotter run; adapt takes a recognizer run")
    _check_out(run, out)
    paths, pictures = load_images(find_images(images), log)
    if grammar == "run":
        grammar = run_grammar(run)
    model, config = load_recognizer(run, which)
    before = read_lines(model, config, pictures, grammar=grammar)
    layers = _all_layers(model)
    norms = [la for la in layers if isinstance(la, tf.keras.layers.BatchNormalization)]
    if not norms:
        raise ValueError(f"the {config.backbone} backbone of {run} has no batch normalization to adapt")
    dropouts = {la: la.rate for la in layers if isinstance(la, tf.keras.layers.Dropout)}
    momenta = {la: la.momentum for la in norms}
    seen = 0
    try:
        for la in dropouts:
            la.rate = 0.0
        for start in range(0, len(pictures), batch_size):
            batch = np.stack([preprocess(im, config.height, config.width, config.keep_ratio) for im in pictures[start:start + batch_size]])
            for la in norms:  # moving = moving * m + batch * (1 - m): a running mean over all images so far
                la.momentum = seen / (seen + len(batch))
            model(batch, training=True)
            seen += len(batch)
    finally:
        for la, rate in dropouts.items():
            la.rate = rate
        for la, momentum in momenta.items():
            la.momentum = momentum
    after = read_lines(model, config, pictures, grammar=grammar)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "training.json", "metrics.json"):
        if (run / name).exists():
            shutil.copy2(run / name, out / name)
    model.save_weights(str(out / "best.weights.h5"))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(out / "checkpoints"), max_to_keep=1).save()
    record = {"mode": "batchnorm", "source": str(run), "source_weights": which, "images": str(images), "lines": len(paths),
              "layers": len(norms), "grammar": list(grammar.sources) if grammar is not None else None,
              "batch_size": batch_size,
              "before": {"confidence": _confidence_stats([r.confidence for r in before]),
                         "rejected": sum(r.rejected for r in before)},
              "after": {"confidence": _confidence_stats([r.confidence for r in after]),
                        "rejected": sum(r.rejected for r in after),
                        "changed": sum(a.text != b.text for a, b in zip(before, after))}}
    dump_json(out / "adapt.json", record)
    log(f"re-estimated {len(norms)} batch-norm layers on {len(paths)} lines: mean confidence "
        f"{record['before']['confidence']['mean']:.3f} -> {record['after']['confidence']['mean']:.3f}; "
        f"the adapted run is {out}")
    return record
