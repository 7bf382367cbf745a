"""Parity of exported artefacts with the Keras model: same images, same decoded texts, logit gaps, cost.

Each artefact runs in its own process (`python -m synthtext_industrial.export.parity --worker ...`), so the peak RSS it reports
is that runtime's alone, the way the published Table 1 measures it: onnxruntime and LiteRT workers never import
TensorFlow. All runtimes use one thread; latency is per image (batch 1), the median of many runs after warm-up,
model call only (preprocessing is the same cv2 resize for all and is not timed).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

MIN_AGREEMENT = 0.99  # share of images whose decoded text must equal the Keras model's
FP32_LOGIT_TOLERANCE = 1e-3  # max |logit difference| for float32 artefacts (SavedModel, ONNX, TFLite FP32)
REPO = Path(__file__).resolve().parents[1]


def _peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: on Linux that survives exec, so a
    worker started from a TensorFlow process would report TensorFlow's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _runner(fmt: str, path: str) -> tuple[Callable[[np.ndarray], np.ndarray], int | None]:
    """(function: float32 [B, H, W, 1] -> logits, largest batch it takes or None) for one artefact, one thread."""
    if fmt.startswith("keras"):  # keras-best or keras-last: which weights of the run
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from ..train.runs import load_recognizer

        model, config = load_recognizer(path, fmt.split("-", 1)[1])
        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return (lambda x: fn(tf.constant(x)).numpy()), None
    if fmt == "savedmodel":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        serve = tf.saved_model.load(path).signatures["serving_default"]
        return (lambda x: serve(image=tf.constant(x.astype(np.uint8)))["logits"].numpy()), None
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return (lambda x: session.run(None, {"image": x})[0]), None
    if fmt.startswith("tflite"):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        inp, outp = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

        def call(x):
            interpreter.set_tensor(inp, x)
            interpreter.invoke()
            return interpreter.get_tensor(outp).copy()

        return call, 1
    raise ValueError(f"no runner for {fmt}")


def worker(fmt: str, path: str, inputs: str, output: str, repeats: int) -> None:
    """Run one artefact on every input and time it; writes logits (.npy) and stats (.json) next to `output`."""
    import time

    t0 = time.perf_counter()
    call, max_batch = _runner(fmt, path)
    x = np.load(inputs)
    step = max_batch or 32
    logits = np.concatenate([call(x[i:i + step]) for i in range(0, len(x), step)])
    load_and_run_s = time.perf_counter() - t0
    for i in range(3):  # warm-up
        call(x[i % len(x)][None])
    times = []
    for i in range(repeats):
        one = x[i % len(x)][None]
        start = time.perf_counter()
        call(one)
        times.append(time.perf_counter() - start)
    np.save(output + ".npy", logits.astype(np.float32))
    Path(output + ".json").write_text(json.dumps({
        "latency_ms_median": 1000 * float(np.median(times)), "latency_ms_p90": 1000 * float(np.percentile(times, 90)),
        "repeats": repeats, "peak_rss_mib": _peak_rss_mib(), "load_and_run_s": load_and_run_s,
        "tensorflow_imported": "tensorflow" in sys.modules}))


# ----------------------------------------------------------------------------- spotter

BOX_TOLERANCE_PX = 1.0  # max |box coordinate difference| (page pixels) for a page to count as equal


def _kit():
    """jetson_kit/infer.py as a module: the numpy post-processing the device runs is the one parity checks."""
    from .jetson_kit import infer

    return infer


def _spotter_runners(fmt: str, path: str, meta: dict):
    """(detect: float32 [1, H, W, 1] -> [features, score, geometry], read: rois [N, ...] -> logits) of one
    artefact, one thread."""
    files = meta["files"].get(fmt, {})
    reader_path = str(Path(path).with_name(files["reader"])) if "reader" in files else None
    if fmt == "savedmodel":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        loaded = tf.saved_model.load(path)
        detect_sig, read_sig = loaded.signatures["serving_default"], loaded.signatures["read"]

        def detect(x):
            out = detect_sig(image=tf.constant(x.astype(np.uint8)))
            return [out[k].numpy() for k in ("features", "score", "geometry")]

        return detect, (lambda r: read_sig(roi=tf.constant(r))["logits"].numpy())
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        det = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        rd = ort.InferenceSession(reader_path, options, providers=["CPUExecutionProvider"])
        names = meta["spot"]["detector_outputs"]
        return (lambda x: det.run(names, {"image": x})), (lambda r: rd.run(["logits"], {"roi": r})[0])
    if fmt.startswith("tflite"):
        from ai_edge_litert.interpreter import Interpreter

        det = Interpreter(model_path=path, num_threads=1)
        det.allocate_tensors()
        rd = Interpreter(model_path=reader_path, num_threads=1)
        rd.allocate_tensors()
        det_in = det.get_input_details()[0]["index"]
        det_out = [det.get_output_details()[k]["index"] for k in files["output_order"]]
        rd_in, rd_out = rd.get_input_details()[0]["index"], rd.get_output_details()[0]["index"]

        def detect(x):
            det.set_tensor(det_in, x)
            det.invoke()
            return [det.get_tensor(k).copy() for k in det_out]

        def read(rois):
            out = []
            for roi in rois:  # static batch 1
                rd.set_tensor(rd_in, roi[None])
                rd.invoke()
                out.append(rd.get_tensor(rd_out).copy())
            return np.concatenate(out)

        return detect, read
    raise ValueError(f"no spotter runner for {fmt}")


def spotter_worker(fmt: str, path: str, inputs: str, output: str, repeats: int, meta_path: str) -> None:
    """Spot every page of inputs.npy ([P, H, W, 1] float32, with `shapes` [P, 2] of the original pages next to
    it) with one artefact. Writes OUTPUT.json (stats + per-page spots in page pixels), OUTPUT.npy (score maps)
    and OUTPUT.logits.npy (reader logits on the reference boxes, when OUTPUT given ref boxes exist)."""
    import time

    t0 = time.perf_counter()
    meta = json.loads(Path(meta_path).read_text())
    x = np.load(inputs)
    shapes = np.load(inputs.replace(".npy", ".shapes.npy"))
    spot = meta["spot"]
    kit = _kit()
    if fmt.startswith("keras"):  # the reference: the Keras spotter end to end (tf.image.crop_and_resize)
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from ..train.runs import load_spotter
        from ..train.spotter import spot_batch

        model = load_spotter(path, fmt.split("-", 1)[1])

        def detect(batch):
            return [t.numpy() for t in model.detector(batch, training=False)]

        def read(rois):
            return model.reader(rois, training=False).numpy()

        def spot_one(page):
            return [(tuple(float(v) for v in b), t, s) for b, t, s in spot_batch(model, page[None])[0]]
    else:
        detect, read = _spotter_runners(fmt, path, meta)

        def spot_one(page):
            return kit.spot_page(detect, read, meta, page)

    pages, scores, logits = [], [], []
    ref_path = Path(output).parent / "reference_boxes.json"
    references = json.loads(ref_path.read_text()) if ref_path.exists() else None
    for i, page in enumerate(x):
        found = spot_one(page)
        sx, sy = shapes[i][1] / meta["input"]["width"], shapes[i][0] / meta["input"]["height"]
        pages.append([[[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy], t, s] for b, t, s in found])
        features, score, _ = detect(page[None])
        scores.append(score[0])
        boxes = np.asarray(references[i] if references is not None else [b for b, _, _ in found],
                           np.float32).reshape(-1, 4)
        if len(boxes):  # the reader on the reference's boxes (input pixels): features + crop + reader gap
            rois = kit.crop_and_resize(features, kit.roi_boxes(boxes, tuple(spot["map_shape"]), spot["stride"]),
                                       np.zeros(len(boxes), np.int32), (spot["roi_height"], spot["roi_width"]))
            logits.append(read(rois))
    load_and_run_s = time.perf_counter() - t0
    for i in range(3):
        spot_one(x[i % len(x)])
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        spot_one(x[i % len(x)])
        times.append(time.perf_counter() - start)
    if references is None:  # the reference run writes its boxes (input pixels) for the others
        ref_path.write_text(json.dumps([[list(b) for b, _, _ in spot_one(page)] for page in x]))
    np.save(output + ".npy", np.stack(scores).astype(np.float32))
    np.save(output + ".logits.npy", np.concatenate(logits).astype(np.float32) if logits
            else np.zeros((0, spot["roi_width"], meta["output"]["classes"]), np.float32))
    Path(output + ".json").write_text(json.dumps({
        "pages": pages,
        "latency_ms_median": 1000 * float(np.median(times)), "latency_ms_p90": 1000 * float(np.percentile(times, 90)),
        "repeats": repeats, "peak_rss_mib": _peak_rss_mib(), "load_and_run_s": load_and_run_s,
        "tensorflow_imported": "tensorflow" in sys.modules}))


def _pages_equal(a: list, b: list, tolerance: float = BOX_TOLERANCE_PX) -> bool:
    """Same number of spots and each spot of `a` has its own spot in `b` with the same text and every box
    coordinate within tolerance (nearest box first)."""
    if len(a) != len(b):
        return False
    unused = list(range(len(b)))
    for box_a, text_a, _ in a:
        if not unused:
            return False
        gaps = [float(np.abs(np.asarray(box_a) - np.asarray(b[k][0])).max()) for k in unused]
        k = unused.pop(int(np.argmin(gaps)))
        if min(gaps) > tolerance or b[k][1] != text_a:
            return False
    return True


def spotter_parity_report(run: Path, export: Path, meta: dict, images, source: str, repeats: int, log) -> dict:
    from .exporter import artefact_path, size_bytes, write_metadata

    rows, results = [], {}
    batch = np.stack([_kit().model_input(im, meta) for im in images]).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.npy"
        np.save(inputs, batch)
        np.save(Path(tmp) / "inputs.shapes.npy", np.array([im.shape[:2] for im in images]))
        which = meta.get("weights", "best")
        extra = [str(export / "metadata.json")]
        reference, stats = run_worker(f"keras-{which}", run, inputs, Path(tmp) / "keras", repeats, extra=extra)
        ref_logits = np.load(Path(tmp) / "keras.logits.npy")
        weights = run / "best.weights.h5"
        formats = [("keras", weights if which == "best" and weights.exists() else run / "checkpoints")] + \
            [(fmt, export / artefact_path(meta, fmt)) for fmt in meta["files"]]
        for fmt, path in formats:
            if fmt != "keras":
                score, stats = run_worker(fmt, path, inputs, Path(tmp) / fmt, repeats, extra=extra)
            else:
                score = reference
            logits = np.load(Path(tmp) / f"{fmt}.logits.npy")
            pages = stats["pages"]
            results[fmt] = pages
            expected = results["keras"]
            same = [_pages_equal(p, e) for p, e in zip(pages, expected)]
            texts_same = [sorted(t for _, t, _ in p) == sorted(t for _, t, _ in e) for p, e in zip(pages, expected)]
            rows.append({"format": fmt, "path": str(path), "size_bytes": size_bytes(Path(path)),
                         "pages_match": float(np.mean(same)), "texts_match": float(np.mean(texts_same)),
                         "max_abs_score_diff": float(np.abs(score - reference).max()),
                         "max_abs_logit_diff": float(np.abs(logits - ref_logits).max()) if logits.size else 0.0,
                         "detections": int(sum(len(p) for p in pages)),
                         **{k: stats[k] for k in ("latency_ms_median", "latency_ms_p90", "peak_rss_mib",
                                                  "tensorflow_imported")}})
            log(f"{fmt:<12} pages match {rows[-1]['pages_match']:.4f}, max |score diff| "
                f"{rows[-1]['max_abs_score_diff']:.2e}, max |logit diff| {rows[-1]['max_abs_logit_diff']:.2e}")
    fp32 = ("savedmodel", "onnx", "tflite-fp32")
    report = {"schema_version": 1, "model": "spotter", "model_version": meta["model_version"], "images": len(images),
              "source": source, "reference": "keras (synthtext_industrial.train.spotter.spot_batch)", "threads": 1,
              "latency": f"batch 1, one page end to end (detector, numpy NMS and RoI crop, reader), median of "
                         f"{repeats} runs after 3 warm-up runs", "min_text_agreement": MIN_AGREEMENT,
              "box_tolerance_px": BOX_TOLERANCE_PX, "fp32_logit_tolerance": FP32_LOGIT_TOLERANCE,
              "rows": rows, "keras_spots": results["keras"]}
    report["passed"] = all(r["pages_match"] >= MIN_AGREEMENT for r in rows) and all(
        r["max_abs_logit_diff"] <= FP32_LOGIT_TOLERANCE and r["max_abs_score_diff"] <= FP32_LOGIT_TOLERANCE
        for r in rows if r["format"] in fp32)
    (export / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    meta["accuracy_at_export"] = {"validation_best": meta["training"].get("best_epoch"),
                                  "parity_set": {"source": source, "pages": len(images),
                                                 "detections": rows[0]["detections"]}}
    write_metadata(export, meta)
    return report


# ----------------------------------------------------------------------------- reader (frames)

FRAME_TOLERANCE_PX = 2.0  # max |quad corner difference| (frame pixels) for a line to count as the same
FRAME_HW = (600, 800)  # parity frames are resized to this (rows, columns): latency is per 800x600 frame


def reader_worker(reader: str, which: str, frames: str, output: str, repeats: int, grammar: str) -> None:
    """The Keras reader (train.reader.read_frame) on every frame of the folder `frames`, each frame then timed
    end to end `repeats` times; writes OUTPUT.json: lines per frame and stats."""
    import time

    import cv2
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from ..train.reader import load_reader, read_frame

    t0 = time.perf_counter()
    loaded = load_reader(reader, which)
    if grammar != "1":
        loaded.grammar = None
    paths = sorted(Path(frames).glob("*.png"))
    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]
    found = [[{"quad": line.quad.tolist(), "text": line.text, "confidence": line.confidence, "score": line.score}
              for line in read_frame(loaded, image)] for image in images]
    load_and_run_s = time.perf_counter() - t0
    times = []
    for image in images:
        for _ in range(repeats):
            start = time.perf_counter()
            read_frame(loaded, image)
            times.append(time.perf_counter() - start)
    Path(output + ".json").write_text(json.dumps({
        "frames": found, "latency_ms_median": 1000 * float(np.median(times)),
        "latency_ms_p90": 1000 * float(np.percentile(times, 90)), "repeats": repeats,
        "peak_rss_mib": _peak_rss_mib(), "load_and_run_s": load_and_run_s,
        "tensorflow_imported": "tensorflow" in sys.modules}))


def run_kit(export: Path, frames: list[Path], repeats: int, timeout: float = 600) -> tuple[list, dict]:
    """EXPORT/jetson/infer.py on the frames in its own process (numpy, OpenCV, onnxruntime; one thread): (lines per
    frame, its summary: latency end to end per frame and peak RSS)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, str(export / "jetson" / "infer.py"), "--metadata", str(export / "metadata.json"),
               "--json", "--threads", "1", "--repeat", str(repeats), *map(str, frames)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"jetson/infer.py failed:\n{done.stderr[-3000:]}")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    summary = next(r["summary"] for r in rows if "summary" in r)
    by_frame = {str(f): [] for f in frames}
    for r in rows:
        if "summary" not in r:
            by_frame[r["path"]].append({k: r[k] for k in ("quad", "text", "confidence", "score")})
    return [by_frame[str(f)] for f in frames], summary


