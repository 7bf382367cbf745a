"""The training loop both trainers share: run folder, resume, checkpoints, epochs, best weights, stopping.

A trainer (fit_recognizer, fit_spotter) brings its model, its batches, a train step and a validation;
this module owns what must behave the same for every model: refusing to overwrite a run, resuming at
the saved step with the same data (the input pipeline is deterministic for a seed, so the batches
already trained on are skipped), checkpoints every 200 steps and every epoch, the best epoch's
weights, reduce-on-plateau, early stopping, the time budget, TensorBoard and metrics.json; with
`TrainSettings.ema`, a moving average of the weights that is validated and kept in their place.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
from pydantic import Field, field_validator

from ..core.config import StrictModel
from .lines import dump_json

CHECKPOINT_EVERY = 200  # steps


class TrainSettings(StrictModel):
    """How a run trains, saved in training.json: a strict model like a recipe section."""

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    steps_per_epoch: int | None = None  # default: one pass over the training data
    val_lines: int = 512  # validation lines (spotter: pages) evaluated per epoch when there is no held-out set
    patience: int = 5  # epochs without a better validation score before stopping
    lr_patience: int = 2  # epochs without improvement (once it reads lines at all) before the learning rate is cut
    lr_factor: float = 0.3  # ... by this factor
    schedule: str = "plateau"  # or "cosine": warm up, then decay to 1% over the epochs (or the time budget)
    seed: int = 0
    augment: bool = False
    weights: list[float] | None = None  # per training dataset, like DTRB's batch_ratio
    max_seconds: float | None = None  # stop after the epoch in which this much training time has passed
    # "float16": float16 compute, float32 weights and outputs, loss scaling (GPUs with tensor cores); "bfloat16":
    # the same in bfloat16, no loss scaling (CPUs with AVX512_BF16 or AMX, TPUs); "off": float32. Runs saved with
    # true/false read "float16"/"off".
    mixed_precision: Literal["off", "float16", "bfloat16"] = "off"
    # Decay per step of an exponential moving average of the weights (0: off). With it, validation, the best
    # weights and so export use the average, which moves less between epochs than the last step's weights (weight
    # averaging finds flatter solutions, as SWAD does for domain generalisation; measured on the fuel pumps it was
    # steadier across training seeds, not better on average: README).
    ema: float = Field(0.0, ge=0.0, lt=1.0)

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _saved_as_bool(cls, value):
        return ("float16" if value else "off") if isinstance(value, bool) else value


class WeightAverage:
    """An exponential moving average of a model's weights (every weight, batch-norm statistics included), kept in
    variables of the weights' own dtype beside them. `update(step)` after each train step; `swapped()` puts the
    average in the model for validation or saving and the trained weights back after. The decay warms up as
    min(decay, (1 + step) / (10 + step)), so the first steps' random weights do not linger in the average."""

    def __init__(self, model, decay: float):
        import tensorflow as tf

        self.weights = list(model.weights)
        self.decay = decay
        self.shadow = [tf.Variable(w.numpy(), trainable=False, dtype=w.dtype, name=f"ema_{i}")
                       for i, w in enumerate(self.weights)]

        @tf.function
        def update(decay):
            for average, weight in zip(self.shadow, self.weights):
                average.assign(decay * average + (1.0 - decay) * tf.convert_to_tensor(weight))

        self._update = update

    def update(self, step: int) -> None:
        import tensorflow as tf

        self._update(tf.constant(min(self.decay, (1.0 + step) / (10.0 + step)), tf.float32))

    @contextlib.contextmanager
    def swapped(self):
        trained = [w.numpy() for w in self.weights]
        for weight, average in zip(self.weights, self.shadow):
            weight.assign(average.numpy())
        try:
            yield
        finally:
            for weight, value in zip(self.weights, trained):
                weight.assign(value)


@dataclass
class Validation:
    """One epoch's validation: metrics logged as val_<name>; the best epoch is the highest `rank`."""

    metrics: dict[str, float]
    rank: tuple[float, ...]
    summary: str  # for the epoch's log line


