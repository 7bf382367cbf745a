"""Export a trained run for deployment (SavedModel, ONNX, TFLite FP32/FP16) with the metadata a runtime needs.

EXPORT/
  metadata.json        preprocessing, output layout, charset and CTC blank, versions, recipe hashes, accuracy
  savedmodel/          TF SavedModel: `serving_default` takes uint8 [B, H, W, 1], returns logits, labels, text
  recognizer.onnx      tf2onnx, opset 17, dynamic batch: float32 [B, H, W, 1] pixels 0-255 -> logits
  recognizer_fp32.tflite / recognizer_fp16.tflite   LiteRT, static batch 1 (Keras 3 RNNs need it)
  report.json          parity of every artefact with the Keras model (synthtext_industrial.export.parity)
  jetson/              TensorRT / TF-TRT build scripts, standalone infer.py, README.md

A spotter run is written as two graphs (detector: page -> features, score, geometry; reader: RoI features ->
logits): spotter_detector.onnx + spotter_reader.onnx, spotter_{detector,reader}_{fp32,fp16}.tflite, and a
SavedModel with signatures serving_default (detector) and read (reader); NMS, the RoI crop and CTC decoding
run in numpy (jetson_kit/infer.py). See docs/export.md, "Spotter exports".

An oriented detector run is one graph (page -> score, geometry, direction): detector.onnx,
detector_{fp32,fp16}.tflite, savedmodel/; its quads are decoded in numpy (portable.decode_quads). A reader
(reader.json: a detector run and a recognizer run, train/reader.py) is exported by export_reader into one folder:
both models' artefacts (detector_savedmodel/ and recognizer_savedmodel/ for SavedModels) and one metadata.json
with a section per model and a `reader` section (crop margins, reading order), read by jetson/infer.py's frame
mode. See docs/export.md, "Reader exports".

What is model-specific (loading, serving function, metadata, decoding for parity) lives in a ModelKind keyed
by config.json's "model" field, so the spotter and the detector plug in as further kinds.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..train.runs import RunError, run_kind

FORMATS = ("savedmodel", "onnx", "tflite-fp32", "tflite-fp16")
METADATA_SCHEMA_VERSION = 1
ONNX_OPSET = 17
KIT = Path(__file__).resolve().parent / "jetson_kit"


@dataclass(frozen=True)
class ModelKind:
    """What export and parity need to know about one kind of model."""
    name: str
    load: Callable[..., tuple]  # (run, "best" or "last", **config overrides) -> (keras model, config)
    describe: Callable[[object], dict]  # config -> metadata sections: input, preprocess, output, decode
    serving: Callable[[object, object], tuple[Callable, list]]  # (model, config) -> (tf function body, signature)
    texts: Callable[[np.ndarray, dict], list[str]]  # (outputs of a batch, metadata) -> comparable strings
    exporters: Callable | None = None  # (model, config, opset) -> {format: fn(target) -> details}; None: generic


def _recognizer_load(run: Path, which: str = "best", **_overrides):
    from ..train.runs import load_recognizer

    return load_recognizer(run, which)


def _image_input(config, reference: str) -> dict:
    """The input and preprocessing both model kinds share: a grayscale image stretched to the input size (or, for
    a recognizer with resize "pad", scaled keeping its aspect ratio and padded on the right with its mean)."""
    keep_ratio = bool(getattr(config, "keep_ratio", False))
    return {
        "input": {"name": "image", "layout": "NHWC", "height": config.height, "width": config.width, "channels": 1,
                  "dtype": "float32", "range": [0, 255]},
        "preprocess": {
            "color": "grayscale; of a 3-channel image take channel 0 (OpenCV IMREAD_GRAYSCALE when reading files)",
            "resize": {"library": "opencv", "function": "cv2.resize", "size_hw": [config.height, config.width],
                       "keep_aspect_ratio": keep_ratio,
                       **({"padding": "scale to the input height keeping the aspect ratio (width capped at the "
                                      "input width), then fill the columns to the right with the resized image's "
                                      "mean gray, rounded"} if keep_ratio else {}),
                       "interpolation": "INTER_AREA if source height > input height else INTER_LINEAR",
                       "dtype": "uint8 in, uint8 out (OpenCV rounds)"},
            "normalisation": "none outside the model: cast the resized uint8 to float32 (0-255); the model "
                             "rescales by 1/255 itself",
            "reference": f"{reference}; jetson/infer.py:preprocess",
        },
    }


def _recognizer_describe(config) -> dict:
    from ..train.text import Charset

    charset = Charset(config.charset)
    return {
        **_image_input(config, "synthtext_industrial.core.portable.preprocess"),
        "output": {"name": "logits", "layout": "[batch, steps, classes]", "steps": config.sequence_length,
                   "classes": charset.num_classes, "activation": "none: logits (softmax gives probabilities)"},
        "decode": {"method": "ctc_greedy", "charset": config.charset, "blank_index": charset.blank,
                   "rule": "argmax per step, merge repeats, drop blanks, map index i to charset[i]",
                   "confidence": "product over emitted steps of the max softmax probability"},
    }


def _recognizer_serving(model, config):
    """SavedModel endpoint: uint8 line batch -> logits, per-step labels and scores, and the decoded text."""
    import tensorflow as tf

    from ..train.text import Charset

    charset = Charset(config.charset)
    table = tf.constant(list(config.charset) + [""])

    def serve(image):
        logits = model(tf.cast(image, tf.float32), training=False)
        probabilities = tf.nn.softmax(logits, axis=-1)
        labels = tf.argmax(logits, axis=-1, output_type=tf.int32)
        previous = tf.pad(labels[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        keep = tf.logical_and(tf.not_equal(labels, charset.blank), tf.not_equal(labels, previous))
        text = tf.strings.reduce_join(tf.ragged.boolean_mask(tf.gather(table, labels), keep), axis=-1)
        return {"logits": logits, "labels": labels, "scores": tf.reduce_max(probabilities, axis=-1), "text": text}

    spec = tf.TensorSpec([None, config.height, config.width, 1], tf.uint8, name="image")
    return serve, [spec]


def _recognizer_texts(logits: np.ndarray, meta: dict) -> list[str]:
    from ..train.text import ctc_greedy

    chars = meta["decode"]["charset"]
    return ["".join(chars[i] for i in labels) for labels in ctc_greedy(logits, meta["decode"]["blank_index"])]


# ----------------------------------------------------------------------------- spotter
# Two graphs: the detector (page -> features, score map, geometry map) and the reader (RoI features -> CTC
# logits). Box decoding, NMS, the RoI crop and CTC decoding run in numpy between them (jetson_kit/infer.py),
# so no artefact needs NMS or CropAndResize ops, which TFLite and TensorRT handle badly.

SPOTTER_DETECTOR_OUTPUTS = ["features", "score", "geometry"]


def _spotter_load(run: Path, which: str = "best", **overrides):
    from ..train.runs import load_spotter

    model = load_spotter(run, which, **overrides)
    return model, model.config


def _spotter_describe(config) -> dict:
    from ..train.spotter import STRIDE
    from ..train.text import Charset

    charset = Charset(config.charset)
    rows, cols = config.map_shape
    described = _image_input(config, "synthtext_industrial.core.portable.preprocess")
    described["preprocess"]["padding"] = (f"none outside the model: it zero-pads the input at the bottom/right to "
                                          f"{config.padded_height}x{config.padded_width} (multiples of 32) itself")
    return {
        **described,
        "output": {"detector": {"features": [None, rows, cols, config.fusion_channels], "score": [None, rows, cols, 1],
                                "geometry": [None, rows, cols, 4]},
                   "reader": {"input": "roi", "shape": [None, config.roi_height, config.roi_width,
                                                       config.fusion_channels],
                              "output": "logits", "logits": [None, config.roi_width, charset.num_classes]},
                   "name": "logits", "steps": config.roi_width, "classes": charset.num_classes},
        "spot": {"stride": STRIDE, "map_shape": [rows, cols], "score_threshold": config.score_threshold,
                 "nms_iou": config.nms_iou, "roi_height": config.roi_height, "roi_width": config.roi_width,
                 "detector_outputs": SPOTTER_DETECTOR_OUTPUTS,
                 "geometry": "distances in input pixels from cell centre (k + 0.5) * stride to the box's top, "
                             "left, bottom, right",
                 "decode": "cells with score > score_threshold vote a box; locality-aware NMS (IoU > nms_iou "
                           "merges, score-weighted mean box, mean score); synthtext_industrial.train.spotter.decode_boxes",
                 "roi": "tf.image.crop_and_resize (bilinear, extrapolation 0) of the features with boxes "
                        "(y0, x0, y1, x1) = ((y/stride - 0.5)/(rows-1), (x/stride - 0.5)/(cols-1), ...)",
                 "page_boxes": "multiply x by page width / input width and y by page height / input height",
                 "reference": "jetson/infer.py: decode_boxes, roi_boxes, crop_and_resize, spot_page"},
        "decode": {"method": "ctc_greedy", "charset": config.charset, "blank_index": charset.blank,
                   "rule": "argmax per step, merge repeats, drop blanks, map index i to charset[i]"},
    }


def _serving_in_exporters(model, config):
    raise NotImplementedError("this kind writes its SavedModel with its own exporters")


def _spotter_texts(outputs, meta: dict) -> list[str]:
    return _recognizer_texts(outputs, meta)


def _rename_onnx_outputs(proto, names: list[str]) -> None:
    for value, name in zip(proto.graph.output, names):
        old = value.name
        for node in proto.graph.node:
            node.output[:] = [name if o == old else o for o in node.output]
            node.input[:] = [name if i == old else i for i in node.input]
        value.name = name


def _onnx(function, spec, names: list[str], target: Path, opset: int) -> list[str]:
    import onnx
    import tf2onnx

    proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset)
    _rename_onnx_outputs(proto, names)
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(target))
    return sorted({n.op_type for n in proto.graph.node})


def _spotter_exporters(model, config, opset: int) -> dict:
    import tensorflow as tf

    h, w = config.height, config.width
    roi_shape = (config.roi_height, config.roi_width, config.fusion_channels)

    def reader_path(target: Path) -> Path:
        return target.with_name(target.name.replace("detector", "reader"))

    def savedmodel(target: Path) -> dict:
        import keras

        archive = keras.export.ExportArchive()
        archive.track(model.detector)
        archive.track(model.reader)

        def detect(image):
            features, score, geometry = model.detector(tf.cast(image, tf.float32), training=False)
            return {"features": features, "score": score, "geometry": geometry}

        archive.add_endpoint("serving_default", detect,
                             input_signature=[tf.TensorSpec([None, h, w, 1], tf.uint8, name="image")])
        archive.add_endpoint("read", lambda roi: {"logits": model.reader(roi, training=False)},
                             input_signature=[tf.TensorSpec([None, *roi_shape], tf.float32, name="roi")])
        archive.write_out(str(target), verbose=False)
        return {"signature": "serving_default", "signatures": {
                    "serving_default": "image: uint8 [batch, H, W, 1] -> features, score, geometry",
                    "read": "roi: float32 [N, roi_h, roi_w, C] -> logits"}, "batch": "dynamic"}

    def onnx_files(target: Path) -> dict:
        import tf2onnx

        image = tf.TensorSpec([None, h, w, 1], tf.float32, name="image")
        ops = _onnx(tf.function(lambda image: list(model.detector(image, training=False))), image,
                    SPOTTER_DETECTOR_OUTPUTS, target, opset)
        roi = tf.TensorSpec([None, *roi_shape], tf.float32, name="roi")
        ops += _onnx(tf.function(lambda roi: model.reader(roi, training=False)), roi, ["logits"],
                     reader_path(target), opset)
        return {"opset": opset, "reader": reader_path(target).name, "input": "image", "reader_input": "roi",
                "outputs": SPOTTER_DETECTOR_OUTPUTS, "reader_output": "logits", "batch": "dynamic",
                "ops": sorted(set(ops)), "tf2onnx": tf2onnx.__version__}

    def tflite(fp16: bool):
        def write(target: Path) -> dict:
            _litert(model.detector, target, tf.TensorSpec([1, h, w, 1], tf.float32, name="image"), fp16)
            _litert(model.reader, reader_path(target), tf.TensorSpec([1, *roi_shape], tf.float32, name="roi"), fp16)
            return {"batch": 1, "reader": reader_path(target).name,
                    "output_order": _litert_output_order(target, model.detector, (1, h, w, 1)),
                    "outputs": SPOTTER_DETECTOR_OUTPUTS,
                    "weights": "float16 (computed in float32 on CPU)" if fp16 else "float32",
                    "runtime": "ai-edge-litert"}
        return write

    return {"savedmodel": savedmodel, "onnx": onnx_files, "tflite-fp32": tflite(False), "tflite-fp16": tflite(True)}


def _litert(model, target: Path, spec, fp16: bool) -> None:
    """A Keras model to a LiteRT file with a static input (`spec`); float16 weights with `fp16`."""
    import tensorflow as tf

    options = {"optimizations": [tf.lite.Optimize.DEFAULT],
               "target_spec": {"supported_types": [tf.float16]}} if fp16 else {}
    model.export(str(target), format="litert", verbose=False, input_signature=[spec], **options)


def _litert_output_order(target: Path, model, shape: tuple) -> list[int]:
    """Which LiteRT output is which of the Keras model's outputs: matched on a random input of `shape`."""
    from ai_edge_litert.interpreter import Interpreter

    x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    expected = [np.asarray(t) for t in model(x, training=False)]
    interpreter = Interpreter(model_path=str(target))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    order = []
    for e in expected:
        gaps = [np.abs(g - e).max() if g.shape == e.shape and k not in order else np.inf for k, g in enumerate(got)]
        order.append(int(np.argmin(gaps)))
    return order