def frame_agreement(got: list, expected: list, tolerance: float = FRAME_TOLERANCE_PX) -> tuple[int, int, float]:
    """(lines that agree, lines compared, largest corner gap of lines paired by position) of one frame: each
    expected line takes the nearest unused line of `got` (largest corner gap); it agrees when that gap is within
    `tolerance` px and the texts are equal. Lines compared: the larger count, so missing and extra lines disagree."""
    unused, agree, worst = list(range(len(got))), 0, 0.0
    for line in expected:
        if not unused:
            break
        gaps = [float(np.abs(np.asarray(got[k]["quad"]) - np.asarray(line["quad"])).max()) for k in unused]
        k = unused.pop(int(np.argmin(gaps)))
        worst = max(worst, min(gaps))
        agree += min(gaps) <= tolerance and got[k]["text"] == line["text"]
    return agree, max(len(got), len(expected)), worst


def reader_frames(reader: str | Path, data=None, images=None, count: int = 200) -> tuple[list[np.ndarray], str]:
    """(grayscale frames, source) for a reader's parity: the pages of --data, the images of a folder (--images),
    or the pages of the detector run's validation (else training) data."""
    import cv2

    if images is not None:
        paths = sorted(p for p in Path(images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
        frames = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths[:count]]
        frames = [f for f in frames if f is not None]
        if not frames:
            raise ValueError(f"{images} has no frames (.png, .jpg, .bmp) to compare on")
        return frames, str(images)
    if data is None:
        from ..train.reader import READER_FILE, ReaderConfig

        detector = ReaderConfig.load(Path(reader) / READER_FILE).run_path(Path(reader), "detector")
        return _dataset_frames(detector, None, count)
    return _dataset_frames(None, data, count)


def training_dataset(run, hint: str) -> str:
    """The run's validation dataset, else its first training dataset still on disk (FileNotFoundError naming the
    option to give, `hint`, when all are gone)."""
    training = json.loads((Path(run) / "training.json").read_text())
    candidates = ([training["val"]] if training.get("val") else []) + [d["path"] for d in training["data"]]
    found = next((c for c in candidates if (Path(c) / "manifest.json").exists()), None)
    if found is None:
        raise FileNotFoundError(f"the datasets {run} was trained on are gone; give {hint}")
    return found


def _dataset_frames(run, data, count: int) -> tuple[list[np.ndarray], str]:
    """Whole pages of `data`, or of the run's validation (else training) datasets, as frames."""
    from ..train.evaluate_spotter import dataset_pages

    if data is None:
        data = training_dataset(run, "--data")
    chosen = [image[..., 0] if image.ndim == 3 else image for _, image, _, _ in dataset_pages(data, limit=count)]
    if not chosen:
        raise ValueError(f"{data} has no pages to compare on")
    return chosen, str(data)


def reader_parity_report(reader: Path, export: Path, meta: dict, frames, source: str, repeats: int, log,
                         frame_hw: tuple[int, int] | None = FRAME_HW) -> dict:
    """The Keras reader and the exported kit (jetson/infer.py, ONNX) on the same frames, resized to `frame_hw`:
    lines with equal texts and quads within FRAME_TOLERANCE_PX, latency per frame end to end (median of about
    `repeats` runs), peak RSS of each process."""
    import cv2

    from .exporter import size_bytes, write_metadata

    per_frame = max(1, -(-repeats // max(len(frames), 1)))
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k, frame in enumerate(frames):
            if frame_hw is not None and frame.shape[:2] != tuple(frame_hw):
                shrink = frame.shape[0] > frame_hw[0]
                frame = cv2.resize(frame, (frame_hw[1], frame_hw[0]),
                                   interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            paths.append(Path(tmp) / f"frame{k:05d}.png")
            cv2.imwrite(str(paths[-1]), frame)
        grammar = "1" if meta["recognizer"]["decode"].get("grammar") else "0"
        _, keras = run_worker(meta.get("weights", "best"), reader, Path(tmp), Path(tmp) / "keras", per_frame,
                              extra=[grammar], mode="--reader-worker")
        kit_lines, kit = run_kit(export, paths, per_frame)
    rows = []
    for name, lines, stats, size in (
            ("keras", keras["frames"], keras, None),
            ("onnx", kit_lines, kit, sum(size_bytes(export / meta[part]["files"]["onnx"]["path"])
                                         for part in ("detector", "recognizer")) if "onnx" in meta["detector"]["files"]
             else None)):
        counted = [frame_agreement(got, want) for got, want in zip(lines, keras["frames"])]
        agree, compared = sum(c[0] for c in counted), sum(c[1] for c in counted)
        rows.append({"format": name, "size_bytes": size, "lines": sum(len(f) for f in lines),
                     "lines_match": agree / compared if compared else 1.0,
                     "frames_match": float(np.mean([c[0] == c[1] for c in counted])) if counted else 1.0,
                     "max_corner_diff_px": max((c[2] for c in counted), default=0.0),
                     **{k: stats.get(k) for k in ("latency_ms_median", "latency_ms_p90", "peak_rss_mib",
                                                  "tensorflow_imported")}})
        log(f"{name:<12} lines match {rows[-1]['lines_match']:.4f}, max corner gap "
            f"{rows[-1]['max_corner_diff_px']:.3f} px")
    report = {"schema_version": 1, "model": "reader", "model_version": meta["model_version"], "images": len(frames),
              "source": source, "frame_hw": list(frame_hw) if frame_hw else None,
              "reference": "keras (synthtext_industrial.train.reader.read_frame)", "threads": 1,
              "latency": f"one frame end to end (resize, detector, quad decoding, crops, recognizer, decoding; "
                         f"image decoding excluded), median of {per_frame * len(frames)} runs after one untimed run "
                         f"per frame", "min_text_agreement": MIN_AGREEMENT, "box_tolerance_px": FRAME_TOLERANCE_PX,
              "grammar": grammar == "1", "rows": rows, "keras_frames": keras["frames"]}
    report["passed"] = all(r["lines_match"] >= MIN_AGREEMENT for r in rows)
    (export / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    meta["accuracy_at_export"] = {"parity_set": {"source": source, "frames": len(frames), "lines": rows[0]["lines"]}}
    write_metadata(export, meta)
    return report


def run_worker(fmt: str, path: Path, inputs: Path, output: Path, repeats: int, timeout: float = 600,
               extra: Sequence[str] = (), mode: str | None = None) -> tuple:
    """Run a worker of this module in its own process: (its .npy output or None, its .json stats)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    mode = mode or ("--spotter-worker" if extra else "--worker")
    command = [sys.executable, "-m", "synthtext_industrial.export.parity", mode, fmt, str(path), str(inputs),
               str(output), str(repeats), *extra]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{fmt} worker failed:\n{done.stderr[-3000:]}")
    array = Path(str(output) + ".npy")
    return np.load(array) if array.exists() else None, json.loads(Path(str(output) + ".json").read_text())


def eval_items(run: str | Path, data: str | Path | None = None, images: str | Path | None = None,
               count: int = 200) -> tuple[list[np.ndarray], list[str], str]:
    """(line images, truths, source description) for parity: --data, --images, or the run's own val/train data."""
    import itertools

    from ..train.evaluate import dataset_lines, labelled_images

    from ..train.runs import run_kind

    if run_kind(run) == "spotter":  # whole pages from a dataset; truths are the pages' line texts
        from ..train.evaluate_spotter import dataset_pages

        if images is not None:
            raise ValueError("a spotter's parity runs on pages: give --data DATASET, not --images")
        if data is None:
            data = training_dataset(run, "--data")
        chosen = list(dataset_pages(data, limit=count))
        if not chosen:
            raise ValueError(f"{data} has no pages to compare on")
        return [image for _, image, _, _ in chosen], ["\n".join(texts) for *_, texts in chosen], str(data)
    if images is not None:
        labels = Path(images) / "labels.tsv" if Path(images).is_dir() else Path(images)
        items, source = labelled_images(labels), str(images)
    else:
        if data is None:
            data = training_dataset(run, "--data or --images")
        items, source = dataset_lines(data), str(data)
    chosen = list(itertools.islice(items, count))
    if not chosen:
        raise ValueError(f"{source} has no lines to compare on")
    return [image for _, image, _ in chosen], [text for _, _, text in chosen], source


def parity_report(run: str | Path, export: str | Path, images: Sequence[np.ndarray], truths: Sequence[str],
                  source: str = "", repeats: int = 200, log: Callable[[str], None] = print) -> dict:
    """Run the Keras model and every exported artefact on the same images; write and return EXPORT/report.json."""
    from .exporter import KINDS, artefact_path, size_bytes
    from ..core.portable import preprocess
    from ..train.text import accuracy

    run, export = Path(run), Path(export)
    meta = json.loads((export / "metadata.json").read_text())
    if meta["model"] == "spotter":
        return spotter_parity_report(run, export, meta, images, source, repeats, log)
    if meta["model"] == "reader":  # images are frames; truths are not needed
        return reader_parity_report(run, export, meta, images, source, repeats, log)
    if meta["model"] == "detector":
        raise ValueError("a detector export has no parity report of its own: export a reader (its detector and "
                         "recognizer) for the frame-level parity")
    kind = KINDS[meta["model"]]
    h, w = meta["input"]["height"], meta["input"]["width"]
    keep = bool(meta.get("preprocess", {}).get("resize", {}).get("keep_aspect_ratio", False))
    batch = np.stack([preprocess(im, h, w, keep) for im in images]).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.npy"
        np.save(inputs, batch)
        which = meta.get("weights", "best")
        weights = run / "best.weights.h5"
        reference, stats = run_worker(f"keras-{which}", run, inputs, Path(tmp) / "keras", repeats)
        expected = kind.texts(reference, meta)
        rows.append(_row("keras", weights if which == "best" and weights.exists() else run / "checkpoints", reference, reference,
                         expected, expected, truths, stats, size_bytes))
        for fmt in meta["files"]:
            path = export / artefact_path(meta, fmt)
            logits, stats = run_worker(fmt, path, inputs, Path(tmp) / fmt, repeats)
            rows.append(_row(fmt, path, logits, reference, kind.texts(logits, meta), expected, truths, stats,
                             size_bytes))
            log(f"{fmt:<12} texts match {rows[-1]['texts_match']:.4f}, max |logit diff| "
                f"{rows[-1]['max_abs_logit_diff']:.2e}")
    fp32 = ("savedmodel", "onnx", "tflite-fp32")
    report = {"schema_version": 1, "model_version": meta["model_version"], "images": len(images), "source": source,
              "reference": "keras", "threads": 1, "latency": "batch 1, model call only, median of "
              f"{repeats} runs after 3 warm-up runs", "min_text_agreement": MIN_AGREEMENT,
              "fp32_logit_tolerance": FP32_LOGIT_TOLERANCE,
              "keras_accuracy": accuracy(truths, expected).as_dict(), "rows": rows,
              "keras_texts": expected}
    report["passed"] = all(r["texts_match"] >= MIN_AGREEMENT for r in rows) and all(
        r["max_abs_logit_diff"] <= FP32_LOGIT_TOLERANCE for r in rows if r["format"] in fp32)
    (export / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    meta["accuracy_at_export"] = {"validation_best": meta["training"].get("best_epoch"),
                                  "parity_set": {"source": source, **report["keras_accuracy"]}}
    from .exporter import write_metadata

    write_metadata(export, meta)
    return report


def _row(fmt, path, logits, reference, texts, expected, truths, stats, size_bytes) -> dict:
    from ..train.text import accuracy

    return {"format": fmt, "path": str(path), "size_bytes": size_bytes(Path(path)),
            "texts_match": float(np.mean([a == b for a, b in zip(texts, expected)])),
            "max_abs_logit_diff": float(np.abs(logits - reference).max()),
            "string_accuracy": accuracy(truths, texts).string_accuracy,
            **{k: stats[k] for k in ("latency_ms_median", "latency_ms_p90", "peak_rss_mib", "tensorflow_imported")}}


def format_table(report: dict) -> str:
    """The report as a fixed-width table (the shape of the published Table 1)."""
    header = f"{'format':<12} {'size MB':>8} {'texts = keras':>13} {'max |dlogit|':>12} {'string acc':>10} " \
             f"{'latency ms':>10} {'peak RSS MiB':>12}"
    if report.get("model") == "reader":
        header = f"{'runtime':<12} {'size MB':>8} {'lines':>6} {'lines = keras':>13} {'max |dquad| px':>14} " \
                 f"{'ms / frame':>10} {'peak RSS MiB':>12} {'TF loaded':>9}"
        size = report["frame_hw"] and f"{report['frame_hw'][1]}x{report['frame_hw'][0]} "
        lines = [f"{report['images']} {size or ''}frames from {report['source']}; {report['latency']}; 1 thread",
                 header, "-" * len(header)]
        for r in report["rows"]:
            mb = f"{r['size_bytes'] / 1e6:>8.2f}" if r["size_bytes"] else f"{'-':>8}"
            lines.append(f"{r['format']:<12} {mb} {r['lines']:>6} {r['lines_match']:>13.2%} "
                         f"{r['max_corner_diff_px']:>14.3f} {r['latency_ms_median']:>10.2f} "
                         f"{r['peak_rss_mib'] or 0:>12.0f} {'yes' if r['tensorflow_imported'] else 'no':>9}")
        lines.append("parity: " + ("PASSED" if report["passed"] else "FAILED") +
                     f" (lines with equal texts and quads within {report['box_tolerance_px']:g} px >= "
                     f"{report['min_text_agreement']:.0%})")
        return "\n".join(lines)
    if report.get("model") == "spotter":
        header = f"{'format':<12} {'size MB':>8} {'pages = keras':>13} {'max |dscore|':>12} {'max |dlogit|':>12} " \
                 f"{'latency ms':>10} {'peak RSS MiB':>12}"
        lines = [f"{report['images']} pages from {report['source']}; {report['latency']}; 1 thread", header,
                 "-" * len(header)]
        for r in report["rows"]:
            lines.append(f"{r['format']:<12} {r['size_bytes'] / 1e6:>8.2f} {r['pages_match']:>13.2%} "
                         f"{r['max_abs_score_diff']:>12.2e} {r['max_abs_logit_diff']:>12.2e} "
                         f"{r['latency_ms_median']:>10.3f} {r['peak_rss_mib']:>12.0f}")
        lines.append("parity: " + ("PASSED" if report["passed"] else "FAILED") +
                     f" (pages with equal texts and boxes within {report['box_tolerance_px']:g} px >= "
                     f"{report['min_text_agreement']:.0%}; float32 score maps and logits within "
                     f"{report['fp32_logit_tolerance']:g})")
        return "\n".join(lines)
    lines = [f"{report['images']} images from {report['source']}; {report['latency']}; 1 thread", header,
             "-" * len(header)]
    for r in report["rows"]:
        lines.append(f"{r['format']:<12} {r['size_bytes'] / 1e6:>8.2f} {r['texts_match']:>13.2%} "
                     f"{r['max_abs_logit_diff']:>12.2e} {r['string_accuracy']:>10.4f} "
                     f"{r['latency_ms_median']:>10.3f} {r['peak_rss_mib']:>12.0f}")
    lines.append("parity: " + ("PASSED" if report["passed"] else "FAILED") +
                 f" (texts >= {report['min_text_agreement']:.0%} equal; float32 logits within "
                 f"{report['fp32_logit_tolerance']:g})")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif len(sys.argv) == 8 and sys.argv[1] == "--spotter-worker":
        spotter_worker(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7])
    elif len(sys.argv) == 8 and sys.argv[1] == "--reader-worker":  # WHICH READER FRAMES OUTPUT REPEATS GRAMMAR
        reader_worker(sys.argv[3], sys.argv[2], sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7])
    else:
        sys.exit("usage: python -m synthtext_industrial.export.parity --worker FORMAT PATH INPUTS.npy OUTPUT REPEATS")
