"""Export a trained run for deployment (SavedModel, ONNX, TFLite FP32/FP16) with the metadata a runtime needs.

EXPORT/
  metadata.json        preprocessing, output layout, charset and CTC blank, versions, recipe hashes, accuracy
  savedmodel/          TF SavedModel: `serving_default` takes uint8 [B, H, W, 1], returns logits, labels, text
  recognizer.onnx      tf2onnx, opset 17, dynamic batch: float32 [B, H, W, 1] pixels 0-255 -> logits
  recognizer_fp32.tflite / recognizer_fp16.tflite   LiteRT, static batch 1 (Keras 3 RNNs need it)
  report.json          parity of every artefact with the Keras model (trainers.parity)
  jetson/              TensorRT / TF-TRT build scripts, standalone infer.py, README.md

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


def _recognizer_load(run: Path, which: str = "best"):
    from .fit_recognizer import load_recognizer

    return load_recognizer(run, which)


def _recognizer_describe(config) -> dict:
    from .text import Charset

    charset = Charset(config.charset)
    return {
        "input": {"name": "image", "layout": "NHWC", "height": config.height, "width": config.width, "channels": 1,
                  "dtype": "float32", "range": [0, 255]},
        "preprocess": {
            "color": "grayscale; of a 3-channel image take channel 0 (OpenCV IMREAD_GRAYSCALE when reading files)",
            "resize": {"library": "opencv", "function": "cv2.resize", "size_hw": [config.height, config.width],
                       "keep_aspect_ratio": False,
                       "interpolation": "INTER_AREA if source height > input height else INTER_LINEAR",
                       "dtype": "uint8 in, uint8 out (OpenCV rounds)"},
            "normalisation": "none outside the model: cast the resized uint8 to float32 (0-255); the model "
                             "rescales by 1/255 itself",
            "reference": "trainers.recognizer.preprocess_line; jetson/infer.py:preprocess",
        },
        "output": {"name": "logits", "layout": "[batch, steps, classes]", "steps": config.sequence_length,
                   "classes": charset.num_classes, "activation": "none: logits (softmax gives probabilities)"},
        "decode": {"method": "ctc_greedy", "charset": config.charset, "blank_index": charset.blank,
                   "rule": "argmax per step, merge repeats, drop blanks, map index i to charset[i]",
                   "confidence": "product over emitted steps of the max softmax probability"},
    }


def _recognizer_serving(model, config):
    """SavedModel endpoint: uint8 line batch -> logits, per-step labels and scores, and the decoded text."""
    import tensorflow as tf

    from .text import Charset

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
    from .text import ctc_greedy

    chars = meta["decode"]["charset"]
    return ["".join(chars[i] for i in labels) for labels in ctc_greedy(logits, meta["decode"]["blank_index"])]


KINDS: dict[str, ModelKind] = {
    "recognizer": ModelKind("recognizer", _recognizer_load, _recognizer_describe, _recognizer_serving,
                            _recognizer_texts),
}


def run_kind(run: str | Path) -> ModelKind:
    """The ModelKind of a run directory; ValueError if it is not a trained run this exporter knows."""
    run = Path(run)
    config_path = run / "config.json"
    if not config_path.exists():
        raise ValueError(f"{run} is not a training run: it has no config.json")
    kind = json.loads(config_path.read_text()).get("model", "recognizer")
    if kind not in KINDS:
        raise ValueError(f"{run} holds a {kind!r} model; export knows {', '.join(KINDS)}")
    if not (run / "best.weights.h5").exists() and not (run / "checkpoints").exists():
        raise ValueError(f"{run} has no trained weights yet")
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
    return {"savedmodel": "savedmodel", "onnx": f"{kind}.onnx", "tflite-fp32": f"{kind}_fp32.tflite",
            "tflite-fp16": f"{kind}_fp16.tflite"}[fmt]


def weights_digest(model) -> str:
    """sha256 over the weight arrays: the model version, independent of how the weights file was written."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()


def size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


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
    return {"data": [{k: d.get(k) for k in ("path", "recipe_sha256", "seed", "n", "lines")}
                     for d in training.get("data", [])],
            "val": training.get("val"), "settings": training.get("settings"),
            "best_epoch": metrics.get("best"), "epochs_trained": len(metrics.get("history", []))}


def export_run(run: str | Path, out: str | Path, formats: Sequence[str] = FORMATS, overwrite: bool = False,
               which: str = "best", opset: int = ONNX_OPSET, log: Callable[[str], None] = print) -> dict:
    """Write the artefacts of `formats`, metadata.json and the Jetson kit into `out`; returns the metadata.

    which: "best" (the epoch with the best validation string accuracy) or "last" (the latest checkpoint).
    opset: ONNX opset; 17 by default, 13 for TensorRT 8.2 (JetPack 4.6, the last for the Jetson Nano).
    Parity is a separate step (trainers.parity.parity_report) so it can be re-run on other images."""
    import keras
    import tensorflow as tf

    from synthtext_industrial import __version__

    run, out = Path(run), Path(out)
    formats = parse_formats(formats)
    kind = run_kind(run)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; pass --overwrite or choose another -o")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', not {which!r}")
    model, config = kind.load(run, which)
    digest = weights_digest(model)
    meta = {"schema": "synthtext-industrial/export", "schema_version": METADATA_SCHEMA_VERSION,
            "model": kind.name, "model_version": f"{run.resolve().name}-{digest[:12]}", "weights_sha256": digest,
            "weights": which,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": {"synthtext_industrial": __version__, "tensorflow": tf.__version__,
                         "keras": keras.__version__},
            "config": {k: v for k, v in vars(config).items()}, **kind.describe(config),
            "training": _training_summary(run), "files": {}}
    exporters = {
        "savedmodel": lambda target: export_savedmodel(model, config, kind, target),
        "onnx": lambda target: export_onnx(model, config, target, opset),
        "tflite-fp32": lambda target: export_tflite(model, config, target, fp16=False),
        "tflite-fp16": lambda target: export_tflite(model, config, target, fp16=True),
    }
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
        .replace("@MODEL@", meta["model"])
    (kit / "build_engine.sh").write_text(script)
    (kit / "build_engine.sh").chmod(0o755)
    (kit / "infer.py").chmod(0o755)