# ----------------------------------------------------------------------------- oriented detector
# One graph: page -> score, geometry, direction maps at stride 4; the quads are decoded in numpy
# (portable.decode_quads, which jetson/infer.py carries), so no artefact holds NMS.

DETECTOR_OUTPUTS = ["score", "geometry", "direction"]


def _detector_load(run: Path, which: str = "best", **overrides):
    from ..train.runs import load_detector

    detector = load_detector(run, which, **overrides)
    return detector.model, detector.config


def _detector_describe(config) -> dict:
    from ..train.spotter import STRIDE

    rows, cols = config.map_shape
    described = _image_input(config, "synthtext_industrial.core.portable.letterbox")
    described["preprocess"]["resize"].update(
        keep_aspect_ratio=True,
        fit="scale by min(input width / frame width, input height / frame height), sides rounded, then fill the "
            "rest of the input (right and bottom) with the resized frame's mean gray, rounded; quads come back in "
            "frame pixels divided by (resized width / frame width, resized height / frame height)",
        interpolation="INTER_AREA if frame height > resized height else INTER_LINEAR")
    described["preprocess"]["padding"] = (f"none outside the model: it zero-pads the input at the bottom/right to "
                                          f"{config.padded_height}x{config.padded_width} (multiples of 32) itself")
    return {
        **described,
        "output": {"score": [None, rows, cols, 1], "geometry": [None, rows, cols, 4],
                   "direction": [None, rows, cols, 2], "names": DETECTOR_OUTPUTS},
        "detect": {"stride": STRIDE, "map_shape": [rows, cols], "score_threshold": config.score_threshold,
                   "nms_iou": config.nms_iou, "outputs": DETECTOR_OUTPUTS,
                   "geometry": "distances in input pixels from cell centre ((col + 0.5) * stride, (row + 0.5) * "
                               "stride) to the rotated box's top, left, bottom and right sides, in the box's frame",
                   "direction": "(cos, sin) of the text's reading direction, a unit vector",
                   "decode": "cells with score > score_threshold restore their rotated box; NMS on polygon IoU > "
                             "nms_iou keeps the best box of each group as the score-weighted mean of the group's "
                             "boxes that read the same way; quads clockwise from the text's top-left as read",
                   "frame_quads": "multiply x by frame width / input width and y by frame height / input height",
                   "reference": "synthtext_industrial.core.portable.decode_quads; jetson/infer.py: decode_quads "
                                "(the same code)"},
    }


