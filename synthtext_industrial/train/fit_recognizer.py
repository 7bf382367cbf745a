"""Train the line recognizer from dataset shards into a run directory that can be resumed.

RUN/
  config.json     model configuration, charset included (what predict/export need)
  training.json   the command's settings and the training data's recipe hashes, seeds and sizes
  checkpoints/    latest weights + optimizer + step (tf.train.CheckpointManager), for --resume
  best.weights.h5 weights of the epoch with the best validation string accuracy
  logs/           TensorBoard scalars
  metrics.json    per-epoch loss, validation accuracy, throughput; the best epoch

The loop itself (resume, checkpoints, best epoch, early stop) is train/loop.py, shared with the spotter.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Sequence

from . import lines as line_data
from . import loop
from .loop import TrainSettings
from .recognizer import RecognizerConfig, build_recognizer
from .text import Charset, accuracy, ctc_greedy

__all__ = ["TrainSettings", "evaluate_lines", "train_recognizer"]


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
                     log: Callable[[str], None] = print, init: str | Path | None = None,
                     init_which: str = "best") -> dict:
    """Train (or, with resume, continue) a recognizer; returns the metrics written to RUN/metrics.json.

    `init`: a trained recognizer run to fine-tune: its config.json (charset, input size) is kept and `config`
    ignored, and training starts from its best weights (else its latest checkpoint; with init_which="last",
    always its latest checkpoint). The data's characters must be in its charset.
    """
    import tensorflow as tf

    run, settings = Path(run), settings or TrainSettings()
    data = [Path(d) for d in data]
    init = Path(init) if init is not None else None

    def new_config():
        charset = line_data.dataset_charset(data + ([Path(val)] if val else []))
        if init is not None:
            kept = RecognizerConfig.load(init / "config.json")
            missing = "".join(sorted(set(charset) - set(kept.charset)))
            if missing:
                raise ValueError(f"the training data has characters {missing!r} that {init} cannot output")
            return kept
        fresh = RecognizerConfig(**{**(config or RecognizerConfig()).model_dump(), "charset": charset})
        return fresh.with_auto_width(line_data.max_line_length(data))

    config, settings, val = loop.start_run(run, settings, val, resume, RecognizerConfig.load, new_config)
    config.validate(line_data.max_line_length(data))
    charset = Charset(config.charset)
    run.mkdir(parents=True, exist_ok=True)
    config.save(run / "config.json")
    manifests = [line_data.manifest(d) for d in data]
    line_count = sum(m["counts"].get("crops") or m["counts"]["lines"] for m in manifests)
    steps_per_epoch = settings.steps_per_epoch or max(1, math.ceil(line_count / settings.batch_size))
    if resume and (run / "training.json").exists():  # a resumed fine-tune still names where it started
        init = init or json.loads((run / "training.json").read_text()).get("init")
    loop.write_training_json(run, "recognizer", data, manifests, val, settings, init)

    tf.keras.utils.set_random_seed(settings.seed)
    strategy = loop.strategy()
    train_batches = line_data.training_batches(data, charset, config.height, config.width, settings.batch_size,
                                               weights=settings.weights, seed=settings.seed,
                                               augment=settings.augment, keep_ratio=config.keep_ratio)
    if val:
        val_batches = line_data.training_batches([val], charset, config.height, config.width, 64, shuffle=0,
                                                 repeat=False, keep_ratio=config.keep_ratio)
    else:  # no held-out set: report accuracy on a fixed slice of the training data, and say so
        val_batches = line_data.training_batches(data, charset, config.height, config.width, 64, shuffle=0,
                                                 repeat=False, keep_ratio=config.keep_ratio).take(max(1, settings.val_lines // 64))
        log("no --val given: validation accuracy is measured on training lines")
    with strategy.scope(), loop.precision(settings.mixed_precision):
        model = build_recognizer(config, unroll=not tf.config.list_physical_devices("GPU"))
        if init is not None and not resume:  # resume restores the run's own checkpoint instead
            from .runs import load_weights

            load_weights(model, init, init_which)

    def make_step(optimizer):
        def loss_fn(batch):
            logits = model(batch["image"], training=True)
            per_line = tf.nn.ctc_loss(labels=batch["labels"], logits=logits, label_length=batch["length"],
                                      logit_length=tf.fill([tf.shape(logits)[0]], config.sequence_length),
                                      logits_time_major=False, blank_index=-1)
            return tf.nn.compute_average_loss(per_line, global_batch_size=settings.batch_size)

        @tf.function
        def train_step(batch):
            def replica(b):
                with tf.GradientTape() as tape:
                    loss = loss_fn(b)
                    scaled = optimizer.scale_loss(loss)
                grads = tape.gradient(scaled, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                return loss

            return {"total": strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica, args=(batch,)),
                                             axis=None)}

        return train_step

    def validate() -> loop.Validation:
        truths, predictions = evaluate_lines(model, charset, val_batches, settings.val_lines if not val else None)
        score = accuracy(truths, predictions)
        return loop.Validation({"string_accuracy": score.string_accuracy, "char_accuracy": score.char_accuracy,
                                "lines": score.count}, (score.string_accuracy,),
                               f"string acc {score.string_accuracy:.3f}, char acc {score.char_accuracy:.3f} "
                               f"({score.count} lines)")

    fields = ("image", "labels", "length")
    trainer = loop.Trainer(model, {"model": model}, make_step,
                           train_batches.map(lambda b: {k: b[k] for k in fields}), validate, "lines")
    return loop.fit(run, trainer, settings, steps_per_epoch, strategy, resume, log)
