"""Train the end-to-end spotter from page shards into a run directory that can be resumed.

The run directory is laid out as the recognizer's (fit_recognizer): config.json (model "spotter",
charset included), training.json (settings, the data's recipe hashes), checkpoints/, best.weights.h5
(+ best.reader.weights.h5), logs/ and metrics.json. Losses, summed: dice on the score map, IoU loss
(-log IoU, EAST) on the geometry of text cells, CTC on the recognition of ground-truth boxes.
Validation is end to end (detect, then read the detections) and early stopping follows its F1.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import lines as line_data
from . import loop
from .loop import TrainSettings
from .spotter import STRIDE, Spotter, SpotterConfig, auto_roi_width, encode_targets, page_boxes, spot_batch
from .text import Charset


def resized_pages(outs: Sequence[str | Path], height: int, width: int, weights: Sequence[float] | None = None,
                  shuffle: int = 64, seed: int = 0, repeat: bool = True, keep_ratio: bool = False):
    """Pages of several datasets, mixed by `weights`, each {"image" [height, width, 1] uint8, "quads" [L, 4, 2] in
    page pixels, "texts" [L], "scale" (x, y): page pixels to input pixels}; the page stream both page-level trainers
    (spotter, oriented detector) read. Stretched to the input, or with `keep_ratio` letterboxed as the oriented
    detector reads frames (portable.letterbox: scaled to fit, the rest filled with the page's mean gray); a page of
    the input's own aspect ratio is the same either way."""
    import tensorflow as tf

    from ..store.readers import tf_dataset

    def resize(page):
        size = tf.cast(tf.shape(page["image"])[:2], tf.float32)
        if not keep_ratio:
            image = tf.image.resize(page["image"], (height, width), antialias=True)
            scale = tf.stack([width / size[1], height / size[0]])
        else:
            fit = tf.minimum(width / size[1], height / size[0])
            h = tf.clip_by_value(tf.round(size[0] * fit), 1.0, float(height))
            w = tf.clip_by_value(tf.round(size[1] * fit), 1.0, float(width))
            fitted = tf.image.resize(page["image"], tf.cast(tf.stack([h, w]), tf.int32), antialias=True)
            mean = tf.round(tf.reduce_mean(fitted))
            image = tf.pad(fitted - mean, [[0, height - tf.cast(h, tf.int32)], [0, width - tf.cast(w, tf.int32)],
                                           [0, 0]]) + mean
            image = tf.ensure_shape(image, [height, width, 1])
            scale = tf.stack([w / size[1], h / size[0]])
        return {"image": tf.cast(tf.round(image), tf.uint8), "quads": page["line_quads"], "texts": page["texts"],
                "scale": scale}

    streams = [tf_dataset(out, kind="images", shuffle_shards=shuffle > 0, seed=seed + k).map(
        resize, num_parallel_calls=tf.data.AUTOTUNE) for k, out in enumerate(outs)]
    return line_data.mix_streams(streams, weights, shuffle, seed, repeat)


def dice_loss(score, truth):
    """1 - the Dice coefficient of a predicted score map and its 0/1 target (EAST/FOTS's score loss)."""
    import tensorflow as tf

    return 1.0 - 2.0 * tf.reduce_sum(score * truth) / (tf.reduce_sum(score) + tf.reduce_sum(truth) + 1e-6)


def distance_iou_loss(geometry, truth, mask):
    """Mean over the masked cells of -log((I + 1) / (U + 1)) of the boxes given as distances [..., 4] (top, left,
    bottom, right) from each cell (EAST's IoU loss; for a rotated box, the distances in its own frame)."""
    import tensorflow as tf

    t, l, b, r = tf.unstack(geometry, axis=-1)
    tt, tl, tb, tr = tf.unstack(truth, axis=-1)
    intersection = (tf.minimum(l, tl) + tf.minimum(r, tr)) * (tf.minimum(t, tt) + tf.minimum(b, tb))
    union = (t + b) * (l + r) + (tt + tb) * (tl + tr) - intersection
    iou_loss = -tf.math.log((intersection + 1.0) / (union + 1.0))
    return tf.reduce_sum(iou_loss * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def page_batches(outs: Sequence[str | Path], config: SpotterConfig, batch_size: int,
                 weights: Sequence[float] | None = None, shuffle: int = 64, seed: int = 0, repeat: bool = True):
    """Batches of {"image" [B, H, W, 1] float32 0-255, "score" [B, h, w, 1], "geometry" [B, h, w, 4],
    "boxes" [B, L, 4] (input pixels), "labels" [B, L, S] int32, "length" [B, L], "count" [B], "texts" [B, L]}.

    L and S are padded per batch; `count` says how many boxes of each page are real (at most
    config.max_boxes: the detection targets keep every line). Several datasets mix by `weights`.
    """
    import tensorflow as tf

    charset = Charset(config.charset)
    index = {c: i for i, c in enumerate(charset.chars)}
    pages = resized_pages(outs, config.height, config.width, weights, shuffle, seed, repeat)

    def targets(quads, scale, texts):
        boxes = page_boxes(quads, float(scale[0]), float(scale[1]))
        score, geometry = encode_targets(boxes, config)
        keep = boxes[: config.max_boxes]
        codes = []
        for text in texts[: config.max_boxes]:
            text = text.decode("utf-8")
            missing = sorted({c for c in text if c not in index})
            if missing:
                raise ValueError(f"text {text!r} has characters outside the charset: {''.join(missing)!r}")
            codes.append([index[c] for c in text])
        labels = np.zeros((len(codes), max([len(c) for c in codes] + [1])), np.int32)
        for k, c in enumerate(codes):
            labels[k, : len(c)] = c
        return score, geometry, keep, labels, np.array([len(c) for c in codes], np.int32)

    def prepare(page):
        score, geometry, boxes, labels, length = tf.numpy_function(
            targets, [page["quads"], page["scale"], page["texts"]],
            [tf.float32, tf.float32, tf.float32, tf.int32, tf.int32], stateful=False)
        rows, cols = config.map_shape
        return {"image": tf.cast(page["image"], tf.float32), "score": tf.ensure_shape(score, [rows, cols, 1]),
                "geometry": tf.ensure_shape(geometry, [rows, cols, 4]), "boxes": tf.ensure_shape(boxes, [None, 4]),
                "labels": tf.ensure_shape(labels, [None, None]), "length": tf.ensure_shape(length, [None]),
                "count": tf.shape(length)[0], "texts": page["texts"][: config.max_boxes]}

    rows, cols = config.map_shape
    return pages.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).padded_batch(batch_size, padded_shapes={
        "image": [config.height, config.width, 1], "score": [rows, cols, 1], "geometry": [rows, cols, 4],
        "boxes": [None, 4], "labels": [None, None], "length": [None], "count": [], "texts": [None]}) \
        .prefetch(tf.data.AUTOTUNE)


def spotter_losses(model: Spotter, batch, training: bool = True, jitter_rng=None) -> dict:
    """{"score": dice, "geometry": IoU loss, "ctc": mean CTC per line, "total"} for one batch.

    With `jitter_rng` (a tf.random.Generator) and training, the boxes the reader crops are jittered.
    """
    import tensorflow as tf

    features, score, geometry = model.detector(batch["image"], training=training)
    dice = dice_loss(score, batch["score"])
    geometry_loss = distance_iou_loss(geometry, batch["geometry"], tf.cast(batch["score"][..., 0] > 0.5, tf.float32))

    lines = tf.sequence_mask(batch["count"], tf.shape(batch["boxes"])[1])
    boxes = tf.boolean_mask(batch["boxes"], lines)
    box_index = tf.cast(tf.where(lines)[:, 0], tf.int32)
    if training and jitter_rng is not None and model.config.box_jitter > 0:
        height = boxes[:, 3:4] - boxes[:, 1:2]
        boxes = boxes + jitter_rng.uniform(tf.shape(boxes), -1.0, 1.0) * (model.config.box_jitter * height)
    labels = tf.boolean_mask(batch["labels"], lines)
    length = tf.boolean_mask(batch["length"], lines)
    logits = model.read(features, boxes, box_index, training=training)
    n = tf.shape(logits)[0]
    per_line = tf.nn.ctc_loss(labels=labels, logits=logits, label_length=length,
                              logit_length=tf.fill([n], model.config.roi_width), logits_time_major=False,
                              blank_index=-1)
    ctc = tf.reduce_sum(per_line) / tf.maximum(tf.cast(n, tf.float32), 1.0)
    return {"score": dice, "geometry": geometry_loss, "ctc": ctc, "total": dice + geometry_loss + ctc}


def validate(model: Spotter, batches, limit: int | None = None):
    """End-to-end SpottingScore over batches of page_batches (boxes compared in input pixels)."""
    from .evaluate_spotter import PageSpots, score_pages

    pages = []
    for batch in batches:
        found = spot_batch(model, batch["image"])
        for i, spots in enumerate(found):
            n = int(batch["count"][i])
            pages.append(PageSpots(str(len(pages)), batch["boxes"][i, :n].numpy(),
                                   [t.decode("utf-8") for t in batch["texts"][i, :n].numpy()],
                                   np.array([s[0] for s in spots], np.float32).reshape(-1, 4),
                                   [s[1] for s in spots], [s[2] for s in spots]))
        if limit is not None and len(pages) >= limit:
            break
    return score_pages(pages[:limit])


def train_spotter(data: Sequence[str | Path], run: str | Path, config: SpotterConfig | None = None,
                  settings: TrainSettings | None = None, val: str | Path | None = None, resume: bool = False,
                  log: Callable[[str], None] = print) -> dict:
    """Train (or, with resume, continue) a spotter; returns the metrics written to RUN/metrics.json.

    settings.val_lines is read as the number of validation pages when there is no --val set.
    """
    import tensorflow as tf

    run, settings = Path(run), settings or TrainSettings()
    data = [Path(d) for d in data]

    def new_config():
        charset = line_data.dataset_charset(data + ([Path(val)] if val else []))
        fresh = SpotterConfig(**{**(config or SpotterConfig()).model_dump(), "charset": charset})
        if fresh.roi_width <= 0:
            fresh = SpotterConfig(**{**fresh.model_dump(), "roi_width": auto_roi_width(line_data.max_line_length(data))})
        return fresh

    config, settings, val = loop.start_run(run, settings, val, resume, SpotterConfig.load, new_config)
    config.validate(line_data.max_line_length(data))
    steps_per_epoch = loop.write_page_run(run, "spotter", config, data, val, settings)

    tf.keras.utils.set_random_seed(settings.seed)
    strategy = loop.strategy()
    train_batches = page_batches(data, config, settings.batch_size, weights=settings.weights, seed=settings.seed)
    eval_batch = max(1, min(8, settings.batch_size))
    if val:
        val_batches = page_batches([val], config, eval_batch, shuffle=0, repeat=False)
    else:
        val_batches = page_batches(data, config, eval_batch, shuffle=0, repeat=False)
        log("no --val given: validation is measured on training pages")
    with strategy.scope(), loop.precision(settings.mixed_precision):
        model = Spotter(config)
        jitter_rng = tf.random.Generator.from_seed(settings.seed)  # checkpointed: a resume continues its stream
    make_step = loop.loss_dict_step(strategy, model, lambda b: spotter_losses(model, b, jitter_rng=jitter_rng))

    def validation() -> loop.Validation:
        score = validate(model, val_batches, settings.val_lines)
        # detection F1 breaks ties while it reads nothing yet
        return loop.Validation(score.as_dict(), (score.e2e_f1, score.f1),
                               f"detection F1 {score.f1:.3f}, end-to-end F1 {score.e2e_f1:.3f}, string acc "
                               f"{score.string_accuracy:.3f} ({score.pages} pages)")

    fields = ("image", "score", "geometry", "boxes", "labels", "length", "count")
    trainer = loop.Trainer(model, {**model.checkpoint_items(), "jitter_rng": jitter_rng}, make_step,
                           train_batches.map(lambda b: {k: b[k] for k in fields}), validation, "pages",
                           rank_names=("e2e_f1", "f1"))
    return loop.fit(run, trainer, settings, steps_per_epoch, strategy, resume, log)


__all__ = ["page_batches", "spotter_losses", "train_spotter", "validate", "STRIDE"]