def _no_texts(outputs, meta: dict) -> list[str]:
    raise NotImplementedError("a detector reads no text: its parity is the reader's frame parity")


def _page_model_exporters(model, config, opset: int) -> dict:
    """Writers of a one-graph, several-output page model (the oriented detector): SavedModel, ONNX, LiteRT."""
    import tensorflow as tf

    h, w = config.height, config.width

    def savedmodel(target: Path) -> dict:
        import keras

        archive = keras.export.ExportArchive()
        archive.track(model)

        def detect(image):
            return dict(zip(DETECTOR_OUTPUTS, model(tf.cast(image, tf.float32), training=False)))

        archive.add_endpoint("serving_default", detect,
                             input_signature=[tf.TensorSpec([None, h, w, 1], tf.uint8, name="image")])
        archive.write_out(str(target), verbose=False)
        return {"signature": "serving_default", "input": "image: uint8 [batch, H, W, 1] (resized as in preprocess)",
                "outputs": DETECTOR_OUTPUTS, "batch": "dynamic"}

    def onnx_file(target: Path) -> dict:
        import tf2onnx

        image = tf.TensorSpec([None, h, w, 1], tf.float32, name="image")
        ops = _onnx(tf.function(lambda image: list(model(image, training=False))), image, DETECTOR_OUTPUTS,
                    target, opset)
        return {"opset": opset, "input": "image", "outputs": DETECTOR_OUTPUTS, "batch": "dynamic", "ops": ops,
                "tf2onnx": tf2onnx.__version__}

    def tflite(fp16: bool):
        def write(target: Path) -> dict:
            _litert(model, target, tf.TensorSpec([1, h, w, 1], tf.float32, name="image"), fp16)
            return {"batch": 1, "outputs": DETECTOR_OUTPUTS,
                    "output_order": _litert_output_order(target, model, (1, h, w, 1)),
                    "weights": "float16 (computed in float32 on CPU)" if fp16 else "float32",
                    "runtime": "ai-edge-litert"}
        return write

    return {"savedmodel": savedmodel, "onnx": onnx_file, "tflite-fp32": tflite(False), "tflite-fp16": tflite(True)}


