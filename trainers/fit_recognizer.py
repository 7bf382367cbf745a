"""Train the line recognizer from dataset shards into a run directory that can be resumed.

RUN/
  config.json     model configuration, charset included (what predict/export need)
  training.json   the command's settings and the training data's recipe hashes, seeds and sizes
  checkpoints/    latest weights + optimizer + step (tf.train.CheckpointManager), for --resume
  best.weights.h5 weights of the epoch with the best validation string accuracy
  logs/           TensorBoard scalars
  metrics.json    per-epoch loss, validation accuracy, throughput; the best epoch

A resumed run skips the batches it already trained on (the input pipeline is
deterministic for a seed), so it continues at the saved step with the same data.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import lines as line_data
from .recognizer import RecognizerConfig, build_recognizer
from .text import Charset, accuracy, ctc_greedy


@dataclass
class TrainSettings:
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    steps_per_epoch: int | None = None  # default: one pass over the training lines
    val_lines: int = 512  # validation lines evaluated per epoch when there is no held-out set
    patience: int = 5  # epochs without a better validation string accuracy before stopping
    lr_patience: int = 2  # epochs without improvement (once it reads lines at all) before the learning rate is cut
    lr_factor: float = 0.3  # ... by this factor
    seed: int = 0
    augment: bool = False
    weights: Sequence[float] | None = None  # per training dataset, like DTRB's batch_ratio
    max_seconds: float | None = None  # stop after the epoch in which this much training time has passed


def _strategy():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def evaluate_lines(model, charset: Charset, batches, limit: int | None = None) -> tuple[list[str], list[str]]:
    """(truths, predictions) over batches of the training pipeline."""
    truths, predictions = [], []
    for batch in batches:
        logits = model(batch["image"], training=False).numpy()
        predictions += [charset.decode(labels) for labels in ctc_greedy(logits, charset.blank)]
        truths += [t.decode("utf-8") for t in batch["text"].numpy()]
        if limit is not None and len(truths) >= limit:
            break
    return truths[:limit], predictions[:limit]


def train_recognizer(data: Sequence[str | Path], run: str | Path, config: RecognizerConfig | None = None,
                     settings: TrainSettings | None = None, val: str | Path | None = None, resume: bool = False,
                     log: Callable[[str], None] = print) -> dict:
    """Train (or, with resume, continue) a recognizer; returns the metrics written to RUN/metrics.json."""
    import tensorflow as tf

    run, settings = Path(run), settings or TrainSettings()
    data = [Path(d) for d in data]
    if resume:
        if not (run / "config.json").exists():
            raise FileNotFoundError(f"{run} has no config.json: nothing to resume")
        config = RecognizerConfig.load(run / "config.json")
        saved = json.loads((run / "training.json").read_text())
        settings = TrainSettings(**{**saved["settings"], "epochs": settings.epochs,
                                    "max_seconds": settings.max_seconds})
        val = val or saved.get("val")
    else:
        config = config or RecognizerConfig()
        if (run / "checkpoints").exists():
            raise FileExistsError(f"{run} already holds a training run; pass --resume to continue it or choose "
                                  f"another --out")
        charset = line_data.dataset_charset(data + ([Path(val)] if val else []))
        config = RecognizerConfig(**{**config.__dict__, "charset": charset})
        config = config.with_auto_width(line_data.max_line_length(data))
    config.validate(line_data.max_line_length(data))
    charset = Charset(config.charset)
    run.mkdir(parents=True, exist_ok=True)
    config.save(run / "config.json")
    manifests = [line_data.manifest(d) for d in data]
    line_count = sum(m["counts"].get("crops") or m["counts"]["lines"] for m in manifests)
    steps_per_epoch = settings.steps_per_epoch or max(1, math.ceil(line_count / settings.batch_size))
    line_data.dump_json(run / "training.json", {
        "data": [{"path": str(d), "recipe_sha256": m["recipe_sha256"], "seed": m["seed"], "n": m["n"],
                  "lines": m["counts"]["lines"]} for d, m in zip(data, manifests)],
        "val": str(val) if val else None,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.__dict__.items()},
    })

    tf.keras.utils.set_random_seed(settings.seed)
    strategy = _strategy()
    train_batches = line_data.training_batches(data, charset, config.height, config.width, settings.batch_size,
                                               weights=settings.weights, seed=settings.seed,
                                               augment=settings.augment)
    if val:
        val_batches = line_data.training_batches([val], charset, config.height, config.width, 64, shuffle=0,
                                                 repeat=False)
    else:  # no held-out set: report accuracy on a fixed slice of the training data, and say so
        val_batches = line_data.training_batches(data, charset, config.height, config.width, 64, shuffle=0,
                                                 repeat=False).take(max(1, settings.val_lines // 64))
        log("no --val given: validation accuracy is measured on training lines")

    with strategy.scope():
        model = build_recognizer(config)
        optimizer = tf.keras.optimizers.Adam(settings.learning_rate, clipnorm=5.0)
        optimizer.build(model.trainable_variables)  # slots exist before a restore, so --resume restores them
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, epoch=epoch_var)
    manager = tf.train.CheckpointManager(checkpoint, str(run / "checkpoints"), max_to_keep=2)
    history: list[dict] = []
    best = {"epoch": -1, "string_accuracy": -1.0}
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        previous = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
        history = [h for h in previous.get("history", []) if h["epoch"] < int(epoch_var.numpy())]
        best = previous.get("best", best)
        log(f"resuming {run} at epoch {int(epoch_var.numpy())}, step {int(step.numpy())}")

    logit_steps = config.sequence_length

    def loss_fn(batch):
        logits = model(batch["image"], training=True)
        batch_size = tf.shape(logits)[0]
        per_line = tf.nn.ctc_loss(labels=batch["labels"], logits=logits, label_length=batch["length"],
                                  logit_length=tf.fill([batch_size], logit_steps), logits_time_major=False,
                                  blank_index=-1)
        return tf.nn.compute_average_loss(per_line, global_batch_size=settings.batch_size)

    @tf.function
    def train_step(batch):
        def replica(b):
            with tf.GradientTape() as tape:
                loss = loss_fn(b)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        losses = strategy.run(replica, args=(batch,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    writer = tf.summary.create_file_writer(str(run / "logs"))
    done_in_epoch = int(step.numpy()) - int(epoch_var.numpy()) * steps_per_epoch  # of an interrupted epoch
    stream = iter(strategy.experimental_distribute_dataset(
        train_batches.skip(int(step.numpy())).map(lambda b: {k: b[k] for k in ("image", "labels", "length")})))
    started = time.perf_counter()
    stale = len([h for h in history if h["epoch"] > best["epoch"]]) if best["epoch"] >= 0 else 0
    while int(epoch_var.numpy()) < settings.epochs:
        epoch = int(epoch_var.numpy())
        t0, losses, lines_seen = time.perf_counter(), [], 0
        for _ in range(max(done_in_epoch, 0), steps_per_epoch):
            batch = next(stream)
            losses.append(float(train_step(batch)))
            step.assign_add(1)
            lines_seen += settings.batch_size
            if int(step.numpy()) % 200 == 0:
                manager.save(checkpoint_number=int(step.numpy()))
        done_in_epoch = 0
        seconds = time.perf_counter() - t0
        truths, predictions = evaluate_lines(model, charset, val_batches, settings.val_lines if not val else None)
        score = accuracy(truths, predictions)
        entry = {"epoch": epoch, "step": int(step.numpy()), "loss": float(np.mean(losses)) if losses else None,
                 "val_string_accuracy": score.string_accuracy, "val_char_accuracy": score.char_accuracy,
                 "val_lines": score.count, "lines_per_s": lines_seen / seconds if seconds else 0.0}
        history.append(entry)
        with writer.as_default():
            for key in ("loss", "val_string_accuracy", "val_char_accuracy", "lines_per_s"):
                if entry[key] is not None:
                    tf.summary.scalar(key, entry[key], step=int(step.numpy()))
        if score.string_accuracy > best["string_accuracy"]:
            best = {"epoch": epoch, "string_accuracy": score.string_accuracy, "char_accuracy": score.char_accuracy}
            model.save_weights(str(run / "best.weights.h5"))
            stale = 0
        else:
            stale += 1
            if best["string_accuracy"] > 0 and stale % settings.lr_patience == 0:  # plateau, once it reads
                optimizer.learning_rate.assign(optimizer.learning_rate * settings.lr_factor)
                log(f"learning rate cut to {float(optimizer.learning_rate.numpy()):.2e}")
        entry["learning_rate"] = float(optimizer.learning_rate.numpy())
        epoch_var.assign_add(1)
        manager.save(checkpoint_number=int(step.numpy()))
        line_data.dump_json(run / "metrics.json", {"history": history, "best": best,
                                                   "steps_per_epoch": steps_per_epoch})
        loss_text = f"{entry['loss']:.3f}" if entry["loss"] is not None else "-"
        log(f"epoch {epoch + 1}/{settings.epochs}: loss {loss_text}, val string acc "
            f"{score.string_accuracy:.3f}, char acc {score.char_accuracy:.3f} ({score.count} lines), "
            f"{entry['lines_per_s']:.0f} lines/s")
        if stale >= settings.patience:
            log(f"early stop: no better validation string accuracy for {stale} epochs")
            break
        if settings.max_seconds is not None and time.perf_counter() - started >= settings.max_seconds:
            log(f"time budget of {settings.max_seconds:.0f} s reached")
            break
    return {"history": history, "best": best, "steps_per_epoch": steps_per_epoch}


def load_recognizer(run: str | Path, which: str = "best"):
    """(model, config) of a run: the best epoch's weights, or the latest checkpoint with which='last'."""
    import tensorflow as tf

    run = Path(run)
    config = RecognizerConfig.load(run / "config.json")
    model = build_recognizer(config)
    if which == "best" and (run / "best.weights.h5").exists():
        model.load_weights(str(run / "best.weights.h5"))
    else:
        latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
        if latest is None:
            raise FileNotFoundError(f"{run} has no trained weights yet")
        tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return model, config
