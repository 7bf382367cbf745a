"""The GPU code paths, run on the CPU: mixed precision (float16 compute, float32 weights, logits, maps and losses,
dynamic loss scaling; bfloat16 the same without loss scaling) and MirroredStrategy's batch splitting over two replicas (two virtual CPU devices in a
fresh process). What a GPU adds (cuDNN kernels, tensor-core speed, NCCL all-reduce) is not tested here."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

from synthtext_industrial import load_recipe  # noqa: E402
from synthtext_industrial.generate import generate  # noqa: E402
from synthtext_industrial.train import loop  # noqa: E402
from synthtext_industrial.train.detector import Detector, DetectorConfig  # noqa: E402
from synthtext_industrial.train.fit_detector import detector_losses, page_batches  # noqa: E402
from synthtext_industrial.train.fit_recognizer import train_recognizer  # noqa: E402
from synthtext_industrial.train.recognizer import RecognizerConfig, build_recognizer  # noqa: E402

from .conftest import REPO  # noqa: E402

TINY = {"canvas": {"width": 320, "height": 240}, "typography": {"height_px": [36, 44]},
        "text": {"blocks": [{"lines": ["{9:4}"]}]}}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu_paths")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY), encoding="utf-8")
    generate(load_recipe(root / "tiny.yaml"), root / "data", n=4, seed=0, shard_size=4, workers=1)
    return root / "data"


@pytest.fixture
def restored_policy():
    before = keras.mixed_precision.global_policy().name
    yield
    keras.mixed_precision.set_global_policy(before)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_mixed_precision_computes_in_float16_and_keeps_logits_and_losses_float32(restored_policy):
    config = RecognizerConfig(height=32, width=64, lstm_units=16, charset="0123456789")
    with loop.precision("float16"):
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        model = build_recognizer(config)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored on leaving
    assert any(layer.compute_dtype == "float16" for layer in model.layers)
    assert all(w.dtype == "float32" for w in model.weights)
    optimizer = loop.make_optimizer(loop.TrainSettings(mixed_precision=True))
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (4, 32, 64, 1)), tf.float32)
    labels = tf.constant([[1, 2, 3, 4]] * 4, tf.int32)
    before = [w.numpy().copy() for w in model.trainable_variables]
    for _ in range(30):  # dynamic loss scaling skips a step whose float16 gradients overflow and halves its scale
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.ctc_loss(labels, logits, tf.fill([4], 4), tf.fill([4], 16),
                                                 logits_time_major=False, blank_index=-1))
            scaled = optimizer.scale_loss(loss)
        assert logits.dtype == tf.float32 and loss.dtype == tf.float32 and np.isfinite(float(loss))
        assert float(scaled) > float(loss)  # the loss scale is on
        optimizer.apply(tape.gradient(scaled, model.trainable_variables), model.trainable_variables)
        if any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_variables)):
            break
    else:
        pytest.fail("no step was applied")
    assert loop.TrainSettings().mixed_precision == "off" and not isinstance(
        loop.make_optimizer(loop.TrainSettings()), keras.optimizers.LossScaleOptimizer)


def test_bfloat16_computes_in_bfloat16_without_loss_scaling(restored_policy):
    config = RecognizerConfig(height=32, width=64, lstm_units=16, charset="0123456789")
    with loop.precision("bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        model = build_recognizer(config)
    assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)
    assert all(w.dtype == "float32" for w in model.weights)
    optimizer = loop.make_optimizer(loop.TrainSettings(mixed_precision="bfloat16"))
    assert not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)  # bfloat16 has float32's range
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (4, 32, 64, 1)), tf.float32)
    before = [w.numpy().copy() for w in model.trainable_variables]
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(tf.nn.ctc_loss(tf.constant([[1, 2, 3, 4]] * 4, tf.int32), logits, tf.fill([4], 4),
                                             tf.fill([4], 16), logits_time_major=False, blank_index=-1))
    assert logits.dtype == tf.float32 and np.isfinite(float(loss))
    optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_variables))
    with pytest.raises(ValueError, match="off, float16 or bfloat16"):
        with loop.precision("float8"):
            pass


def test_runs_saved_with_a_boolean_read_float16_or_off():
    assert loop.TrainSettings(mixed_precision=True).mixed_precision == "float16"
    assert loop.TrainSettings(mixed_precision=False).mixed_precision == "off"
    with pytest.raises(ValueError):
        loop.TrainSettings(mixed_precision="half")


def test_auto_precision_picks_bfloat16_only_on_a_cpu_that_has_it(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setattr(loop, "cpu_has_bfloat16", lambda: True)
    assert loop.auto_precision() == "bfloat16"
    monkeypatch.setattr(loop, "cpu_has_bfloat16", lambda: False)
    assert loop.auto_precision() == "off"
    monkeypatch.setattr(loop, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert loop.auto_precision() == "off"


@pytest.mark.parametrize("mixed", ["float16", "bfloat16"])
def test_the_detector_maps_stay_float32_under_mixed_precision(pages, restored_policy, mixed):
    config = DetectorConfig(height=120, width=160, fusion_channels=8)
    with loop.precision(mixed):
        detector = Detector(config)
    batch = next(iter(page_batches([pages], config, 2, shuffle=0)))
    score, geometry, direction = detector(batch["image"], training=False)
    assert score.dtype == geometry.dtype == direction.dtype == tf.float32
    losses = detector_losses(detector, batch)
    assert all(v.dtype == tf.float32 and np.isfinite(float(v)) for v in losses.values())


@pytest.mark.parametrize("mixed", ["float16", "bfloat16"])
def test_a_recognizer_trains_a_step_with_mixed_precision(pages, tmp_path, restored_policy, mixed):
    settings = loop.TrainSettings(epochs=1, batch_size=4, steps_per_epoch=1, val_lines=4, mixed_precision=mixed)
    metrics = train_recognizer([pages], tmp_path / "run", RecognizerConfig(height=32, width=64, lstm_units=16),
                               settings, log=lambda _: None)
    assert np.isfinite(metrics["history"][0]["loss"])
    assert json.loads((tmp_path / "run" / "training.json").read_text())["settings"]["mixed_precision"] == mixed
    assert keras.mixed_precision.global_policy().name == "float32"


def test_the_cli_flag_alone_means_float16_and_takes_bfloat16(pages, tmp_path, restored_policy):
    from click.testing import CliRunner

    from synthtext_industrial.cli import main

    common = ["train", "recognizer", "--data", str(pages), "--epochs", "1", "--steps-per-epoch", "1",
              "--batch-size", "4", "--width", "64"]
    for args, expected in ((["--mixed-precision"], "float16"), (["--mixed-precision", "bfloat16"], "bfloat16"),
                           ([], "off")):
        run = tmp_path / expected
        result = CliRunner().invoke(main, common + args + ["--out", str(run)])
        assert result.exit_code == 0, result.output
        assert json.loads((run / "training.json").read_text())["settings"]["mixed_precision"] == expected
    refused = CliRunner().invoke(main, common + ["--mixed-precision", "half", "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "half" in refused.output


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from synthtext_industrial.train import loop
from synthtext_industrial.train.detector import DetectorConfig
from synthtext_industrial.train.fit_detector import train_detector
from synthtext_industrial.train.fit_recognizer import train_recognizer
from synthtext_industrial.train.recognizer import RecognizerConfig
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
loop.strategy = lambda: strategy  # what it returns when several GPUs are visible
data, out = sys.argv[1], sys.argv[2]
settings = loop.TrainSettings(epochs=1, batch_size=4, steps_per_epoch=2, val_lines=2, ema=0.99)  # averaged too
lines = train_recognizer([data], out + "/recognizer", RecognizerConfig(height=32, width=64, lstm_units=16),
                         settings, log=lambda _: None)
pages = train_detector([data], out + "/detector", DetectorConfig(height=120, width=160, fusion_channels=8),
                       settings, log=lambda _: None)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "recognizer": lines["history"][0]["loss"],
                  "detector": pages["history"][0]["loss"]}))
"""


def test_mirrored_strategy_splits_batches_over_two_replicas(pages, tmp_path):
    """Two virtual CPU devices stand in for two GPUs: the recognizer's and the detector's train steps run per
    replica on half a batch each and sum their losses (loop.loss_dict_step, compute_average_loss); the weights'
    moving average (--ema) is kept over mirrored variables."""
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(pages), str(tmp_path)], capture_output=True,
                          text=True, timeout=600, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert np.isfinite(result["recognizer"]) and np.isfinite(result["detector"])
    assert (tmp_path / "recognizer" / "best.weights.h5").exists() and (tmp_path / "detector" / "checkpoints").exists()
