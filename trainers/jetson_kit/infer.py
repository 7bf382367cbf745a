#!/usr/bin/env python3
"""Read product-code lines with an exported model: needs only numpy, OpenCV and onnxruntime or TensorRT.

Everything the model needs beyond its weights (input size, resize rule, charset,
CTC blank) comes from metadata.json, so this file runs on a Jetson without
TensorFlow and without synthtext-industrial. It reproduces the recognizer's
preprocessing (trainers.recognizer.preprocess_line) exactly; a test checks that.

    python3 infer.py IMAGE [IMAGE ...]                       # onnxruntime, ../recognizer.onnx
    python3 infer.py --engine recognizer_fp16.engine IMAGE   # TensorRT engine from build_engine.sh
    python3 infer.py --repeat 200 IMAGE                      # also print the median latency

Prints `path<TAB>text<TAB>confidence` per image, like `synthtext-industrial predict`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
SUPPORTED_SCHEMA = 1


def load_metadata(path: str | Path) -> dict:
    meta = json.loads(Path(path).read_text(encoding="utf-8"))
    if meta.get("schema_version") != SUPPORTED_SCHEMA:
        raise SystemExit(f"{path}: metadata schema version {meta.get('schema_version')} is not "
                         f"{SUPPORTED_SCHEMA}; use the infer.py exported with it")
    if meta.get("model") != "recognizer":
        raise SystemExit(f"{path}: this script reads recognizer exports, not {meta.get('model')!r}")
    return meta


def preprocess(image: np.ndarray, meta: dict) -> np.ndarray:
    """A grayscale line image as the model's input: [H, W, 1] float32 pixels 0-255 (see metadata 'preprocess')."""
    height, width = meta["input"]["height"], meta["input"]["width"]
    if image.ndim == 3:
        image = image[..., 0]
    interpolation = cv2.INTER_AREA if image.shape[0] > height else cv2.INTER_LINEAR
    resized = cv2.resize(image, (width, height), interpolation=interpolation)
    return resized.astype(np.float32)[..., None]


def decode(logits: np.ndarray, meta: dict) -> tuple[str, float]:
    """CTC best path of one line's [steps, classes] logits: (text, product of the emitted steps' probabilities)."""
    charset, blank = meta["decode"]["charset"], meta["decode"]["blank_index"]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    best = probs.argmax(axis=-1)
    chars, previous = [], None
    for k in best.tolist():
        if k != previous and k != blank:
            chars.append(charset[k])
        previous = k
    emitted = probs.max(axis=-1)[best != blank]
    return "".join(chars), float(np.prod(emitted)) if emitted.size else 1.0


class OnnxRuntimeModel:
    """The ONNX model on onnxruntime (CUDA or TensorRT execution providers where installed, else CPU)."""

    def __init__(self, path: str | Path, threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        wanted = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
        providers = [p for p in wanted if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input = self.session.get_inputs()[0].name
        self.max_batch = None if isinstance(self.session.get_inputs()[0].shape[0], str) else 1

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: batch})[0]


class TensorRTModel:
    """A serialized TensorRT engine (build_engine.sh), run with pycuda. Thin on purpose: see README.md."""

    def __init__(self, path: str | Path):
        import pycuda.autoinit  # noqa: F401  (creates the CUDA context)
        import pycuda.driver as cuda
        import tensorrt as trt

        self.cuda, self.trt = cuda, trt
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
        self.context = self.engine.create_execution_context()
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input = next(n for n in self.names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output = next(n for n in self.names if n != self.input)
        self.max_batch = self.engine.get_tensor_profile_shape(self.input, 0)[2][0]
        self.stream = cuda.Stream()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        cuda = self.cuda
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self.context.set_input_shape(self.input, batch.shape)
        out = np.empty(tuple(self.context.get_tensor_shape(self.output)), np.float32)
        d_in, d_out = cuda.mem_alloc(batch.nbytes), cuda.mem_alloc(out.nbytes)
        cuda.memcpy_htod_async(d_in, batch, self.stream)
        self.context.set_tensor_address(self.input, int(d_in))
        self.context.set_tensor_address(self.output, int(d_out))
        self.context.execute_async_v3(self.stream.handle)
        cuda.memcpy_dtoh_async(out, d_out, self.stream)
        self.stream.synchronize()
        return out


def read(model, meta: dict, images: list[np.ndarray], batch_size: int = 16) -> list[tuple[str, float]]:
    """(text, confidence) per grayscale line image."""
    step = min(batch_size, model.max_batch or batch_size)
    results = []
    for start in range(0, len(images), step):
        batch = np.stack([preprocess(im, meta) for im in images[start:start + step]])
        results += [decode(row, meta) for row in model(batch)]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", help="grayscale (or colour: first channel) line images")
    parser.add_argument("--metadata", default=str(HERE.parent / "metadata.json"))
    parser.add_argument("--model", default=None, help="ONNX file (default: the one metadata.json names)")
    parser.add_argument("--engine", default=None, help="a TensorRT engine instead of ONNX")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    parser.add_argument("--repeat", type=int, default=0, help="time this many single-image runs per image")
    parser.add_argument("--json", action="store_true", help="one JSON object per image")
    args = parser.parse_args(argv)

    meta = load_metadata(args.metadata)
    if args.engine:
        model = TensorRTModel(args.engine)
    else:
        model = OnnxRuntimeModel(args.model or Path(args.metadata).parent / meta["files"]["onnx"]["path"],
                                 args.threads)
    images = []
    for path in args.images:
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if image is None:
            print(f"cannot read {path} as an image", file=sys.stderr)
            return 2
        images.append(image)
    for path, image, (text, confidence) in zip(args.images, images, read(model, meta, images)):
        row = {"path": path, "text": text, "confidence": round(confidence, 3)}
        if args.repeat:
            batch = preprocess(image, meta)[None]
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                model(batch)
                times.append(time.perf_counter() - t0)
            row["latency_ms_median"] = round(1000 * float(np.median(times)), 3)
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            print("\t".join([path, text, f"{confidence:.3f}"]
                            + ([f"{row['latency_ms_median']:.3f} ms"] if args.repeat else [])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