@dataclass
class Trainer:
    """What a model brings to the loop. `make_step(optimizer)` returns a tf.function(batch) -> dict of
    scalar losses with a "total"; `batches` are training batches holding only what the step reads."""

    model: object
    checkpoint_items: dict
    make_step: Callable
    batches: object
    validate: Callable[[], Validation]
    unit: str  # what a batch holds: "lines" or "pages"
    rank_names: tuple[str, ...] = field(default=("string_accuracy",))


SCHEDULES = ("plateau", "cosine")
WARMUP = 0.02  # of the run, for the cosine schedule
FINAL_RATE = 0.01  # of the peak, at the end of the cosine schedule


def cosine_rate(settings: TrainSettings, step: int, steps_per_epoch: int, elapsed: float) -> float:
    """Learning rate of the cosine schedule: linear warm-up, then half a cosine down to 1% of the peak.

    Progress is the larger of the steps done over all epochs' steps and, with a time budget, the time
    spent over the budget (a time-bound run still ends its schedule when its time does; a resumed run
    counts its time from the resume).
    """
    progress = step / max(settings.epochs * steps_per_epoch, 1)
    if settings.max_seconds:
        progress = max(progress, elapsed / settings.max_seconds)
    progress = min(progress, 1.0)
    if progress < WARMUP:
        return settings.learning_rate * max(progress / WARMUP, 0.01)
    decay = 0.5 * (1 + math.cos(math.pi * (progress - WARMUP) / (1 - WARMUP)))
    return settings.learning_rate * (FINAL_RATE + (1 - FINAL_RATE) * decay)


def strategy():
    """MirroredStrategy over every GPU when there are several, else the default strategy."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


@contextlib.contextmanager
def precision(mixed: str):
    """Build models inside this: with `mixed` "float16" or "bfloat16", Keras' mixed_float16 or mixed_bfloat16
    policy (that compute, float32 variables); the models mark their output layers float32, so logits, maps and
    losses stay float32. The global policy is restored on leaving, so nothing built afterwards in the process is
    affected."""
    import keras

    previous = keras.mixed_precision.global_policy()
    if mixed not in ("off", "float16", "bfloat16"):
        raise ValueError(f"mixed precision must be off, float16 or bfloat16, got {mixed!r}")
    if mixed != "off":
        keras.mixed_precision.set_global_policy(f"mixed_{mixed}")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def cpu_has_bfloat16() -> bool:
    """Whether this machine's CPU computes bfloat16 natively (AVX512_BF16 or AMX; Linux's /proc/cpuinfo), where
    mixed_bfloat16 trains faster than float32 (benchmarks/bench_precision.py on a 2-core Zen 4: detector 1.46x,
    recognizer 1.16x)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def auto_precision() -> str:
    """What `--mixed-precision auto` picks: bfloat16 on a CPU that computes it natively when TensorFlow sees no
    GPU, else off (float16 on a GPU is left to the user: it pays only on tensor cores)."""
    import tensorflow as tf

    return "bfloat16" if cpu_has_bfloat16() and not tf.config.list_physical_devices("GPU") else "off"


def make_optimizer(settings: TrainSettings):
    """Adam with gradient clipping; under float16 mixed precision wrapped in a LossScaleOptimizer (dynamic loss
    scaling keeps float16 gradients from underflowing; bfloat16 has float32's range and needs none). Train steps
    call optimizer.scale_loss(loss) before the gradients: the identity without loss scaling."""
    import keras

    optimizer = keras.optimizers.Adam(settings.learning_rate, clipnorm=5.0)
    return keras.optimizers.LossScaleOptimizer(optimizer) if settings.mixed_precision == "float16" else optimizer


