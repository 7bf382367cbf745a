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

What is model-specific (loading, serving function, metadata, decoding for parity) lives in a ModelKind keyed
by config.json's "model" field, so the spotter plugs in as a second kind.
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
    load: Callable[[Path, str], tuple]  # (run, "best" or "last") -> (keras model, config)
    describe: Callable[[object], dict]  # config -> metadata sections: input, preprocess, output, decode
    serving: Callable[[object, object], tuple[Callable, list]]  # (model, config) -> (tf function body, signature)
    texts: Callable[[np.ndarray, dict], list[str]]  # (outputs of a batch, metadata) -> comparable strings
    exporters: Callable | None = None  # (model, config, opset) -> {format: fn(target) -> details}; None: generic


def _recognizer_load(run: Path, which: str = "best"):
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
        **_image_input(config, "synthtext_industrial.train.portable.preprocess"),
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


def _spotter_load(run: Path, which: str = "best"):
    from ..train.runs import load_spotter

    model = load_spotter(run, which)
    return model, model.config


def _spotter_describe(config) -> dict:
    from ..train.spotter import STRIDE
    from ..train.text import Charset

    charset = Charset(config.charset)
    rows, cols = config.map_shape
    described = _image_input(config, "synthtext_industrial.train.portable.preprocess")
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


def _spotter_serving(model, config):
    raise NotImplementedError("spotter SavedModels are written by _spotter_exporters")


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
            from ai_edge_litert.interpreter import Interpreter

            options = {"optimizations": [tf.lite.Optimize.DEFAULT],
                       "target_spec": {"supported_types": [tf.float16]}} if fp16 else {}
            model.detector.export(str(target), format="litert", verbose=False, **options,
                                  input_signature=[tf.TensorSpec([1, h, w, 1], tf.float32, name="image")])
            model.reader.export(str(reader_path(target)), format="litert", verbose=False, **options,
                                input_signature=[tf.TensorSpec([1, *roi_shape], tf.float32, name="roi")])
            # which LiteRT output is which: match them to the Keras outputs on a random page
            x = np.random.default_rng(0).uniform(0, 255, (1, h, w, 1)).astype(np.float32)
            expected = [t.numpy() for t in model.detector(x, training=False)]
            interpreter = Interpreter(model_path=str(target))
            interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            interpreter.invoke()
            got = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
            order = []
            for e in expected:
                gaps = [np.abs(g - e).max() if g.shape == e.shape and k not in order else np.inf
                        for k, g in enumerate(got)]
                order.append(int(np.argmin(gaps)))
            return {"batch": 1, "reader": reader_path(target).name, "output_order": order,
                    "outputs": SPOTTER_DETECTOR_OUTPUTS,
                    "weights": "float16 (computed in float32 on CPU)" if fp16 else "float32",
                    "runtime": "ai-edge-litert"}
        return write

    return {"savedmodel": savedmodel, "onnx": onnx_files, "tflite-fp32": tflite(False), "tflite-fp16": tflite(True)}


KINDS: dict[str, ModelKind] = {
    "recognizer": ModelKind("recognizer", _recognizer_load, _recognizer_describe, _recognizer_serving,
                            _recognizer_texts),
    "spotter": ModelKind("spotter", _spotter_load, _spotter_describe, _spotter_serving, _spotter_texts,
                         _spotter_exporters),
}


def model_kind(run: str | Path) -> ModelKind:
    """The ModelKind of a trained run; RunError (a ValueError) if it is not a trained run (train.runs.run_kind)."""
    kind = run_kind(run, trained=True)
    if kind not in KINDS:
        raise RunError(f"{run} is a {kind} run; its export is not written yet (export a recognizer or spotter run)")
    return KINDS[kind]