KINDS: dict[str, ModelKind] = {
    "recognizer": ModelKind("recognizer", _recognizer_load, _recognizer_describe, _recognizer_serving,
                            _recognizer_texts),
    "spotter": ModelKind("spotter", _spotter_load, _spotter_describe, _serving_in_exporters, _spotter_texts,
                         _spotter_exporters),
    "detector": ModelKind("detector", _detector_load, _detector_describe, _serving_in_exporters, _no_texts,
                          _page_model_exporters),
}


def model_kind(run: str | Path) -> ModelKind:
    """The ModelKind of a trained run; RunError (a ValueError) if it is not a trained run (train.runs.run_kind)."""
    kind = run_kind(run, trained=True)
    if kind not in KINDS:
        raise RunError(f"{run} is a {kind} run; its export is not written yet (export a recognizer, spotter, "
                       f"detector or reader run)")
    return KINDS[kind]


def parse_formats(text: str | Sequence[str]) -> list[str]:
    names = [f.strip() for f in (text.split(",") if isinstance(text, str) else text) if f.strip()]
    unknown = [f for f in names if f not in FORMATS]
    if unknown or not names:
        raise ValueError(f"unknown export format {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


def artefact_path(meta_or_kind: dict | str, fmt: str, in_reader: bool = False) -> str:
    """An artefact's file name in an export folder; `in_reader`: in a reader's export, where the detector's and the
    recognizer's SavedModels sit side by side."""
    kind = meta_or_kind if isinstance(meta_or_kind, str) else meta_or_kind["model"]
    if kind == "spotter":  # two graphs: the detector's path is given, the reader's is in files[fmt]["reader"]
        kind = "spotter_detector"
    return {"savedmodel": f"{kind}_savedmodel" if in_reader else "savedmodel", "onnx": f"{kind}.onnx",
            "tflite-fp32": f"{kind}_fp32.tflite",
            "tflite-fp16": f"{kind}_fp16.tflite"}[fmt]


def weights_digest(model) -> str:
    """sha256 over the weight arrays: the model version, independent of how the weights file was written."""
    digest = hashlib.sha256()
    parts = [model.detector, model.reader] if hasattr(model, "detector") else [model]  # a spotter: both graphs
    for w in (w for part in parts for w in part.get_weights()):
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else _companions(path)
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()


def _companions(path: Path) -> list[Path]:
    """A spotter detector file and its reader file; any other artefact alone."""
    path = Path(path)
    reader = path.with_name(path.name.replace("spotter_detector", "spotter_reader"))
    return [path, reader] if reader != path and reader.exists() else [path]


def size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for q in _companions(path) for p in ([q] if q.is_file() else q.rglob("*"))
               if p.is_file())


