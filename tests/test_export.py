"""Export of a tiny trained recognizer: every format reads like the Keras model, the metadata is enough for the
standalone Jetson script, and that script runs without TensorFlow or this package."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

from click.testing import CliRunner  # noqa: E402

from synthtext_industrial import recipe_from_dict  # noqa: E402
from synthtext_industrial.cli import main  # noqa: E402
from synthtext_industrial.generate import generate  # noqa: E402
from synthtext_industrial.train.evaluate import dataset_lines  # noqa: E402
from synthtext_industrial.export.exporter import FORMATS, KIT, export_run, parse_formats  # noqa: E402
from synthtext_industrial.train.fit_recognizer import TrainSettings, train_recognizer
from synthtext_industrial.train.runs import load_recognizer  # noqa: E402
from synthtext_industrial.export.parity import FP32_LOGIT_TOLERANCE, eval_items, format_table, parity_report  # noqa: E402
from synthtext_industrial.core.portable import preprocess  # noqa: E402
from synthtext_industrial.train.recognizer import RecognizerConfig, read_lines  # noqa: E402

TINY = {"canvas": {"width": 320, "height": 160}, "typography": {"height_px": [24, 30]},
        "text": {"blocks": [{"lines": ["{9:4}"]}]}}
BLOCKED = ("tensorflow", "keras", "synthtext_industrial", "trainers", "tf2onnx", "ai_edge_litert")


BLOCKER = (  # a fresh interpreter's first lines: TensorFlow, Keras and this package cannot be imported
    "import sys, runpy\n"
    f"BLOCKED = {BLOCKED!r}\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in BLOCKED: raise ImportError('blocked on the device: ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "sys.path = [p for p in sys.path if p not in ('', '.')]\n")


def run_without_training_stack(script, args: list[str], cwd) -> subprocess.CompletedProcess:
    """Run a device script as its own program in a fresh interpreter behind BLOCKER."""
    program = (BLOCKER + f"sys.argv = ['infer.py', *{args!r}]\n"
               f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
               "assert not any(m.split('.')[0] in BLOCKED for m in sys.modules)\n")
    return subprocess.run([sys.executable, "-I", "-c", program], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def load_infer():
    spec = importlib.util.spec_from_file_location("standalone_infer", KIT / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A recognizer overfitted on 20 pages of 4-digit codes, exported to every format, with parity on 200 lines of
    other pages. Its latest weights, not the best epoch's: in 420 steps it reads characters but rarely a whole
    line, so the best string accuracy stays at the first epoch, whose near-zero logits decode to empty texts on
    which every format would trivially agree."""
    root = tmp_path_factory.mktemp("export")
    generate(recipe_from_dict(TINY), root / "data", n=20, seed=0, shard_size=10, workers=1)
    generate(recipe_from_dict(TINY), root / "eval", n=145, seed=1, shard_size=80, workers=1)
    config = RecognizerConfig(backbone="small", height=32, width=64, lstm_units=32, resize="pad")
    settings = TrainSettings(epochs=7, batch_size=16, steps_per_epoch=60, learning_rate=3e-3, seed=0, patience=20)
    train_recognizer([root / "data"], root / "run", config, settings, log=lambda _: None)
    export_run(root / "run", root / "export", FORMATS, which="last", log=lambda _: None)
    images, truths, source = eval_items(root / "run", data=root / "eval", count=200)
    report = parity_report(root / "run", root / "export", images, truths, source, repeats=20, log=lambda _: None)
    return root, report


