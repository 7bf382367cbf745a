"""Export of a reader (a tiny oriented detector and a tiny recognizer): one folder with both models and one
metadata.json, a Jetson kit whose infer.py reads whole frames without TensorFlow and agrees with the library
reader, and the frame-level parity report. The line rectifier the kit carries cuts lines pixel for pixel."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import yaml

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

from click.testing import CliRunner  # noqa: E402

from synthtext_industrial import load_recipe  # noqa: E402
from synthtext_industrial.cli import main  # noqa: E402
from synthtext_industrial.export.exporter import FORMATS, export_run  # noqa: E402
from synthtext_industrial.export.parity import format_table, parity_report, reader_frames  # noqa: E402
from synthtext_industrial.generate import generate  # noqa: E402
from synthtext_industrial.train.detector import DetectorConfig  # noqa: E402
from synthtext_industrial.train.fit_detector import train_detector  # noqa: E402
from synthtext_industrial.train.fit_recognizer import train_recognizer  # noqa: E402
from synthtext_industrial.train.loop import TrainSettings  # noqa: E402
from synthtext_industrial.core.portable import rectified_crop  # noqa: E402
from synthtext_industrial.train.reader import create_reader, load_reader, read_frames  # noqa: E402
from synthtext_industrial.train.recognizer import RecognizerConfig  # noqa: E402
from synthtext_industrial.train.runs import load_detector  # noqa: E402

from .test_export import run_without_training_stack  # noqa: E402

TINY = {"canvas": {"width": 320, "height": 240}, "typography": {"height_px": [36, 44]},
        "layout": {"rotation": [-20, 20], "perspective": [0, 0]},
        "text": {"blocks": [{"lines": ["{9:4}"]}]}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A detector trained 400 steps (it finds most lines of its pages) and a recognizer 300 steps (it reads some
    digits) on 32 tiny pages of rotated codes (16 left it finding lines on 1 of 6 frames), a reader on both with a low threshold, exported to every format,
    with the frame parity on 6 other pages."""
    root = tmp_path_factory.mktemp("reader_export")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY), encoding="utf-8")
    recipe = load_recipe(root / "tiny.yaml")
    generate(recipe, root / "train", n=32, seed=0, shard_size=32, workers=1)
    generate(recipe, root / "val", n=6, seed=1, shard_size=6, workers=1, with_crops=False)
    train_detector([root / "train"], root / "detector",
                   DetectorConfig(height=120, width=160, fusion_channels=16, score_threshold=0.5),
                   TrainSettings(epochs=1, batch_size=4, steps_per_epoch=400, val_lines=2, learning_rate=3e-3),
                   log=lambda _: None)
    train_recognizer([root / "train"], root / "recognizer", RecognizerConfig(height=32, width=64, lstm_units=16),
                     TrainSettings(epochs=1, batch_size=8, steps_per_epoch=300, val_lines=8, learning_rate=3e-3),
                     log=lambda _: None)
    create_reader(root / "detector", root / "recognizer", root / "reader", score_threshold=0.3)
    export_run(root / "reader", root / "export", FORMATS, log=lambda _: None)
    frames, source = reader_frames(root / "reader", root / "val", None, 6)
    report = parity_report(root / "reader", root / "export", frames, [], source, repeats=12, log=lambda _: None)
    return root, frames, report