def export_savedmodel(model, config, kind: ModelKind, target: Path) -> dict:
    """keras.export.ExportArchive tracks the model's variables (a plain tf.saved_model.save of a lambda does not)."""
    import keras

    serve, signature = kind.serving(model, config)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    archive.write_out(str(target), verbose=False)
    return {"signature": "serving_default", "input": "image: uint8 [batch, H, W, 1] (resized as in preprocess)",
            "outputs": ["logits", "labels", "scores", "text"], "batch": "dynamic"}


def export_onnx(model, config, target: Path, opset: int = ONNX_OPSET) -> dict:
    import onnx
    import tensorflow as tf
    import tf2onnx

    spec = tf.TensorSpec([None, config.height, config.width, 1], tf.float32, name="image")
    function = tf.function(lambda image: model(image, training=False))
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset)
    old = proto.graph.output[0].name
    for node in proto.graph.node:  # name the output "logits" instead of tf2onnx's Identity:0
        node.output[:] = ["logits" if o == old else o for o in node.output]
    proto.graph.output[0].name = "logits"
    for value in (proto.graph.input[0], proto.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(target))
    ops = sorted({n.op_type for n in proto.graph.node})
    return {"opset": opset, "input": "image", "output": "logits", "batch": "dynamic", "ops": ops,
            "tf2onnx": tf2onnx.__version__}


