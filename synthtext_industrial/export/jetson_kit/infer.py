#!/usr/bin/env python3
"""Read product-code lines with an exported model: needs only numpy, OpenCV and onnxruntime or TensorRT.

Everything the model needs beyond its weights (input size, resize rule, charset,
CTC blank) comes from metadata.json, so this file runs on a Jetson without
TensorFlow and without synthtext-industrial. It reproduces the recognizer's
preprocessing (synthtext_industrial.train.recognizer.preprocess_line) exactly; a test checks that.

    python3 infer.py IMAGE [IMAGE ...]                       # onnxruntime, ../recognizer.onnx
    python3 infer.py --engine recognizer_fp16.engine IMAGE   # TensorRT engine from build_engine.sh
    python3 infer.py --repeat 200 IMAGE                      # also print the median latency

Prints `path<TAB>text<TAB>confidence` per image, like `synthtext-industrial predict`.

A spotter export (two ONNX graphs: spotter_detector.onnx, spotter_reader.onnx) reads whole pages and prints
`path<TAB>x0,y0,x1,y1<TAB>text<TAB>score` per detected line (page pixels), like `predict` on a spotter run.
Box decoding (NMS), the RoI crop (tf.image.crop_and_resize, bilinear) and CTC decoding run here in numpy;
synthtext_industrial.export.parity uses these same functions, and tests check them against TensorFlow.
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
    if meta.get("model") not in ("recognizer", "spotter"):
        raise SystemExit(f"{path}: this script reads recognizer and spotter exports, not {meta.get('model')!r}")
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


# ----------------------------------------------------------------------------- spotter post-processing
# synthtext_industrial.train.spotter uses box_iou and decode_boxes from here; roi_boxes and crop_and_resize are numpy twins of
# synthtext_industrial.train.spotter.roi_boxes and tf.image.crop_and_resize (tested equal); parity uses all of them

def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of boxes (x0, y0, x1, y1)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def decode_boxes(score: np.ndarray, geometry: np.ndarray, threshold: float, nms_iou: float, stride: int = 4,
                 max_candidates: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [K, 4] x0, y0, x1, y1 in input pixels, scores [K]) of one page's score [h, w(, 1)] and geometry
    [h, w, 4] (distances to top, left, bottom, right): cells above threshold vote, locality-aware NMS merges."""
    score = np.asarray(score).reshape(score.shape[0], score.shape[1])
    r, c = np.nonzero(score > threshold)
    if r.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    s = score[r, c]
    order = np.argsort(-s, kind="stable")[:max_candidates]
    r, c, s = r[order], c[order], s[order]
    cy, cx = (r + 0.5) * stride, (c + 0.5) * stride
    t, left, b, right = (geometry[r, c, k] for k in range(4))
    candidates = np.stack([cx - left, cy - t, cx + right, cy + b], axis=1)
    alive = np.ones(len(s), bool)
    boxes, scores = [], []
    for k in range(len(s)):
        if not alive[k]:
            continue
        group = alive & (box_iou(candidates[k:k + 1], candidates)[0] > nms_iou)
        group[k] = True
        weights = s[group][:, None]
        boxes.append((candidates[group] * weights).sum(axis=0) / weights.sum())
        scores.append(float(s[group].mean()))
        alive &= ~group
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32)


def roi_boxes(boxes: np.ndarray, map_shape: tuple[int, int], stride: int = 4) -> np.ndarray:
    """Boxes (x0, y0, x1, y1) in input pixels -> normalised (y0, x0, y1, x1) on the feature map (cell k's
    centre is input pixel (k + 0.5) * stride), the convention of tf.image.crop_and_resize."""
    rows, cols = map_shape
    b = np.asarray(boxes, np.float32).reshape(-1, 4) / np.float32(stride) - np.float32(0.5)
    return np.stack([b[:, 1] / np.float32(rows - 1), b[:, 0] / np.float32(cols - 1),
                     b[:, 3] / np.float32(rows - 1), b[:, 2] / np.float32(cols - 1)], axis=1)