def test_the_rectifier_the_kit_carries_cuts_upright_and_turned_lines_pixel_for_pixel():
    """crops.line_crop is this function; checked here against slices of the image itself: an axis-aligned quad at
    pixel edges cuts exactly those pixels, and the same quad named from another corner (the text turned by 90,
    180 or 270 degrees) cuts them turned upright."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160), dtype=np.uint8)
    for _ in range(40):
        x0, y0 = rng.integers(0, 80, 2)
        w, h = rng.integers(8, 70), rng.integers(8, 40)
        corners = np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]], np.float64)
        patch = image[y0:y0 + h, x0:x0 + w]
        for turn in range(4):  # quad starts at another corner: the text as read is turned by 90 x turn degrees
            quad = np.roll(corners, -turn, axis=0)
            got = rectified_crop(image, quad, (0, 0, 0, 0), min_height=1)
            assert np.array_equal(got, np.rot90(patch, turn)), (x0, y0, w, h, turn)
    with pytest.raises(ValueError, match="degenerate"):
        rectified_crop(image, np.zeros((4, 2)))


def test_the_folder_holds_both_models_and_one_metadata(exported):
    root, _, _ = exported
    names = sorted(p.name for p in (root / "export").iterdir())
    assert names == sorted(["detector.onnx", "detector_fp32.tflite", "detector_fp16.tflite", "detector_savedmodel",
                            "recognizer.onnx", "recognizer_fp32.tflite", "recognizer_fp16.tflite",
                            "recognizer_savedmodel", "metadata.json", "report.json", "jetson"])
    meta = json.loads((root / "export" / "metadata.json").read_text())
    assert meta["schema_version"] == 1 and meta["model"] == "reader" and meta["weights"] == "best"
    detector, recognizer, reader = meta["detector"], meta["recognizer"], meta["reader"]
    assert detector["model"] == "detector" and recognizer["model"] == "recognizer"
    assert (detector["input"]["height"], detector["input"]["width"]) == (120, 160)
    assert detector["detect"]["score_threshold"] == 0.3  # the reader's threshold, not the run's 0.5
    assert detector["detect"]["nms_iou"] == 0.3 and detector["detect"]["stride"] == 4
    assert detector["detect"]["map_shape"] == [32, 40] and detector["detect"]["outputs"] == [
        "score", "geometry", "direction"]
    assert recognizer["decode"]["charset"] == "0123456789" and recognizer["decode"]["blank_index"] == 10
    assert recognizer["preprocess"]["resize"]["keep_aspect_ratio"] is False
    assert (recognizer["input"]["height"], recognizer["input"]["width"]) == (32, 64)
    saved = json.loads((root / "reader" / "reader.json").read_text())
    assert reader["crop_margin"] == saved["crop_margin"] and reader["min_side"] == 2.0
    for part in (detector, recognizer):
        assert set(part["files"]) == set(FORMATS) and all(len(f["sha256"]) == 64 for f in part["files"].values())
        assert part["model_version"].endswith(part["weights_sha256"][:12])
    assert detector["files"]["tflite-fp32"]["output_order"] in ([0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0],
                                                                [2, 0, 1], [2, 1, 0])
    assert 'SHAPE="120x160x1"' in (root / "export" / "jetson" / "build_engine.sh").read_text()


def test_the_detector_graphs_compute_the_keras_maps(exported):
    root, _, _ = exported
    detector = load_detector(root / "detector", score_threshold=0.3)
    x = np.random.default_rng(2).uniform(0, 255, (2, 120, 160, 1)).astype(np.float32)
    expected = [np.asarray(t) for t in detector(x)]
    session = ort.InferenceSession(str(root / "export" / "detector.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["score", "geometry", "direction"], {"image": x})
    for name, e, g in zip(("score", "geometry", "direction"), expected, got):
        assert g.shape == e.shape and np.abs(g - e).max() < 1e-3 * max(1.0, np.abs(e).max()), name


def test_the_kit_reads_frames_without_tensorflow_like_the_library_reader(exported, tmp_path):
    """Only metadata.json, the two ONNX files and jetson/ are copied; TensorFlow and this package cannot be
    imported. Its lines equal `read_frames`': same texts, quads within 2 px, same order."""
    root, frames, _ = exported
    device = tmp_path / "device"
    shutil.copytree(root / "export" / "jetson", device / "jetson")
    for name in ("metadata.json", "detector.onnx", "recognizer.onnx"):
        shutil.copy2(root / "export" / name, device / name)
    paths = []
    for k, frame in enumerate(frames):
        paths.append(str(tmp_path / f"frame{k}.png"))
        cv2.imwrite(paths[-1], frame)
    done = run_without_training_stack(device / "jetson" / "infer.py", ["--json", "--repeat", "2", *paths], tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    summary = rows.pop()["summary"]
    assert summary["frames"] == len(frames) and summary["latency_ms_median"] > 0 and summary["peak_rss_mib"] > 10
    assert summary["tensorflow_imported"] is False
    expected = read_frames(load_reader(root / "reader"), frames)
    assert sum(map(len, expected)) >= 3  # the detector finds lines: agreement means something
    assert any(line.text for lines in expected for line in lines)
    for path, lines in zip(paths, expected):
        got = [r for r in rows if r["path"] == path]
        assert [r["text"] for r in got] == [line.text for line in lines]
        for r, line in zip(got, lines):
            assert np.abs(np.asarray(r["quad"]) - line.quad).max() <= 2.0
            assert r["confidence"] == pytest.approx(line.confidence, abs=2e-3)
    text = run_without_training_stack(device / "jetson" / "infer.py", paths[:3], tmp_path)
    assert text.returncode == 0, text.stderr
    for line in text.stdout.splitlines():
        path, quad, reading, confidence = line.split("\t")[:4]
        assert path in paths and len(quad.split(",")) == 8 and 0 <= float(confidence) <= 1


def test_the_parity_report_compares_frames_and_measures_the_onnx_path(exported):
    root, frames, report = exported
    assert json.loads((root / "export" / "report.json").read_text())["rows"] == report["rows"]
    assert report["model"] == "reader" and report["images"] == len(frames) and report["frame_hw"] == [600, 800]
    assert report["box_tolerance_px"] == 2.0 and report["passed"], format_table(report)
    rows = {r["format"]: r for r in report["rows"]}
    assert list(rows) == ["keras", "onnx"]
    assert rows["keras"]["lines"] >= 1 and rows["onnx"]["lines"] == rows["keras"]["lines"]
    assert rows["onnx"]["lines_match"] >= 0.99 and rows["onnx"]["max_corner_diff_px"] <= 2.0
    assert rows["onnx"]["tensorflow_imported"] is False and rows["keras"]["tensorflow_imported"] is True
    assert rows["onnx"]["peak_rss_mib"] > 10 and rows["onnx"]["peak_rss_mib"] < rows["keras"]["peak_rss_mib"]
    assert all(r["latency_ms_median"] > 0 and r["latency_ms_p90"] >= r["latency_ms_median"] for r in rows.values())
    assert rows["onnx"]["size_bytes"] > 100_000
    meta = json.loads((root / "export" / "metadata.json").read_text())
    assert meta["accuracy_at_export"]["parity_set"]["frames"] == len(frames)
    table = format_table(report)
    assert "ms / frame" in table and "800x600" in table and "PASSED" in table


def test_cli_exports_a_reader_and_a_detector_and_refuses_what_it_cannot(exported, tmp_path):
    root, _, _ = exported
    cli = CliRunner()
    result = cli.invoke(main, ["export", str(root / "reader"), "--out", str(tmp_path / "r"), "--formats", "onnx",
                               "--data", str(root / "val"), "--count", "2", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    assert "2 800x600 frames" in result.output and "parity: PASSED" in result.output
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "detector.onnx", "jetson", "metadata.json", "recognizer.onnx", "report.json"]

    result = cli.invoke(main, ["export", str(root / "detector"), "--out", str(tmp_path / "d"), "--formats", "onnx"])
    assert result.exit_code == 0, result.output
    assert "frame-level parity" in result.output
    meta = json.loads((tmp_path / "d" / "metadata.json").read_text())
    assert meta["model"] == "detector" and meta["detect"]["score_threshold"] == 0.5
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["detector.onnx", "jetson", "metadata.json"]

    odd = tmp_path / "odd"  # a reader whose "detector" is a recognizer run
    odd.mkdir()
    (odd / "reader.json").write_text(json.dumps({"model": "reader", "detector": str(root / "recognizer"),
                                                 "recognizer": str(root / "recognizer")}))
    result = cli.invoke(main, ["export", str(odd), "--out", str(tmp_path / "o"), "--no-parity"])
    assert result.exit_code == 2 and "is a recognizer run" in result.output and "Traceback" not in result.output