def export_tflite(model, config, target: Path, fp16: bool) -> dict:
    """LiteRT through Keras' exporter with a static batch of 1 (Keras 3 LSTMs do not convert with a dynamic one)."""
    import tensorflow as tf

    _litert(model, target, tf.TensorSpec([1, config.height, config.width, 1], tf.float32, name="image"), fp16)
    return {"batch": 1, "weights": "float16 (computed in float32 on CPU)" if fp16 else "float32",
            "runtime": "ai-edge-litert"}


def _training_summary(run: Path) -> dict:
    def read(name):
        path = run / name
        return json.loads(path.read_text()) if path.exists() else {}

    training, metrics = read("training.json"), read("metrics.json")
    return {"data": [{**{k: d.get(k) for k in ("path", "recipe_sha256", "seed", "n", "lines")},
                      **({"kind": d["kind"]} if "kind" in d else {})}  # "lines": adapt's pseudo-labelled lines
                     for d in training.get("data", [])],
            **({"init": training["init"]} if training.get("init") else {}),  # the run a fine-tune started from
            "val": training.get("val"), "settings": training.get("settings"),
            "best_epoch": metrics.get("best"), "epochs_trained": len(metrics.get("history", []))}


def add_grammar(meta: dict, grammar) -> dict:
    """metadata.json's decode section with a grammar (train/grammar.py: Grammar) the device decodes with."""
    from ..core.portable import GRAMMAR_BEAM_WIDTH

    meta["decode"]["grammar"] = grammar.to_json()
    meta["decode"]["grammar_decode"] = {
        "method": "ctc_grammar_beam", "beam_width": GRAMMAR_BEAM_WIDTH, "min_char_prob": 1e-5, "min_ratio": 0.01,
        "rule": "CTC prefix beam search over the automaton (start state 0; per state [characters, next state] "
                "pairs; accepting states): a prefix grows only along its edges, by characters of probability >= "
                "min_char_prob; the result is the most probable labelling the beams keep that ends in an "
                "accepting state; the line is rejected when there is none, or when it is less than min_ratio "
                "times as probable as the best path",
        "confidence": "the labelling's probability (sum over the paths the beams kept)",
        "reference": "synthtext_industrial.core.portable.decode_line; jetson/infer.py: decode_line (the same code)"}
    return meta