def test_every_format_reads_like_keras(exported):
    root, report = exported
    rows = {r["format"]: r for r in report["rows"]}
    assert list(rows) == ["keras", *FORMATS]
    assert report["images"] == 200 and report["passed"], format_table(report)
    keras_texts = json.loads((root / "export" / "report.json").read_text())["keras_texts"]
    assert sum(len(t) >= 2 for t in keras_texts) > 100  # equal texts mean something
    for fmt, row in rows.items():
        assert row["texts_match"] >= 0.99, (fmt, row)
        tolerance = 0.05 if fmt == "tflite-fp16" else FP32_LOGIT_TOLERANCE
        assert row["max_abs_logit_diff"] <= tolerance, (fmt, row)
        assert row["size_bytes"] > 100_000 and row["latency_ms_median"] > 0 and row["peak_rss_mib"] > 10
    # onnxruntime and LiteRT ran in processes without TensorFlow, so their memory is their own
    assert not rows["onnx"]["tensorflow_imported"] and not rows["tflite-fp32"]["tensorflow_imported"]
    assert rows["onnx"]["peak_rss_mib"] < rows["keras"]["peak_rss_mib"] / 2
    assert rows["tflite-fp16"]["size_bytes"] < 0.7 * rows["tflite-fp32"]["size_bytes"]
    assert json.loads((root / "export" / "report.json").read_text())["rows"] == report["rows"]
    assert "tflite-fp16" in format_table(report) and "PASSED" in format_table(report)


def test_metadata_describes_pre_and_post_processing(exported):
    root, _ = exported
    meta = json.loads((root / "export" / "metadata.json").read_text())
    training = json.loads((root / "run" / "training.json").read_text())
    assert meta["schema_version"] == 1 and meta["model"] == "recognizer"
    assert meta["decode"]["charset"] == "0123456789" and meta["decode"]["blank_index"] == 10
    assert (meta["input"]["height"], meta["input"]["width"]) == (32, 64)
    assert meta["preprocess"]["resize"]["keep_aspect_ratio"] is True and "padding" in meta["preprocess"]["resize"]
    assert meta["output"]["steps"] == 16 and meta["output"]["classes"] == 11
    assert meta["training"]["data"][0]["recipe_sha256"] == training["data"][0]["recipe_sha256"]
    assert meta["accuracy_at_export"]["parity_set"]["count"] == 200
    assert meta["accuracy_at_export"]["validation_best"]["epoch"] >= 0 and meta["weights"] == "last"
    assert set(meta["files"]) == set(FORMATS) and all(len(f["sha256"]) == 64 for f in meta["files"].values())
    assert meta["model_version"].endswith(meta["weights_sha256"][:12])