def parse_formats(text: str | Sequence[str]) -> list[str]:
    names = [f.strip() for f in (text.split(",") if isinstance(text, str) else text) if f.strip()]
    unknown = [f for f in names if f not in FORMATS]
    if unknown or not names:
        raise ValueError(f"unknown export format {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


def artefact_path(meta_or_kind: dict | str, fmt: str) -> str:
    kind = meta_or_kind if isinstance(meta_or_kind, str) else meta_or_kind["model"]
    if kind == "spotter":  # two graphs: the detector's path is given, the reader's is in files[fmt]["reader"]
        kind = "spotter_detector"
    return {"savedmodel": "savedmodel", "onnx": f"{kind}.onnx", "tflite-fp32": f"{kind}_fp32.tflite",
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

    spec = tf.TensorSpec([1, config.height, config.width, 1], tf.float32, name="image")
    options = {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_types": [tf.float16]}} \
        if fp16 else {}
    model.export(str(target), format="litert", input_signature=[spec], verbose=False, **options)
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
    from ..train.portable import GRAMMAR_BEAM_WIDTH

    meta["decode"]["grammar"] = grammar.to_json()
    meta["decode"]["grammar_decode"] = {
        "method": "ctc_grammar_beam", "beam_width": GRAMMAR_BEAM_WIDTH, "min_char_prob": 1e-5, "min_ratio": 0.01,
        "rule": "CTC prefix beam search over the automaton (start state 0; per state [characters, next state] "
                "pairs; accepting states): a prefix grows only along its edges, by characters of probability >= "
                "min_char_prob; the result is the most probable labelling the beams keep that ends in an "
                "accepting state; the line is rejected when there is none, or when it is less than min_ratio "
                "times as probable as the best path",
        "confidence": "the labelling's probability (sum over the paths the beams kept)",
        "reference": "synthtext_industrial.train.portable.decode_line; jetson/infer.py: decode_line (the same code)"}
    return meta


def export_run(run: str | Path, out: str | Path, formats: Sequence[str] = FORMATS, overwrite: bool = False,
               which: str = "best", opset: int = ONNX_OPSET, log: Callable[[str], None] = print,
               grammar="run") -> dict:
    """Write the artefacts of `formats`, metadata.json and the Jetson kit into `out`; returns the metadata.

    which: "best" (the epoch with the best validation string accuracy) or "last" (the latest checkpoint).
    opset: ONNX opset; 17 by default, 13 for TensorRT 8.2 (JetPack 4.6, the last for the Jetson Nano).
    grammar: for a recognizer, the Grammar metadata.json carries for the device's decoder; "run" (default) the
    grammar of the recipes the run was trained on where they are found, None for none.
    Parity is a separate step (export.parity.parity_report) so it can be re-run on other images."""
    import keras
    import tensorflow as tf

    from .. import __version__

    run, out = Path(run), Path(out)
    formats = parse_formats(formats)
    kind = model_kind(run)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; pass --overwrite or choose another -o")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', not {which!r}")
    if isinstance(grammar, str):  # "run"
        from ..train.grammar import run_grammar

        grammar = run_grammar(run) if kind.name == "recognizer" else None
    model, config = kind.load(run, which)
    digest = weights_digest(model)
    meta = {"schema": "synthtext-industrial/export", "schema_version": METADATA_SCHEMA_VERSION,
            "model": kind.name, "model_version": f"{run.resolve().name}-{digest[:12]}", "weights_sha256": digest,
            "weights": which,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": {"synthtext_industrial": __version__, "tensorflow": tf.__version__,
                         "keras": keras.__version__},
            "config": {k: v for k, v in vars(config).items() if not k.startswith("_")}, **kind.describe(config),
            "training": _training_summary(run), "files": {}}
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
        target = out / artefact_path(kind.name, fmt)
        t0 = time.perf_counter()
        details = exporters[fmt](target)
        meta["files"][fmt] = {"path": target.name, "bytes": size_bytes(target), "sha256": file_digest(target),
                              **details}
        log(f"{fmt:<12} {target} ({size_bytes(target) / 1e6:.2f} MB, {time.perf_counter() - t0:.1f} s)")
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
    h, w = meta["input"]["height"], meta["input"]["width"]
    script = (KIT / "build_engine.sh").read_text().replace("@HEIGHT@", str(h)).replace("@WIDTH@", str(w)) \
        .replace("@MODEL@", "spotter_detector" if meta["model"] == "spotter" else meta["model"])
    (kit / "build_engine.sh").write_text(script)
    (kit / "build_engine.sh").chmod(0o755)
    (kit / "infer.py").chmod(0o755)
