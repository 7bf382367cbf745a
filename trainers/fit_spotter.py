"""Train the end-to-end spotter from page shards into a run directory that can be resumed.

The run directory is laid out as the recognizer's (fit_recognizer): config.json (model "spotter",
charset included), training.json (settings, the data's recipe hashes), checkpoints/, best.weights.h5
(+ best.reader.weights.h5), logs/ and metrics.json. Losses, summed: dice on the score map, IoU loss
(-log IoU, EAST) on the geometry of text cells, CTC on the recognition of ground-truth boxes.
Validation is end to end (detect, then read the detections) and early stopping follows its F1.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import lines as line_data
from .fit_recognizer import TrainSettings, _strategy
from .spotter import STRIDE, Spotter, SpotterConfig, auto_roi_width, encode_targets, page_boxes, spot_batch
from .text import Charset


def page_batches(outs: Sequence[str | Path], config: SpotterConfig, batch_size: int,
                 weights: Sequence[float] | None = None, shuffle: int = 64, seed: int = 0, repeat: bool = True):
    """Batches of {"image" [B, H, W, 1] float32 0-255, "score" [B, h, w, 1], "geometry" [B, h, w, 4],
    "boxes" [B, L, 4] (input pixels), "labels" [B, L, S] int32, "length" [B, L], "count" [B], "texts" [B, L]}.

    L and S are padded per batch; `count` says how many boxes of each page are real (at most
    config.max_boxes: the detection targets keep every line). Several datasets mix by `weights`.
    """
    import tensorflow as tf

    from synthtext_industrial.data import tf_dataset

    charset = Charset(config.charset)
    index = {c: i for i, c in enumerate(charset.chars)}

    def resize(page):
        size = tf.cast(tf.shape(page["image"])[:2], tf.float32)
        image = tf.image.resize(page["image"], (config.height, config.width), antialias=True)
        return {"image": tf.cast(tf.round(image), tf.uint8), "quads": page["line_quads"], "texts": page["texts"],
                "scale": tf.stack([config.width / size[1], config.height / size[0]])}

    streams = [tf_dataset(out, kind="images", shuffle_shards=shuffle > 0, seed=seed + k).map(
        resize, num_parallel_calls=tf.data.AUTOTUNE) for k, out in enumerate(outs)]
    if shuffle:
        streams = [s.shuffle(shuffle, seed=seed + k) for k, s in enumerate(streams)]
    if len(streams) > 1:
        streams = [s.repeat() for s in streams]
        pages = tf.data.Dataset.sample_from_datasets(streams, weights=list(weights) if weights else None, seed=seed)
    else:
        pages = streams[0].repeat() if repeat else streams[0]

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


def spotter_losses(model: Spotter, batch, training: bool = True) -> dict:
    """{"score": dice, "geometry": IoU loss, "ctc": mean CTC per line, "total"} for one batch."""
    import tensorflow as tf

    features, score, geometry = model.detector(batch["image"], training=training)
    truth, mask = batch["score"], tf.cast(batch["score"] > 0.5, tf.float32)
    dice = 1.0 - 2.0 * tf.reduce_sum(score * truth) / (tf.reduce_sum(score) + tf.reduce_sum(truth) + 1e-6)
    t, l, b, r = tf.unstack(geometry, axis=-1)
    tt, tl, tb, tr = tf.unstack(batch["geometry"], axis=-1)
    intersection = (tf.minimum(l, tl) + tf.minimum(r, tr)) * (tf.minimum(t, tt) + tf.minimum(b, tb))
    union = (t + b) * (l + r) + (tt + tb) * (tl + tr) - intersection
    iou_loss = -tf.math.log((intersection + 1.0) / (union + 1.0))
    geometry_loss = tf.reduce_sum(iou_loss * mask[..., 0]) / tf.maximum(tf.reduce_sum(mask), 1.0)

    lines = tf.sequence_mask(batch["count"], tf.shape(batch["boxes"])[1])
    boxes = tf.boolean_mask(batch["boxes"], lines)
    box_index = tf.cast(tf.where(lines)[:, 0], tf.int32)
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
    if resume:
        if not (run / "config.json").exists():
            raise FileNotFoundError(f"{run} has no config.json: nothing to resume")
        config = SpotterConfig.load(run / "config.json")
        saved = json.loads((run / "training.json").read_text())
        settings = TrainSettings(**{**saved["settings"], "epochs": settings.epochs,
                                    "max_seconds": settings.max_seconds})
        val = val or saved.get("val")
    else:
        config = config or SpotterConfig()
        if (run / "checkpoints").exists():
            raise FileExistsError(f"{run} already holds a training run; pass --resume to continue it or choose "
                                  f"another --out")
        charset = line_data.dataset_charset(data + ([Path(val)] if val else []))
        config = SpotterConfig(**{**config.__dict__, "charset": charset})
        if config.roi_width <= 0:
            config = SpotterConfig(**{**config.__dict__, "roi_width": auto_roi_width(line_data.max_line_length(data))})
    config.validate(line_data.max_line_length(data))
    run.mkdir(parents=True, exist_ok=True)
    config.save(run / "config.json")
    manifests = [line_data.manifest(d) for d in data]
    page_count = sum(m["counts"]["images"] for m in manifests)
    steps_per_epoch = settings.steps_per_epoch or max(1, math.ceil(page_count / settings.batch_size))
    line_data.dump_json(run / "training.json", {
        "model": "spotter",
        "data": [{"path": str(d), "recipe_sha256": m["recipe_sha256"], "seed": m["seed"], "n": m["n"],
                  "pages": m["counts"]["images"], "lines": m["counts"]["lines"]} for d, m in zip(data, manifests)],
        "val": str(val) if val else None,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.__dict__.items()},
    })

    tf.keras.utils.set_random_seed(settings.seed)
    strategy = _strategy()
    train_batches = page_batches(data, config, settings.batch_size, weights=settings.weights, seed=settings.seed)
    val_pages = settings.val_lines
    eval_batch = max(1, min(8, settings.batch_size))
    if val:
        val_batches = page_batches([val], config, eval_batch, shuffle=0, repeat=False)
    else:
        val_batches = page_batches(data, config, eval_batch, shuffle=0, repeat=False)
        log("no --val given: validation is measured on training pages")

    with strategy.scope():
        model = Spotter(config)
        optimizer = tf.keras.optimizers.Adam(settings.learning_rate, clipnorm=5.0)
        optimizer.build(model.trainable_variables)  # slots exist before a restore, so --resume restores them
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = tf.train.Checkpoint(**model.checkpoint_items(), optimizer=optimizer, step=step,
                                         epoch=epoch_var)
    manager = tf.train.CheckpointManager(checkpoint, str(run / "checkpoints"), max_to_keep=2)
    history: list[dict] = []
    best = {"epoch": -1, "e2e_f1": -1.0, "f1": -1.0}
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        previous = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
        history = [h for h in previous.get("history", []) if h["epoch"] < int(epoch_var.numpy())]
        best = previous.get("best", best)
        log(f"resuming {run} at epoch {int(epoch_var.numpy())}, step {int(step.numpy())}")

    replicas = strategy.num_replicas_in_sync

    @tf.function
    def train_step(batch):
        def replica(b):
            with tf.GradientTape() as tape:
                losses = spotter_losses(model, b)
                scaled = losses["total"] / replicas
            variables = model.trainable_variables
            grads = tape.gradient(scaled, variables)
            optimizer.apply_gradients(zip(grads, variables))
            return {k: v / replicas for k, v in losses.items()}

        losses = strategy.run(replica, args=(batch,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in losses.items()}

    writer = tf.summary.create_file_writer(str(run / "logs"))
    done_in_epoch = int(step.numpy()) - int(epoch_var.numpy()) * steps_per_epoch
    fields = ("image", "score", "geometry", "boxes", "labels", "length", "count")
    stream = iter(strategy.experimental_distribute_dataset(
        train_batches.skip(int(step.numpy())).map(lambda b: {k: b[k] for k in fields})))
    started = time.perf_counter()
    stale = len([h for h in history if h["epoch"] > best["epoch"]]) if best["epoch"] >= 0 else 0
    while int(epoch_var.numpy()) < settings.epochs:
        epoch = int(epoch_var.numpy())
        t0, losses, pages_seen = time.perf_counter(), [], 0
        for _ in range(max(done_in_epoch, 0), steps_per_epoch):
            losses.append({k: float(v) for k, v in train_step(next(stream)).items()})
            step.assign_add(1)
            pages_seen += settings.batch_size
            if int(step.numpy()) % 200 == 0:
                manager.save(checkpoint_number=int(step.numpy()))
        done_in_epoch = 0
        seconds = time.perf_counter() - t0
        score = validate(model, val_batches, val_pages)
        mean = {k: float(np.mean([l[k] for l in losses])) for k in losses[0]} if losses else {}
        entry = {"epoch": epoch, "step": int(step.numpy()), "loss": mean.get("total"),
                 **{f"loss_{k}": v for k, v in mean.items() if k != "total"},
                 **{f"val_{k}": v for k, v in score.as_dict().items()},
                 "pages_per_s": pages_seen / seconds if seconds else 0.0}
        history.append(entry)
        with writer.as_default():
            for key, value in entry.items():
                if key not in ("epoch", "step") and value is not None:
                    tf.summary.scalar(key, value, step=int(step.numpy()))
        if (score.e2e_f1, score.f1) > (best["e2e_f1"], best.get("f1", -1.0)):  # detection breaks ties (no reading yet)
            best = {"epoch": epoch, "e2e_f1": score.e2e_f1, "string_accuracy": score.string_accuracy,
                    "f1": score.f1}
            model.save_weights(run / "best.weights.h5")
            stale = 0
        else:
            stale += 1
            if best["e2e_f1"] > 0 and stale % settings.lr_patience == 0:
                optimizer.learning_rate.assign(optimizer.learning_rate * settings.lr_factor)
                log(f"learning rate cut to {float(optimizer.learning_rate.numpy()):.2e}")
        entry["learning_rate"] = float(optimizer.learning_rate.numpy())
        epoch_var.assign_add(1)
        manager.save(checkpoint_number=int(step.numpy()))
        line_data.dump_json(run / "metrics.json", {"history": history, "best": best,
                                                   "steps_per_epoch": steps_per_epoch})
        loss_text = " ".join(f"{k} {v:.3f}" for k, v in mean.items())
        log(f"epoch {epoch + 1}/{settings.epochs}: loss {loss_text or '-'}; val detection F1 {score.f1:.3f}, "
            f"end-to-end F1 {score.e2e_f1:.3f}, string acc {score.string_accuracy:.3f} ({score.pages} pages), "
            f"{entry['pages_per_s']:.1f} pages/s")
        if stale >= settings.patience:
            log(f"early stop: no better validation end-to-end F1 for {stale} epochs")
            break
        if settings.max_seconds is not None and time.perf_counter() - started >= settings.max_seconds:
            log(f"time budget of {settings.max_seconds:.0f} s reached")
            break
    return {"history": history, "best": best, "steps_per_epoch": steps_per_epoch}


def load_spotter(run: str | Path, which: str = "best") -> Spotter:
    """The run's spotter: the best epoch's weights, or the latest checkpoint with which='last'."""
    import tensorflow as tf

    run = Path(run)
    model = Spotter(SpotterConfig.load(run / "config.json"))
    if which == "best" and (run / "best.weights.h5").exists():
        model.load_weights(run / "best.weights.h5")
    else:
        latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
        if latest is None:
            raise FileNotFoundError(f"{run} has no trained weights yet")
        tf.train.Checkpoint(**model.checkpoint_items()).restore(latest).expect_partial()
    return model


__all__ = ["page_batches", "spotter_losses", "train_spotter", "load_spotter", "validate", "STRIDE"]