def test_onnx_has_native_lstm_and_dynamic_batch(exported, tmp_path):
    root, _ = exported
    import onnx

    proto = onnx.load(str(root / "export" / "recognizer.onnx"))
    assert [n.op_type for n in proto.graph.node].count("LSTM") == 2  # one bidirectional LSTM op per layer
    assert proto.opset_import[0].version == 17
    session = ort.InferenceSession(str(root / "export" / "recognizer.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(0, 255, (5, 32, 64, 1)).astype(np.float32)
    together = session.run(None, {"image": x})[0]
    alone = np.concatenate([session.run(None, {"image": x[i:i + 1]})[0] for i in range(5)])
    assert together.shape == (5, 16, 11) and np.abs(together - alone).max() < 1e-4

    # opset 13 for TensorRT 8.2 (Jetson Nano): same ops, same logits
    from synthtext_industrial.export.exporter import export_onnx

    model, config = load_recognizer(root / "run", "last")
    info = export_onnx(model, config, tmp_path / "13.onnx", opset=13)
    assert info["opset"] == 13 and onnx.load(str(tmp_path / "13.onnx")).opset_import[0].version == 13
    old = ort.InferenceSession(str(tmp_path / "13.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(old.run(None, {"image": x})[0] - together).max() < 1e-4


def test_savedmodel_signature_takes_uint8_and_returns_text(exported):
    root, _ = exported
    model, config = load_recognizer(root / "run", "last")
    lines = [image for _, image, _ in dataset_lines(root / "data", limit=16)]
    batch = np.stack([preprocess(im, 32, 64, config.keep_ratio) for im in lines]).astype(np.uint8)
    serve = tf.saved_model.load(str(root / "export" / "savedmodel")).signatures["serving_default"]
    out = serve(image=tf.constant(batch))
    texts = [t.decode() for t in out["text"].numpy()]
    assert texts == [r.text for r in read_lines(model, config, lines)] and sum(map(bool, texts)) >= 8
    assert out["labels"].shape == (16, 16) and out["scores"].numpy().max() <= 1.0


def test_standalone_preprocessing_equals_the_trainers():
    infer = load_infer()
    rng = np.random.default_rng(1)
    for keep in (False, True):
        meta = {"input": {"height": 32, "width": 96}, "preprocess": {"resize": {"keep_aspect_ratio": keep}}}
        for shape in [(20, 50), (32, 96), (33, 40), (80, 300), (7, 500), (64, 64, 3)]:
            image = rng.integers(0, 256, shape, dtype=np.uint8)
            assert np.array_equal(infer.model_input(image, meta), preprocess(image, 32, 96, keep)), (shape, keep)
    assert np.array_equal(infer.model_input(image, {"input": {"height": 32, "width": 96}}), preprocess(image, 32, 96))


def test_standalone_script_runs_without_tensorflow(exported, tmp_path):
    """Only metadata.json, the ONNX file and jetson/ are copied; TensorFlow and this package cannot be imported."""
    root, _ = exported
    device = tmp_path / "device"
    shutil.copytree(root / "export" / "jetson", device / "jetson")
    for name in ("metadata.json", "recognizer.onnx"):
        shutil.copy2(root / "export" / name, device / name)
    paths, lines = [], []
    for k, (_, image, _) in enumerate(dataset_lines(root / "data", limit=6)):
        paths.append(str(tmp_path / f"line{k}.png"))
        cv2.imwrite(paths[-1], image)
        lines.append(cv2.imread(paths[-1], cv2.IMREAD_GRAYSCALE))
    done = run_without_training_stack(device / "jetson" / "infer.py", ["--json", *paths], tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    model, config = load_recognizer(root / "run", "last")
    expected = read_lines(model, config, lines)
    assert [r["text"] for r in rows] == [e.text for e in expected] and sum(bool(r["text"]) for r in rows) >= 3
    assert [r["confidence"] for r in rows] == pytest.approx([e.confidence for e in expected], abs=2e-3)
    # the blocker really blocks: the same prelude cannot import tensorflow
    probe = subprocess.run([sys.executable, "-I", "-c", BLOCKER + "import tensorflow"],
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "blocked on the device" in probe.stderr


def test_jetson_kit_has_the_input_shape(exported):
    root, _ = exported
    script = (root / "export" / "jetson" / "build_engine.sh").read_text()
    assert "--fp16" in script and 'SHAPE="32x64x1"' in script and "@" not in script.replace("$@", "")
    assert subprocess.run(["bash", "-n", str(root / "export" / "jetson" / "build_engine.sh")]).returncode == 0
    for name in ("convert_tftrt.py", "infer.py"):
        compile((root / "export" / "jetson" / name).read_text(), name, "exec")


def test_cli_rejects_bad_formats_runs_and_folders(exported, tmp_path):
    root, _ = exported
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(root / "run"), "-o", str(tmp_path / "x"), "--formats", "onnx,tensorrt"])
    assert result.exit_code == 2 and "unknown export format tensorrt" in result.output
    (tmp_path / "notarun").mkdir()
    result = runner.invoke(main, ["export", str(tmp_path / "notarun"), "-o", str(tmp_path / "x")])
    assert result.exit_code == 2 and "not a training run" in result.output
    result = runner.invoke(main, ["export", str(root / "run"), "-o", str(root / "export"), "--formats", "onnx"])
    assert result.exit_code == 1 and "--overwrite" in result.output
    with pytest.raises(ValueError, match="none given"):
        parse_formats(" , ")


def test_cli_exports_and_prints_the_table(exported, tmp_path):
    root, _ = exported
    result = CliRunner().invoke(main, ["export", str(root / "run"), "-o", str(tmp_path / "e"), "--formats",
                                       "onnx", "--count", "30", "--repeats", "5", "--weights", "last",
                                       "--data", str(root / "eval")])
    assert result.exit_code == 0, result.output
    assert "30 images from" in result.output and "string acc" in result.output and "parity: PASSED" in result.output
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == [
        "jetson", "metadata.json", "recognizer.onnx", "report.json"]