def export_run(run: str | Path, out: str | Path, formats: Sequence[str] = FORMATS, overwrite: bool = False,
               which: str = "best", opset: int = ONNX_OPSET, log: Callable[[str], None] = print,
               grammar="run") -> dict:
    """Write the artefacts of `formats`, metadata.json and the Jetson kit into `out`; returns the metadata.

    which: "best" (the epoch with the best validation string accuracy) or "last" (the latest checkpoint).
    opset: ONNX opset; 17 by default, 13 for TensorRT 8.2 (JetPack 4.6, the last for the Jetson Nano).
    grammar: for a recognizer, the Grammar metadata.json carries for the device's decoder; "run" (default) the
    grammar of the recipes the run was trained on where they are found, None for none.
    A reader folder (reader.json) is exported by export_reader.
    Parity is a separate step (export.parity.parity_report) so it can be re-run on other images."""
    from ..train.reader import is_reader

    if is_reader(run):
        return export_reader(run, out, formats, overwrite, which, opset, log, grammar="reader" if grammar == "run"
                             else grammar)
    run, out = Path(run), Path(out)
    formats = parse_formats(formats)
    kind = model_kind(run)
    _check_which(which)
    _empty_folder(out, overwrite)
    if isinstance(grammar, str):  # "run"
        from ..train.grammar import run_grammar

        grammar = run_grammar(run) if kind.name == "recognizer" else None
    meta = {**_envelope(kind.name, which), **export_model(run, out, kind, formats, which, opset, log, grammar)}
    write_metadata(out, meta)
    install_jetson_kit(out, meta)
    return meta


def _check_which(which: str) -> None:
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', not {which!r}")


