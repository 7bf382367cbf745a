"""Training runs on disk: which model a run folder holds, and loading its trained weights.

A run folder (written by `train`, see loop.py) holds config.json (`"model": "recognizer"`, `"spotter"` or
`"detector"`),
training.json, checkpoints/, best.weights.h5, logs/ and metrics.json. `MODELS` lists the kinds; a new
model adds its name here, its config/builder module, its fit module and a loader below.
"""
from __future__ import annotations

import json
from pathlib import Path

MODELS = ("recognizer", "spotter", "detector")


class RunError(ValueError):
    """A folder that is not a (trained) run written by `train`, worded for the person who named it."""


def run_kind(run: str | Path, trained: bool = False, readers: bool = False) -> str:
    """'recognizer', 'spotter' or 'detector', from the run's config.json; with `trained`, the run must also have weights.
    With `readers`, a reader run (reader.json, train/reader.py: a detector and a recognizer run) is 'reader'.

    RunError when the folder is not a run written by `train` (no or unreadable config.json, another model),
    or, with `trained`, holds no weights yet.
    """
    run = Path(run)
    path = run / "config.json"
    if (run / "reader.json").is_file() and not path.exists():
        if readers:
            return "reader"
        raise RunError(f"{run} is a reader (reader.json: a detector and a recognizer run), not a training run; "
                       f"give its detector or recognizer run here")
    if not path.exists():
        raise RunError(f"{run} has no config.json: not a training run")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path} is unreadable ({exc}): not a training run written by `train`") from None
    kind = config.get("model", "recognizer") if isinstance(config, dict) else None
    if kind not in MODELS:
        raise RunError(f"{path} does not describe a {' or '.join(MODELS)} run written by `train`")
    if trained and not (run / "best.weights.h5").exists() and not (run / "checkpoints").exists():
        raise RunError(f"{run} has no trained weights yet")
    return kind


def load_recognizer(run: str | Path, which: str = "best"):
    """(model, config) of a recognizer run: the best epoch's weights, or the latest checkpoint with which='last'."""
    from .recognizer import RecognizerConfig, build_recognizer

    run = Path(run)
    config = RecognizerConfig.load(run / "config.json")
    model = build_recognizer(config)
    load_weights(model, run, which)
    return model, config


def load_weights(model, run: str | Path, which: str = "best") -> None:
    """Load a recognizer run's weights into a model built from its config: the best epoch's, or the latest
    checkpoint with which='last' (or when there is no best.weights.h5)."""
    import tensorflow as tf

    run = Path(run)
    if which == "best" and (run / "best.weights.h5").exists():
        model.load_weights(str(run / "best.weights.h5"))
        return
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    if latest is None:
        raise FileNotFoundError(f"{run} has no trained weights yet")
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()


def _restore_page_model(model, run: Path, which: str) -> None:
    """Load a spotter's or detector's weights: best.weights.h5, or the latest checkpoint with which='last'."""
    import tensorflow as tf

    if which == "best" and (run / "best.weights.h5").exists():
        model.load_weights(run / "best.weights.h5")
        return
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    if latest is None:
        raise FileNotFoundError(f"{run} has no trained weights yet")
    tf.train.Checkpoint(**model.checkpoint_items()).restore(latest).expect_partial()


def load_detector(run: str | Path, which: str = "best", **overrides):
    """The run's oriented detector (train/detector.py), as load_spotter loads a spotter; `overrides` change config
    fields that need no other weights (height, width: it is fully convolutional; score_threshold, nms_iou)."""
    from .detector import Detector, DetectorConfig

    run = Path(run)
    config = DetectorConfig.load(run / "config.json")
    if overrides:
        config = DetectorConfig(**{**config.model_dump(), **overrides})
    model = Detector(config)
    _restore_page_model(model, run, which)
    return model


def load_spotter(run: str | Path, which: str = "best", **overrides):
    """The run's spotter: the best epoch's weights, or the latest checkpoint with which='last'. `overrides` change
    config fields that need no other weights (e.g. height and width: the network is convolutional up to the RoI
    crop; score_threshold)."""
    from .spotter import Spotter, SpotterConfig

    run = Path(run)
    config = SpotterConfig.load(run / "config.json")
    if overrides:
        config = SpotterConfig(**{**config.model_dump(), **overrides})
    model = Spotter(config)
    _restore_page_model(model, run, which)
    return model
