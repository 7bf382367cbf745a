"""Training throughput of the detector and the recognizer in float32 and in each mixed precision, on this machine.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/bench_precision.py [--steps 10] [--modes off,bfloat16]
It generates 8 small pages of default.yaml into a temporary folder, builds each model under each mode (as
`train --mixed-precision MODE` does) and times training steps on one fixed batch (the input pipeline left out):
pages/s for the detector at 400x300, lines/s for the recognizer at 32x256, and the ratio to float32. bfloat16 pays
where the CPU computes it natively (AVX512_BF16 or AMX; `cpu_has_bfloat16` says whether this one does); float16
pays on GPUs with tensor cores. Run it on an idle machine.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def time_steps(step, batch, steps: int) -> float:
    """Seconds per step after three warm-up steps (tracing, oneDNN's first kernels: with 10 timed steps instead of
    25 the detector's bfloat16 ratio came out 1.02 once, 1.46 with 25)."""
    for _ in range(3):
        step(batch)
    start = time.perf_counter()
    for _ in range(steps):
        step(batch)
    return (time.perf_counter() - start) / steps


def detector_step(pages: Path, mode: str):
    import tensorflow as tf

    from synthtext_industrial.train import loop
    from synthtext_industrial.train.detector import Detector, DetectorConfig
    from synthtext_industrial.train.fit_detector import detector_losses, page_batches

    config = DetectorConfig(height=300, width=400)
    batch = next(iter(page_batches([pages], config, 8, shuffle=0)))
    batch = {k: batch[k] for k in ("image", "score", "geometry", "direction")}
    with loop.precision(mode):
        model = Detector(config)
    optimizer = loop.make_optimizer(loop.TrainSettings(mixed_precision=mode))
    variables = model.trainable_variables

    @tf.function
    def step(b):
        with tf.GradientTape() as tape:
            loss = detector_losses(model, b)["total"]
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss

    return step, batch, 8


def recognizer_step(mode: str):
    import numpy as np
    import tensorflow as tf

    from synthtext_industrial.train import loop
    from synthtext_industrial.train.recognizer import RecognizerConfig, build_recognizer

    config = RecognizerConfig(charset="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    with loop.precision(mode):
        model = build_recognizer(config, unroll=True)  # as training on a CPU builds it
    optimizer = loop.make_optimizer(loop.TrainSettings(mixed_precision=mode))
    rng = np.random.default_rng(0)
    batch = {"image": tf.constant(rng.uniform(0, 255, (32, config.height, config.width, 1)), tf.float32),
             "labels": tf.constant(rng.integers(0, 36, (32, 8)), tf.int32)}
    steps = config.sequence_length

    @tf.function
    def step(b):
        with tf.GradientTape() as tape:
            logits = model(b["image"], training=True)
            loss = tf.reduce_mean(tf.nn.ctc_loss(b["labels"], logits, tf.fill([32], 8), tf.fill([32], steps),
                                                 logits_time_major=False, blank_index=-1))
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, model.trainable_variables), model.trainable_variables)
        return loss

    return step, batch, 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=25, help="timed steps per model and mode")
    parser.add_argument("--modes", default="off,bfloat16", help="comma-separated: off, float16, bfloat16")
    args = parser.parse_args()

    from synthtext_industrial import load_recipe, recipe_from_dict
    from synthtext_industrial.generate import generate
    from synthtext_industrial.train.loop import cpu_has_bfloat16

    modes = args.modes.split(",")
    print(f"{os.cpu_count()} CPU cores; native bfloat16: {cpu_has_bfloat16()}; load average "
          f"{os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        default = load_recipe("default")
        import yaml

        data = yaml.safe_load(default.raw_text)
        data["canvas"] = {**data["canvas"], "width": 800, "height": 600}
        data["typography"] = {**data["typography"], "height_px": [15, 45]}
        small = recipe_from_dict(data, default.source, Path(default.source).parent)
        generate(small, Path(tmp) / "pages", 8, seed=0, shard_size=8, workers=1, with_crops=False)
        rows = []
        for name, make in (("detector (pages/s)", lambda m: detector_step(Path(tmp) / "pages", m)),
                           ("recognizer (lines/s)", recognizer_step)):
            rates = {}
            for mode in modes:
                step, batch, size = make(mode)
                rates[mode] = size / time_steps(step, batch, args.steps)
            rows.append((name, rates))
    print(f"{'model':24}" + "".join(f"{mode:>12}" for mode in modes) + "".join(
        f"{mode + '/off':>16}" for mode in modes if mode != "off"))
    for name, rates in rows:
        ratios = "".join(f"{rates[m] / rates['off']:16.2f}" for m in modes if m != "off" and "off" in rates)
        print(f"{name:24}" + "".join(f"{rates[m]:12.1f}" for m in modes) + ratios)


if __name__ == "__main__":
    main()