def loss_dict_step(strategy, model, losses: Callable) -> Callable:
    """`make_step` for a Trainer whose `losses(batch)` returns a dict of scalar losses with a "total" (the spotter, the
    oriented detector): each replica's gradients of its total / replicas, every loss summed over the replicas."""
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync

    def make_step(optimizer):
        @tf.function
        def train_step(batch):
            def replica(b):
                with tf.GradientTape() as tape:
                    found = losses(b)
                    scaled = optimizer.scale_loss(found["total"] / replicas)
                grads = tape.gradient(scaled, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                return {k: v / replicas for k, v in found.items()}

            found = strategy.run(replica, args=(batch,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in found.items()}

        return train_step

    return make_step


def start_run(run: Path, settings: TrainSettings, val, resume: bool, load_config: Callable,
              new_config: Callable):
    """(config, settings, val) of a new run, or the saved ones of the run being resumed."""
    if resume:
        if not (run / "config.json").exists():
            raise FileNotFoundError(f"{run} has no config.json: nothing to resume")
        saved = json.loads((run / "training.json").read_text())
        settings = TrainSettings(**{**saved["settings"], "epochs": settings.epochs,
                                    "max_seconds": settings.max_seconds})
        return load_config(run / "config.json"), settings, val or saved.get("val")
    if (run / "checkpoints").exists():
        raise FileExistsError(f"{run} already holds a training run; pass --resume to continue it or choose "
                              f"another --out")
    return new_config(), settings, val


def write_page_run(run: Path, model: str, config, data: Sequence[Path], val, settings: TrainSettings) -> int:
    """A page-level run's folder (the spotter's, the oriented detector's): config.json and training.json written;
    returns the steps per epoch (settings', else one pass over the pages)."""
    from .lines import manifest

    run.mkdir(parents=True, exist_ok=True)
    config.save(run / "config.json")
    manifests = [manifest(d) for d in data]
    page_count = sum(m["counts"]["images"] for m in manifests)
    write_training_json(run, model, data, manifests, val, settings)
    return settings.steps_per_epoch or max(1, math.ceil(page_count / settings.batch_size))


def write_training_json(run: Path, model: str, data: Sequence[Path], manifests: list[dict], val,
                        settings: TrainSettings, init: Path | None = None) -> None:
    """The command's settings and where the training data came from (recipe hashes, seeds, sizes); a line
    folder (train/lines.py) is marked `"kind": "lines"`; `init` is the run whose weights training started from."""
    dump_json(run / "training.json", {
        "model": model,
        "data": [{"path": str(d), **({"kind": "lines"} if m.get("kind") == "lines" else {}),
                  "recipe_sha256": m["recipe_sha256"], "seed": m["seed"], "n": m["n"],
                  "pages": m["counts"]["images"], "lines": m["counts"]["lines"]} for d, m in zip(data, manifests)],
        "val": str(val) if val else None,
        **({"init": str(init)} if init else {}),
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.model_dump().items()},
    })


def fit(run: Path, trainer: Trainer, settings: TrainSettings, steps_per_epoch: int, scope, resume: bool,
        log: Callable[[str], None]) -> dict:
    """Train epochs until settings.epochs, early stop or the time budget; returns metrics.json's content.

    `scope` is the distribution strategy the model was built under.
    """
    import tensorflow as tf

    if settings.schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {settings.schedule!r}; choose one of {', '.join(SCHEDULES)}")
    with scope.scope():
        optimizer = make_optimizer(settings)
        optimizer.build(trainer.model.trainable_variables)  # slots exist before a restore: --resume restores them
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        average = WeightAverage(trainer.model, settings.ema) if settings.ema else None
        checkpoint = tf.train.Checkpoint(**trainer.checkpoint_items, optimizer=optimizer, step=step,
                                         epoch=epoch_var, **({"ema": average.shadow} if average else {}))
    manager = tf.train.CheckpointManager(checkpoint, str(run / "checkpoints"), max_to_keep=2)
    first = trainer.rank_names[0]
    history: list[dict] = []
    best: dict = {"epoch": -1, **{name: -1.0 for name in trainer.rank_names}}
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        previous = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
        history = [h for h in previous.get("history", []) if h["epoch"] < int(epoch_var.numpy())]
        best = previous.get("best", best)
        log(f"resuming {run} at epoch {int(epoch_var.numpy())}, step {int(step.numpy())}")

    train_step = trainer.make_step(optimizer)
    writer = tf.summary.create_file_writer(str(run / "logs"))
    done_in_epoch = int(step.numpy()) - int(epoch_var.numpy()) * steps_per_epoch  # of an interrupted epoch
    stream = iter(scope.experimental_distribute_dataset(trainer.batches.skip(int(step.numpy()))))
    started = time.perf_counter()
    stale = len([h for h in history if h["epoch"] > best["epoch"]]) if best["epoch"] >= 0 else 0
    while int(epoch_var.numpy()) < settings.epochs:
        epoch = int(epoch_var.numpy())
        t0, losses, seen = time.perf_counter(), [], 0
        for _ in range(max(done_in_epoch, 0), steps_per_epoch):
            if settings.schedule == "cosine":
                optimizer.learning_rate.assign(cosine_rate(settings, int(step.numpy()), steps_per_epoch,
                                                           time.perf_counter() - started))
            losses.append({k: float(v) for k, v in train_step(next(stream)).items()})
            if average is not None:
                average.update(int(step.numpy()))
            step.assign_add(1)
            seen += settings.batch_size
            if int(step.numpy()) % CHECKPOINT_EVERY == 0:
                manager.save(checkpoint_number=int(step.numpy()))
        done_in_epoch = 0
        seconds = time.perf_counter() - t0
        in_model = average.swapped() if average is not None else contextlib.nullcontext()
        with in_model:  # validate (and keep as best) the average, when there is one
            result = trainer.validate()
            better = result.rank > tuple(best.get(name, -1.0) for name in trainer.rank_names)
            if better:
                trainer.model.save_weights(str(run / "best.weights.h5"))
        mean = {k: float(np.mean([loss[k] for loss in losses])) for k in losses[0]} if losses else {}
        entry = {"epoch": epoch, "step": int(step.numpy()), "loss": mean.get("total"),
                 **{f"loss_{k}": v for k, v in mean.items() if k != "total"},
                 **{f"val_{k}": v for k, v in result.metrics.items()},
                 f"{trainer.unit}_per_s": seen / seconds if seconds else 0.0}
        history.append(entry)
        with writer.as_default():
            for key, value in entry.items():
                if key not in ("epoch", "step") and value is not None:
                    tf.summary.scalar(key, value, step=int(step.numpy()))
        if better:
            best = {"epoch": epoch, **result.metrics}
            stale = 0
        else:
            stale += 1
            if settings.schedule == "plateau" and best[first] > 0 and stale % settings.lr_patience == 0:  # a plateau, once it reads at all
                optimizer.learning_rate.assign(optimizer.learning_rate * settings.lr_factor)
                log(f"learning rate cut to {float(optimizer.learning_rate.numpy()):.2e}")
        entry["learning_rate"] = float(optimizer.learning_rate.numpy())
        epoch_var.assign_add(1)
        manager.save(checkpoint_number=int(step.numpy()))
        dump_json(run / "metrics.json", {"history": history, "best": best, "steps_per_epoch": steps_per_epoch})
        loss_text = (f"{mean['total']:.3f}" if list(mean) == ["total"]
                     else " ".join(f"{k} {v:.3f}" for k, v in mean.items())) or "-"
        log(f"epoch {epoch + 1}/{settings.epochs}: loss {loss_text}; val {result.summary}, "
            f"{entry[f'{trainer.unit}_per_s']:.1f} {trainer.unit}/s")
        if stale >= settings.patience:
            log(f"early stop: no better validation {first.replace('_', ' ')} for {stale} epochs")
            break
        if settings.max_seconds is not None and time.perf_counter() - started >= settings.max_seconds:
            log(f"time budget of {settings.max_seconds:.0f} s reached")
            break
    return {"history": history, "best": best, "steps_per_epoch": steps_per_epoch}
