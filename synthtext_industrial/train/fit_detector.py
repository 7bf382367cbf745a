"""Train the oriented detector (train/detector.py) from page shards into a run directory that can be resumed.

The run directory is laid out as the spotter's (fit_spotter): config.json (model "detector"), training.json,
checkpoints/, best.weights.h5, logs/ and metrics.json. Losses, summed: dice on the score map, IoU loss (-log IoU,
EAST) on the rotated boxes' distances of text cells, and angle_weight x |angle error| (radians) on their reading
direction (EAST/FOTS's RBOX loss, with the error itself in place of 1 - cos(error), which vanishes at the few
degrees that codes are turned). Validation is detection at polygon IoU 0.5 against the lines' quads
(frames.match_quads, the rule frames are scored by) and early stopping follows its F1.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import loop
from .detector import Detector, DetectorConfig, detect_batch, encode_targets
from .fit_spotter import dice_loss, distance_iou_loss, resized_pages
from .frames import match_quads, prf
from .loop import TrainSettings


def page_batches(outs: Sequence[str | Path], config: DetectorConfig, batch_size: int,
                 weights: Sequence[float] | None = None, shuffle: int = 64, seed: int = 0, repeat: bool = True):
    """Batches of {"image" [B, H, W, 1] float32 0-255, "score" [B, h, w, 1], "geometry" [B, h, w, 4], "direction"
    [B, h, w, 2], "quads" [B, L, 4, 2] (the lines' quads in input pixels, L padded per batch), "count" [B]}."""
    import tensorflow as tf

    pages = resized_pages(outs, config.height, config.width, weights, shuffle, seed, repeat, keep_ratio=True)

    def targets(quads, scale):
        quads = np.asarray(quads, np.float32).reshape(-1, 4, 2) * np.asarray(scale, np.float32)
        return (*encode_targets(quads, config), quads.astype(np.float32))

    def prepare(page):
        score, geometry, direction, quads = tf.numpy_function(
            targets, [page["quads"], page["scale"]], [tf.float32, tf.float32, tf.float32, tf.float32],
            stateful=False)
        rows, cols = config.map_shape
        return {"image": tf.cast(page["image"], tf.float32), "score": tf.ensure_shape(score, [rows, cols, 1]),
                "geometry": tf.ensure_shape(geometry, [rows, cols, 4]),
                "direction": tf.ensure_shape(direction, [rows, cols, 2]),
                "quads": tf.ensure_shape(quads, [None, 4, 2]), "count": tf.shape(quads)[0]}

    rows, cols = config.map_shape
    return pages.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).padded_batch(batch_size, padded_shapes={
        "image": [config.height, config.width, 1], "score": [rows, cols, 1], "geometry": [rows, cols, 4],
        "direction": [rows, cols, 2], "quads": [None, 4, 2], "count": []}).prefetch(tf.data.AUTOTUNE)


def detector_losses(model: Detector, batch, training: bool = True) -> dict:
    """{"score": dice, "geometry": IoU loss, "angle": mean |angle error| (radians) of text cells, "total"}."""
    import tensorflow as tf

    score, geometry, direction = model(batch["image"], training=training)
    mask = tf.cast(batch["score"][..., 0] > 0.5, tf.float32)
    dice = dice_loss(score, batch["score"])
    geometry_loss = distance_iou_loss(geometry, batch["geometry"], mask)
    # The angle error itself, in radians. EAST's 1 - cos(error) is about error^2 / 2: for the few degrees that
    # codes are turned it is ~0.001, so its pull vanishes and the head stays level (measured: every box came out
    # within 0.2 degrees of level on pages turned up to 5 degrees, and lines turned over 3 degrees read 4%).
    # cells outside the text have no direction (0, 0), where atan2's gradient is 0/0: give them (1, 0)
    target = tf.where(mask[..., None] > 0, batch["direction"], tf.constant([1.0, 0.0]))
    cross = direction[..., 0] * target[..., 1] - direction[..., 1] * target[..., 0]
    dot = tf.reduce_sum(direction * target, axis=-1)  # both unit vectors
    error = tf.abs(tf.atan2(cross, dot))
    angle = tf.reduce_sum(error * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
    total = dice + geometry_loss + model.config.angle_weight * angle
    return {"score": dice, "geometry": geometry_loss, "angle": angle, "total": total}


def validate(model: Detector, batches, limit: int | None = None) -> dict:
    """Detection {"precision", "recall", "f1", "pages", "lines", "detections"} over batches of page_batches, quads
    compared in input pixels at polygon IoU 0.5."""
    pages = lines = detections = matched = 0
    for batch in batches:
        for i, (quads, scores) in enumerate(detect_batch(model, batch["image"])):
            truth = batch["quads"][i, :int(batch["count"][i])].numpy()
            pairs, _ = match_quads(quads, scores, truth)
            pages, lines, detections, matched = pages + 1, lines + len(truth), detections + len(quads), \
                matched + len(pairs)
            if limit is not None and pages >= limit:
                break
        if limit is not None and pages >= limit:
            break
    precision, recall, f1 = prf(matched, detections, lines)
    return {"precision": precision, "recall": recall, "f1": f1, "pages": pages, "lines": lines,
            "detections": detections}


def train_detector(data: Sequence[str | Path], run: str | Path, config: DetectorConfig | None = None,
                   settings: TrainSettings | None = None, val: str | Path | None = None, resume: bool = False,
                   log: Callable[[str], None] = print) -> dict:
    """Train (or, with resume, continue) an oriented detector; returns the metrics written to RUN/metrics.json.

    settings.val_lines is read as the number of validation pages.
    """
    import tensorflow as tf

    run, settings = Path(run), settings or TrainSettings()
    data = [Path(d) for d in data]
    config, settings, val = loop.start_run(run, settings, val, resume, DetectorConfig.load,
                                           lambda: config or DetectorConfig())
    config.validate()
    steps_per_epoch = loop.write_page_run(run, "detector", config, data, val, settings)

    tf.keras.utils.set_random_seed(settings.seed)
    strategy = loop.strategy()
    train_batches = page_batches(data, config, settings.batch_size, weights=settings.weights, seed=settings.seed)
    eval_batch = max(1, min(8, settings.batch_size))
    val_batches = page_batches([val] if val else data, config, eval_batch, shuffle=0, repeat=False)
    if not val:
        log("no --val given: validation is measured on training pages")
    with strategy.scope(), loop.precision(settings.mixed_precision):
        model = Detector(config)
    make_step = loop.loss_dict_step(strategy, model, lambda b: detector_losses(model, b))

    def validation() -> loop.Validation:
        score = validate(model, val_batches, settings.val_lines)
        return loop.Validation(score, (score["f1"], score["recall"]),
                               f"detection P {score['precision']:.3f} R {score['recall']:.3f} F1 {score['f1']:.3f} "
                               f"({score['pages']} pages)")

    fields = ("image", "score", "geometry", "direction")
    trainer = loop.Trainer(model, model.checkpoint_items(), make_step,
                           train_batches.map(lambda b: {k: b[k] for k in fields}), validation, "pages",
                           rank_names=("f1", "recall"))
    return loop.fit(run, trainer, settings, steps_per_epoch, strategy, resume, log)


__all__ = ["page_batches", "detector_losses", "train_detector", "validate"]