def crop_and_resize(features: np.ndarray, boxes: np.ndarray, box_index: np.ndarray, size: tuple[int, int],
                    extrapolation_value: float = 0.0) -> np.ndarray:
    """tf.image.crop_and_resize (bilinear) in numpy: features [B, H, W, C], boxes [N, 4] normalised
    (y0, x0, y1, x1), box_index [N] -> [N, crop_h, crop_w, C]; samples outside the map get extrapolation_value."""
    features = np.asarray(features, np.float32)
    _, height, width, channels = features.shape
    ch, cw = size
    out = np.full((len(boxes), ch, cw, channels), extrapolation_value, np.float32)
    for n, (y0, x0, y1, x1) in enumerate(np.asarray(boxes, np.float32)):
        image = features[int(box_index[n])]
        ys = (y0 * (height - 1) + np.arange(ch, dtype=np.float32) * ((y1 - y0) * (height - 1) / (ch - 1))) \
            if ch > 1 else np.array([0.5 * (y0 + y1) * (height - 1)], np.float32)
        xs = (x0 * (width - 1) + np.arange(cw, dtype=np.float32) * ((x1 - x0) * (width - 1) / (cw - 1))) \
            if cw > 1 else np.array([0.5 * (x0 + x1) * (width - 1)], np.float32)
        valid_y, valid_x = (ys >= 0) & (ys <= height - 1), (xs >= 0) & (xs <= width - 1)
        top = np.floor(ys).astype(int).clip(0, height - 1)
        bottom = np.ceil(ys).astype(int).clip(0, height - 1)
        left = np.floor(xs).astype(int).clip(0, width - 1)
        right = np.ceil(xs).astype(int).clip(0, width - 1)
        dy = (ys - np.floor(ys))[:, None, None]
        dx = (xs - np.floor(xs))[None, :, None]
        tl, tr = image[top][:, left], image[top][:, right]
        bl, br = image[bottom][:, left], image[bottom][:, right]
        upper = tl + (tr - tl) * dx
        lower = bl + (br - bl) * dx
        crop = upper + (lower - upper) * dy
        mask = valid_y[:, None] & valid_x[None, :]
        out[n][mask] = crop[mask]
    return out


def spot_page(detect, read_rois, meta: dict, page_input: np.ndarray, page_shape: tuple[int, int] | None = None):
    """End to end on one preprocessed page [H, W, 1] float32: [(box x0, y0, x1, y1, text, score)], boxes in
    input pixels, or in page pixels when page_shape (rows, cols of the original page) is given.

    detect: float32 [1, H, W, 1] -> (features, score, geometry); read_rois: [N, rh, rw, C] -> logits [N, T, K]."""
    spot = meta["spot"]
    features, score, geometry = detect(page_input[None].astype(np.float32))
    boxes, scores = decode_boxes(score[0], geometry[0], spot["score_threshold"], spot["nms_iou"], spot["stride"])
    if not len(boxes):
        return []
    rois = crop_and_resize(features, roi_boxes(boxes, tuple(spot["map_shape"]), spot["stride"]),
                           np.zeros(len(boxes), np.int32), (spot["roi_height"], spot["roi_width"]))
    logits = read_rois(rois)
    texts = [decode(row, meta)[0] for row in logits]
    if page_shape is not None:
        sx, sy = page_shape[1] / meta["input"]["width"], page_shape[0] / meta["input"]["height"]
        boxes = boxes * np.array([sx, sy, sx, sy])
    return [(tuple(float(v) for v in b), t, float(s)) for b, t, s in zip(boxes, texts, scores)]


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

    def outputs(self, batch: np.ndarray, names: list[str]) -> list[np.ndarray]:
        return self.session.run(names, {self.input: batch})


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
    if meta["model"] == "spotter":
        return spot_main(args, meta)
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


def spot_main(args, meta: dict) -> int:
    """Pages through the spotter's two ONNX graphs (detector, then reader on the numpy RoI crops)."""
    if args.engine:
        raise SystemExit("--engine: TensorRT engines are supported for recognizer exports only; spotter exports "
                         "run the two ONNX graphs on onnxruntime (its TensorRT provider where installed)")
    folder = Path(args.metadata).parent
    detector = OnnxRuntimeModel(args.model or folder / meta["files"]["onnx"]["path"], args.threads)
    reader = OnnxRuntimeModel(folder / meta["files"]["onnx"]["reader"], args.threads)
    names = meta["spot"]["detector_outputs"]

    def detect(x):
        return detector.outputs(x, names)

    for path in args.images:
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if image is None:
            print(f"cannot read {path} as an image", file=sys.stderr)
            return 2
        x = preprocess(image, meta)
        t0 = time.perf_counter()
        spots = spot_page(detect, reader, meta, x, image.shape[:2])
        elapsed = time.perf_counter() - t0
        for box, text, score in spots:
            if args.json:
                print(json.dumps({"path": path, "box": [round(v, 2) for v in box], "text": text,
                                  "score": round(score, 3), "latency_ms": round(1000 * elapsed, 3)},
                                 ensure_ascii=False))
            else:
                print("\t".join([path, ",".join(str(round(v)) for v in box), text, f"{score:.3f}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
