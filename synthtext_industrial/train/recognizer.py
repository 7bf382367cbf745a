"""CRNN-style line recognizer: backbone -> BiLSTM (+ each step's own features) -> per-step softmax, trained with CTC.

Line images are resized (stretched) to a fixed height x width, the way
deep-text-recognition-benchmark does by default: a fixed input shape keeps
export to TFLite/TensorRT simple and the preprocessing identical everywhere
(`portable.preprocess`, which the standalone Jetson script carries a generated copy of). LSTM rather than GRU:
it exports to ONNX as one fused op.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..core.config import StrictModel
from ..core.portable import GRAMMAR_BEAM_WIDTH, decode_line, preprocess
from .backbones import build_backbone, check_backbone, horizontal_stride
from .text import Charset, ctc_beam, ctc_greedy


class RecognizerConfig(StrictModel):
    """The recognizer's shape, saved as the run's config.json: a strict model like a recipe section (unknown keys
    and wrong types are errors)."""

    backbone: str = "small"
    height: int = 32
    width: int = 256
    lstm_units: int = 128
    charset: str = ""
    normalize: Literal["none", "contrast"] = "contrast"  # input normalisation; runs saved without it read "none"
    resize: Literal["stretch", "pad"] = "stretch"  # lines stretched to the input, or scaled keeping their aspect
    #                                               ratio and padded (portable.preprocess); saved runs without it
    #                                               read "stretch"
    head: Literal["lstm", "skip"] = "skip"  # skip: the logits also see each step's own features beside the
    #                                         BiLSTMs' output, so CTC leaves its all-blank start sooner on hard
    #                                         crops; runs saved before 0.7.0 have no skip and read "lstm"

    @property
    def keep_ratio(self) -> bool:
        return self.resize == "pad"

    def validate(self, max_label_length: int | None = None) -> None:
        check_backbone(self.backbone)
        Charset(self.charset)
        steps = self.sequence_length
        if max_label_length is not None and steps < 2 * max_label_length:
            need = 2 * max_label_length * horizontal_stride(self.backbone)
            raise ValueError(f"lines of up to {max_label_length} characters need at least {2 * max_label_length} "
                             f"sequence steps, but width {self.width} gives {steps} with the {self.backbone} "
                             f"backbone; use --width {need} or more")

    def with_auto_width(self, max_label_length: int) -> "RecognizerConfig":
        """This config with width 0 replaced by the narrowest multiple of 32 (at least 128) that gives 1.5x the
        sequence steps CTC needs for the longest label: narrower inputs train and run faster."""
        if self.width > 0:
            return self
        stride = horizontal_stride(self.backbone)
        needed = 2 * max(1, max_label_length) * stride * 1.5
        return RecognizerConfig(**{**self.model_dump(), "width": max(128, int(-(-needed // 32)) * 32)})

    @property
    def sequence_length(self) -> int:
        return self.width // horizontal_stride(self.backbone)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"model": "recognizer", **self.model_dump()}, indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> "RecognizerConfig":
        data = json.loads(Path(path).read_text())
        data.pop("model", None)
        data.setdefault("normalize", "none")  # runs of 0.4.0 and before fed the backbone raw pixels
        data.setdefault("resize", "stretch")  # and runs of 0.5.0 and before stretched every line
        data.setdefault("head", "lstm")  # and runs before 0.7.0 had no skip path
        return cls(**data)


def build_recognizer(config: RecognizerConfig, unroll: bool = False):
    """keras.Model: [B, height, width, 1] float pixels 0-255 -> [B, T, len(charset) + 1] logits.

    `unroll` unrolls the LSTMs over their fixed number of steps: the same weights and outputs, about 10%
    faster training on CPU (no loop per step), but no cuDNN kernel on a GPU and no fused LSTM op in
    exports, so only training on CPU uses it.
    """
    import keras
    from keras import layers

    config.validate()
    inputs = keras.Input((config.height, config.width, 1), name="image")
    pixels = contrast_normalized(inputs) if config.normalize == "contrast" else inputs
    features = build_backbone(config.backbone, config.height, config.width)(pixels)
    h, t, c = features.shape[1], features.shape[2], features.shape[3]
    x = layers.Permute((2, 1, 3))(features)  # [B, T, h, C]: one step per column
    x = layers.Reshape((t, h * c))(x)
    x = local = layers.Dense(256, activation="relu")(x)
    for _ in range(2):
        x = layers.Bidirectional(layers.LSTM(config.lstm_units, return_sequences=True, unroll=unroll))(x)
    if config.head == "skip":
        x = layers.Concatenate(name="skip")([x, local])
    # float32 even under mixed precision (loop.precision): the CTC loss and the softmax want the full range
    logits = layers.Dense(Charset(config.charset).num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=f"recognizer_{config.backbone.replace('-', '_')}")


CONTRAST_STD = 48.0  # the spread every line is brought to, in 0-255 pixel units
CONTRAST_FLOOR = 4.0  # a flat line (std below this) is not amplified further: its noise is not text


def contrast_normalized(pixels):
    """Each line brought to mean 128 and std CONTRAST_STD, inside the model: a dim LCD behind dark glass and a
    bright label then look alike to the backbone, and exports and the Jetson kit get the same step for free
    (plain mean/variance ops, which ONNX and TFLite convert)."""
    from keras import ops

    mean = ops.mean(pixels, axis=(1, 2, 3), keepdims=True)
    std = ops.sqrt(ops.mean(ops.square(pixels - mean), axis=(1, 2, 3), keepdims=True))
    return (pixels - mean) * (CONTRAST_STD / ops.maximum(std, CONTRAST_FLOOR)) + 128.0


@dataclass
class LineReading:
    text: str
    confidence: float  # product of the best path's per-step probabilities over emitted characters
    logits: np.ndarray = field(repr=False)
    rejected: bool = False  # with a grammar: no string it accepts explains the logits (text is then "")
    unconstrained: str | None = None  # with a grammar: the greedy reading, whatever the grammar says


def read_lines(model, config: RecognizerConfig, images: list[np.ndarray], batch_size: int = 64,
               beam_width: int = 0, grammar=None) -> list[LineReading]:
    """Recognise a list of grayscale line images: greedy decoding, or beam search with beam_width > 0
    (confidence is then the labelling's probability).

    With a `grammar` (train/grammar.py: Grammar), the CTC prefix beam search keeps to the strings the grammar
    accepts (beam_width beams, GRAMMAR_BEAM_WIDTH when 0); a line no such string explains is rejected.
    """
    charset = Charset(config.charset)
    table = grammar.table(config.charset) if grammar is not None else None
    readings = []
    for start in range(0, len(images), batch_size):
        batch = np.stack([preprocess(im, config.height, config.width, config.keep_ratio) for im in images[start:start + batch_size]])
        logits = np.asarray(model(batch, training=False))
        if table is not None:
            for row in logits:
                text, confidence, rejected, greedy = decode_line(row, config.charset, charset.blank, table,
                                                                 beam_width or GRAMMAR_BEAM_WIDTH)
                readings.append(LineReading(text, confidence, row, rejected, greedy))
            continue
        if beam_width > 0:
            labellings, probabilities = ctc_beam(logits, charset.blank, beam_width)
            readings += [LineReading(charset.decode(labels), float(p), row)
                         for labels, p, row in zip(labellings, probabilities, logits)]
            continue
        probabilities = _softmax(logits)
        for labels, probs, row in zip(ctc_greedy(logits, charset.blank), probabilities, logits):
            best = probs.max(axis=-1)
            emitted = best[probs.argmax(axis=-1) != charset.blank]
            readings.append(LineReading(charset.decode(labels), float(np.prod(emitted)) if emitted.size else 1.0,
                                        row))
    return readings


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
