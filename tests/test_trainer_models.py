"""Recognizer models: every backbone gives the sequence length the CTC rule needs."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from synthtext_industrial.train.backbones import BACKBONES  # noqa: E402
from synthtext_industrial.core.portable import preprocess  # noqa: E402
from synthtext_industrial.train.recognizer import (CONTRAST_FLOOR, CONTRAST_STD, RecognizerConfig,  # noqa: E402
                                                   build_recognizer, contrast_normalized)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_backbone_keeps_a_sequence_of_width_over_stride(backbone):
    config = RecognizerConfig(backbone=backbone, height=32, width=128, lstm_units=16, charset="0123456789")
    model = build_recognizer(config)
    logits = model(np.zeros((2, 32, 128, 1), np.float32))
    assert tuple(logits.shape) == (2, config.sequence_length, 11)
    assert config.sequence_length == 128 // (4 if backbone == "small" else 8)
    config.validate(max_label_length=config.sequence_length // 2)  # exactly enough
    with pytest.raises(ValueError, match="--width"):
        config.validate(max_label_length=config.sequence_length // 2 + 1)


def test_preprocess_stretches_to_the_model_input():
    line = np.full((50, 300), 200, np.uint8)
    line[10:40, 20:280] = 30
    x = preprocess(line, 32, 128)
    assert x.shape == (32, 128, 1) and x.dtype == np.float32
    assert x.min() >= 30 and x.max() <= 200 and x[16, 64, 0] == pytest.approx(30, abs=1)


@pytest.mark.parametrize("backbone, longest, width", [("small", 10, 128), ("small", 30, 384),
                                                      ("efficientnet-b0", 10, 256), ("mobilenetv3", 4, 128)])
def test_auto_width_gives_ctc_room_for_the_longest_line(backbone, longest, width):
    config = RecognizerConfig(backbone=backbone, width=0, charset="0123456789").with_auto_width(longest)
    assert config.width == width and config.width % 32 == 0
    config.validate(max_label_length=longest)
    assert RecognizerConfig(width=200, charset="01").with_auto_width(longest).width == 200


def test_unrolled_training_model_shares_weights_and_outputs_with_the_exported_one(tmp_path):
    config = RecognizerConfig(height=32, width=128, lstm_units=16, charset="0123456789")
    trained, plain = build_recognizer(config, unroll=True), build_recognizer(config)
    trained.save_weights(str(tmp_path / "best.weights.h5"))  # as training saves its best epoch
    plain.load_weights(str(tmp_path / "best.weights.h5"))  # as predict, evaluate and export load it
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 128, 1)).astype(np.float32)
    np.testing.assert_allclose(plain(x).numpy(), trained(x).numpy(), rtol=1e-4, atol=1e-4)


def test_contrast_normalization_reads_a_dim_line_like_a_bright_one():
    """With normalize='contrast' the model sees each line at one mean and spread: the same line behind dark
    glass (a fifth of the contrast, darker) gives the same logits; without it, different ones."""
    rng = np.random.default_rng(0)
    line = rng.uniform(0, 255, (2, 32, 128, 1)).astype(np.float32)
    dim = line * 0.2 + 30
    for normalize, same in (("contrast", True), ("none", False)):
        config = RecognizerConfig(height=32, width=128, lstm_units=16, charset="0123456789", normalize=normalize)
        model = build_recognizer(config)
        bright, dark = model(line).numpy(), model(dim).numpy()
        assert np.allclose(bright, dark, atol=1e-3) == same, normalize


def test_contrast_normalization_does_not_blow_up_the_noise_of_a_blank_line():
    rng = np.random.default_rng(1)
    flat = (90 + rng.normal(0, 1, (1, 32, 128, 1))).astype(np.float32)
    out = np.asarray(contrast_normalized(flat))
    assert out.mean() == pytest.approx(128, abs=0.5)
    assert out.std() == pytest.approx(CONTRAST_STD * flat.std() / CONTRAST_FLOOR, rel=0.02) and out.std() < 15
    text = (rng.uniform(0, 1, (1, 32, 128, 1)) > 0.7).astype(np.float32) * 20 + 60  # a faint but real line
    assert np.asarray(contrast_normalized(text)).std() == pytest.approx(CONTRAST_STD, rel=0.01)


def test_padded_resize_keeps_the_glyph_shape_and_fills_with_the_mean():
    """A 20x32 digit crop (as meter readers cut them) fills 20 of 256 columns at scale 1 instead of being
    stretched 12.8 times; the rest is its own mean gray. Wider-than-input crops are squeezed to fit."""
    rng = np.random.default_rng(0)
    digit = rng.integers(0, 256, (32, 20), dtype=np.uint8)
    padded = preprocess(digit, 32, 256, keep_ratio=True)[..., 0]
    assert padded.shape == (32, 256)
    assert np.array_equal(padded[:, :20], digit.astype(np.float32))
    assert np.all(padded[:, 20:] == round(float(digit.mean())))
    half = preprocess(cv2.resize(digit, (40, 64)), 32, 256, keep_ratio=True)[..., 0]
    assert np.all(half[:, 20:] == half[0, 25]) and not np.all(half[:, 19] == half[0, 25])
    wide = rng.integers(0, 256, (16, 1000), dtype=np.uint8)
    assert np.array_equal(preprocess(wide, 32, 256, keep_ratio=True), preprocess(wide, 32, 256))
    stretched = preprocess(digit, 32, 256)[..., 0]
    assert stretched.std(axis=1).mean() > 0 and not np.array_equal(stretched[:, :20], padded[:, :20])


def test_runs_saved_before_resize_existed_stretch_their_lines(tmp_path):
    path = tmp_path / "config.json"
    RecognizerConfig(charset="01", resize="pad").save(path)
    assert RecognizerConfig.load(path).keep_ratio
    data = json.loads(path.read_text())
    del data["resize"]
    path.write_text(json.dumps(data))
    assert RecognizerConfig.load(path).resize == "stretch" and not RecognizerConfig.load(path).keep_ratio


def test_the_skip_head_gives_the_logits_each_steps_own_features():
    """With the BiLSTMs silenced (all weights zero, so they output zeros), the plain head's logits are the same
    for every step and every line, while the skip head's still follow the pixels under each step."""
    rng = np.random.default_rng(0)
    lines = rng.uniform(0, 255, (2, 32, 128, 1)).astype(np.float32)
    for head, follows_pixels in (("lstm", False), ("skip", True)):
        config = RecognizerConfig(height=32, width=128, lstm_units=16, charset="0123456789", head=head)
        model = build_recognizer(config)
        assert any(layer.name == "skip" for layer in model.layers) == follows_pixels
        for layer in model.layers:
            if "bidirectional" in layer.name:
                layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
        logits = model(lines).numpy()
        assert logits.shape == (2, config.sequence_length, 11)
        varies = logits.std(axis=(0, 1)).max() > 1e-4
        assert varies == follows_pixels, head


def test_runs_saved_before_the_head_existed_load_without_the_skip(tmp_path):
    path = tmp_path / "config.json"
    RecognizerConfig(charset="01", head="skip").save(path)
    assert RecognizerConfig.load(path).head == "skip"
    data = json.loads(path.read_text())
    del data["head"]
    path.write_text(json.dumps(data))
    assert RecognizerConfig.load(path).head == "lstm"


def test_runs_saved_before_normalize_existed_load_without_it(tmp_path):
    path = tmp_path / "config.json"
    RecognizerConfig(charset="01").save(path)
    data = json.loads(path.read_text())
    del data["normalize"]
    path.write_text(json.dumps(data))
    assert RecognizerConfig.load(path).normalize == "none"
