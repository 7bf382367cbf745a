"""Recognizer models: every backbone gives the sequence length the CTC rule needs."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from synthtext_industrial.train.backbones import BACKBONES  # noqa: E402
from synthtext_industrial.train.portable import preprocess  # noqa: E402
from synthtext_industrial.train.recognizer import RecognizerConfig, build_recognizer  # noqa: E402


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