def _empty_folder(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; pass --overwrite or choose another -o")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _envelope(model: str, which: str) -> dict:
    """metadata.json's first keys: schema, model kind, weights chosen, time and versions."""
    import keras
    import tensorflow as tf

    from .. import __version__

    return {"schema": "synthtext-industrial/export", "schema_version": METADATA_SCHEMA_VERSION, "model": model,
            "weights": which, "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": {"synthtext_industrial": __version__, "tensorflow": tf.__version__,
                         "keras": keras.__version__}}


def export_model(run: Path, out: Path, kind: ModelKind, formats: Sequence[str], which: str, opset: int,
                 log: Callable[[str], None], grammar=None, overrides: dict | None = None,
                 in_reader: bool = False) -> dict:
    """Write one run's artefacts into `out`; returns its metadata section: model version and weights hash,
    config, input, preprocessing, output, decoding (with `grammar` for a recognizer), training and files.
    `overrides`: config fields changed at load (a reader's detector input size and threshold)."""
    model, config = kind.load(run, which, **(overrides or {}))
    digest = weights_digest(model)
    meta = {"model": kind.name, "model_version": f"{Path(run).resolve().name}-{digest[:12]}",
            "weights_sha256": digest, "config": {k: v for k, v in vars(config).items() if not k.startswith("_")},
            **kind.describe(config), "training": _training_summary(Path(run)), "files": {}}
    if grammar is not None and kind.name == "recognizer":
        add_grammar(meta, grammar)
    exporters = {
        "savedmodel": lambda target: export_savedmodel(model, config, kind, target),
        "onnx": lambda target: export_onnx(model, config, target, opset),
        "tflite-fp32": lambda target: export_tflite(model, config, target, fp16=False),
        "tflite-fp16": lambda target: export_tflite(model, config, target, fp16=True),
    }
    if kind.exporters is not None:
        exporters = kind.exporters(model, config, opset)
    for fmt in formats:
        target = Path(out) / artefact_path(kind.name, fmt, in_reader)
        t0 = time.perf_counter()
        details = exporters[fmt](target)
        meta["files"][fmt] = {"path": target.name, "bytes": size_bytes(target), "sha256": file_digest(target),
                              **details}
        log(f"{fmt:<12} {target} ({size_bytes(target) / 1e6:.2f} MB, {time.perf_counter() - t0:.1f} s)")
    return meta


def export_reader(reader: str | Path, out: str | Path, formats: Sequence[str] = FORMATS, overwrite: bool = False,
                  which: str = "best", opset: int = ONNX_OPSET, log: Callable[[str], None] = print,
                  grammar="reader") -> dict:
    """Export a reader (reader.json) into one folder: its oriented detector at the reader's input size and
    threshold, its recognizer, one metadata.json describing both (sections `detector`, `recognizer`, `reader`)
    and the Jetson kit, whose infer.py then reads whole frames. grammar: "reader" (default) the recognizer's
    recipes' grammar when reader.json's `grammar` is on (as load_reader decodes), a Grammar, or None."""
    from ..core.portable import MIN_SIDE
    from ..train.reader import READER_FILE, ReaderConfig, reader_grammar

    reader, out = Path(reader), Path(out)
    formats = parse_formats(formats)
    _check_which(which)
    config = ReaderConfig.load(reader / READER_FILE)
    detector, recognizer = config.run_path(reader, "detector"), config.run_path(reader, "recognizer")
    for run, role, wanted in ((detector, "detector", "detector"), (recognizer, "recognizer", "recognizer")):
        try:
            found = run_kind(run, trained=True)
        except RunError as exc:
            raise RunError(f"{reader / READER_FILE}: its {role}: {exc}") from None
        if found != wanted:
            raise RunError(f"{reader / READER_FILE}: its {role} {run} is a {found} run; a reader export needs an "
                           f"oriented detector run (`train detector`) and a recognizer run"
                           + (" (export the spotter run itself)" if found == "spotter" else ""))
    if grammar == "reader":
        grammar = reader_grammar(config, recognizer)
    _empty_folder(out, overwrite)
    parts = {"detector": export_model(detector, out, KINDS["detector"], formats, which, opset, log,
                                      overrides=config.detector_overrides(), in_reader=True),
             "recognizer": export_model(recognizer, out, KINDS["recognizer"], formats, which, opset, log, grammar,
                                        in_reader=True)}
    digest = hashlib.sha256((parts["detector"]["weights_sha256"] + parts["recognizer"]["weights_sha256"]).encode())
    meta = {**_envelope("reader", which), "model_version": f"{reader.resolve().name}-{digest.hexdigest()[:12]}",
            "reader": {"crop_margin": list(config.crop_margin), "min_side": MIN_SIDE,
                       "order": "detections with a side under min_side px dropped; top to bottom by rounded mean y, "
                                "then left to right by min x (portable.reading_order)",
                       "crop": "each quad (frame pixels) rectified upright at the frame's resolution with "
                               "crop_margin (left, top, right, bottom) x the line height of context, border pixels "
                               "repeated (portable.rectified_crop), then the recognizer's preprocess",
                       "grammar": grammar is not None,
                       "reference": "synthtext_industrial.train.reader.read_frames; jetson/infer.py: read_frame"},
            **parts}
    write_metadata(out, meta)
    install_jetson_kit(out, meta)
    return meta


def write_metadata(out: Path, meta: dict) -> None:
    (Path(out) / "metadata.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n",
                                             encoding="utf-8")


def install_jetson_kit(out: Path, meta: dict) -> None:
    """Copy the standalone scripts into EXPORT/jetson, with the input shape filled into build_engine.sh."""
    kit = Path(out) / "jetson"
    kit.mkdir(exist_ok=True)
    for name in ("infer.py", "convert_tftrt.py", "README.md"):
        shutil.copy2(KIT / name, kit / name)
    engine = meta["detector"] if meta["model"] == "reader" else meta  # a reader: the detector's engine
    h, w = engine["input"]["height"], engine["input"]["width"]
    script = (KIT / "build_engine.sh").read_text().replace("@HEIGHT@", str(h)).replace("@WIDTH@", str(w)) \
        .replace("@MODEL@", "spotter_detector" if engine["model"] == "spotter" else engine["model"])
    (kit / "build_engine.sh").write_text(script)
    (kit / "build_engine.sh").chmod(0o755)
    (kit / "infer.py").chmod(0o755)
