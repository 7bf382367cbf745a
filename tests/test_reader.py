"""A reader run end to end on a tiny synthetic set: `reader create`, `predict --draw`, `evaluate --frames` in both
ground-truth formats (the scores recomputed from predictions.csv), the spotter alone on the same frames, and the
errors a person meets first."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

tf = pytest.importorskip("tensorflow")

from click.testing import CliRunner  # noqa: E402

from synthtext_industrial import load_recipe  # noqa: E402
from synthtext_industrial.cli import main  # noqa: E402
from synthtext_industrial.generate import generate  # noqa: E402
from synthtext_industrial.train.fit_recognizer import train_recognizer  # noqa: E402
from synthtext_industrial.train.fit_spotter import train_spotter  # noqa: E402
from synthtext_industrial.train.frames import prf, write_frame_labels  # noqa: E402
from synthtext_industrial.train.loop import TrainSettings  # noqa: E402
from synthtext_industrial.train.reader import FrameLine, load_reader, read_frame, read_frames  # noqa: E402
from synthtext_industrial.train.recognizer import RecognizerConfig  # noqa: E402
from synthtext_industrial.train.spotter import SpotterConfig  # noqa: E402

TINY = {"canvas": {"width": 320, "height": 240}, "typography": {"height_px": [36, 44]},
        "layout": {"rotation": [0, 0], "perspective": [0, 0]},
        "crops": {"margin_x": [0.1, 0.3], "margin_y": [0.1, 0.1]},
        "text": {"blocks": [{"lines": ["{9:4}"]}]}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A spotter and a recognizer trained for a few steps (they read next to nothing: the test checks the plumbing
    and that the scores agree with the predictions, not accuracy), and the val pages as frames in both formats."""
    root = tmp_path_factory.mktemp("reader")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY), encoding="utf-8")  # the manifest keeps a file's text
    recipe = load_recipe(root / "tiny.yaml")
    generate(recipe, root / "train", n=8, seed=0, shard_size=8, workers=1)
    generate(recipe, root / "val", n=3, seed=1, shard_size=3, workers=1, with_crops=False)
    spotter = SpotterConfig(backbone="small", height=120, width=160, fusion_channels=16, roi_width=16,
                            lstm_units=16, charset="0123456789")
    quick = dict(epochs=1, batch_size=4, steps_per_epoch=2, val_lines=2)
    train_spotter([root / "train"], root / "spotter", spotter, TrainSettings(**quick), log=lambda _: None)
    train_recognizer([root / "train"], root / "recognizer", RecognizerConfig(height=32, width=64, lstm_units=16),
                     TrainSettings(**quick), log=lambda _: None)
    assert write_frame_labels(root / "val", root / "frames-jsonl", "jsonl") == 3
    assert write_frame_labels(root / "val", root / "frames-icdar", "icdar") == 3
    return root


def recompute(rows: list[dict]) -> dict:
    """The scores from predictions.csv alone (docs/reader.md)."""
    status = [r["status"] for r in rows]
    gt = status.count("matched") + status.count("missed")
    detections = status.count("matched") + status.count("false_positive")
    matched = status.count("matched")
    correct = sum(int(r["correct"]) for r in rows if r["status"] == "matched")
    p, r, f = prf(matched, detections, gt)
    ep, er, ef = prf(correct, detections, gt)
    return {"gt_lines": gt, "detections": detections, "matched": matched, "correct": correct, "precision": p,
            "recall": r, "f1": f, "e2e_precision": ep, "e2e_recall": er, "e2e_f1": ef}


def test_reader_create_predict_and_evaluate_frames(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(runs)
    cli = CliRunner()
    # relative paths are kept relative to the reader folder; the threshold 0 makes the young spotter detect
    reader = tmp_path / "reader"
    result = cli.invoke(main, ["reader", "create", "--detector", "spotter", "--recognizer", "recognizer", "--out",
                               str(reader), "--score-threshold", "0"])
    assert result.exit_code == 0, result.output
    saved = json.loads((reader / "reader.json").read_text())
    assert saved["model"] == "reader" and not Path(saved["detector"]).is_absolute()
    assert (reader / saved["detector"]).resolve() == (runs / "spotter").resolve()
    assert saved["crop_margin"] == pytest.approx([0.2, 0.1, 0.2, 0.1])  # the middle of the recipe's crop margins
    monkeypatch.chdir(tmp_path)

    frame = runs / "frames-jsonl" / sorted(p.name for p in (runs / "frames-jsonl").glob("*.png"))[0]
    result = cli.invoke(main, ["predict", str(reader), str(frame), "--draw", str(tmp_path / "drawn")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(str(frame))]
    assert lines
    for line in lines:
        path, quad, _text, confidence = line.split("\t")[:4]
        assert len(quad.split(",")) == 8 and 0 <= float(confidence) <= 1
    assert cv2.imread(str(tmp_path / "drawn" / (frame.stem + ".png"))).shape == (240, 320, 3)

    val_lines = json.loads((runs / "val" / "manifest.json").read_text())["counts"]["lines"]
    scores = {}
    for fmt in ("jsonl", "icdar"):
        out = tmp_path / f"eval-{fmt}"
        result = cli.invoke(main, ["evaluate", str(reader), "--frames", str(runs / f"frames-{fmt}"), "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert "detection (IoU 0.5)" in result.output and "end to end" in result.output
        metrics = json.loads((out / "metrics.json").read_text())
        rows = list(csv.DictReader(open(out / "predictions.csv", encoding="utf-8")))
        assert metrics["frames"] == 3 and len({r["frame"] for r in rows}) == 3
        for key, value in recompute(rows).items():
            assert metrics[key] == pytest.approx(value), key
        per_frame = list(csv.DictReader(open(out / "frames.csv", encoding="utf-8")))
        assert sum(int(r["gt"]) for r in per_frame) == metrics["gt_lines"] == val_lines
        assert (out / "failures.png").exists() == (metrics["frame_accuracy"] < 1.0)
        scores[fmt] = metrics
    assert scores["jsonl"] == scores["icdar"]  # the same frames in either format score the same

    # the spotter alone on the same frames
    spotter_out = tmp_path / "eval-spotter"
    result = cli.invoke(main, ["evaluate", str(runs / "spotter"), "--frames", str(runs / "frames-jsonl"), "-o",
                               str(spotter_out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((spotter_out / "metrics.json").read_text())
    rows = list(csv.DictReader(open(spotter_out / "predictions.csv", encoding="utf-8")))
    assert metrics["gt_lines"] == val_lines and metrics["e2e_f1"] == pytest.approx(recompute(rows)["e2e_f1"])


def test_library_api_reads_frames_as_quads(runs, tmp_path):
    from synthtext_industrial.train.reader import create_reader

    create_reader(runs / "spotter", runs / "recognizer", tmp_path / "r", height=96, width=128, score_threshold=0.0,
                  crop_margin=0.15, grammar=False)
    reader = load_reader(tmp_path / "r")
    assert (reader.detector.config.height, reader.detector.config.width) == (96, 128)  # the detector at another size
    page = cv2.imread(str(sorted((runs / "frames-jsonl").glob("*.png"))[0]), cv2.IMREAD_GRAYSCALE)
    lines = read_frame(reader, page)
    assert lines and all(isinstance(line, FrameLine) and line.quad.shape == (4, 2) for line in lines)
    assert read_frames(reader, [page, page])[1][0].text == lines[0].text
    assert read_frames(reader, [np.full((50, 60), 255, np.uint8)])[0] is not None


def test_errors_are_one_line_and_exit_2(runs, tmp_path):
    cli = CliRunner()
    reader = tmp_path / "reader"
    assert cli.invoke(main, ["reader", "create", "--detector", str(runs / "spotter"), "--recognizer",
                             str(runs / "recognizer"), "--out", str(reader)]).exit_code == 0
    bad = tmp_path / "bad"
    bad.mkdir()
    cv2.imwrite(str(bad / "a.png"), np.zeros((10, 10), np.uint8))
    (bad / "labels.jsonl").write_text('{"image": "a.png", "lines": []}\n{"image": "a.png", "lines": [{"quad": 1}]}\n')
    result = cli.invoke(main, ["evaluate", str(reader), "--frames", str(bad)])
    assert result.exit_code == 2 and f"{bad / 'labels.jsonl'}:2: line 0: quad must be 4 [x, y] points" in \
        result.output and "Traceback" not in result.output
    (bad / "labels.jsonl").unlink()
    (bad / "gt_a.txt").write_text("1,2,3,4,5,6,7,8\n")
    result = cli.invoke(main, ["evaluate", str(reader), "--frames", str(bad)])
    assert result.exit_code == 2 and "gt_a.txt:1: expected x1,y1,x2,y2,x3,y3,x4,y4,text" in result.output
    result = cli.invoke(main, ["evaluate", str(reader), "--data", str(runs / "val")])
    assert result.exit_code == 2 and "--frames" in result.output
    result = cli.invoke(main, ["evaluate", str(runs / "recognizer"), "--frames", str(bad)])
    assert result.exit_code == 2 and "reader, detector or spotter" in result.output
    result = cli.invoke(main, ["reader", "create", "--detector", str(runs / "recognizer"), "--recognizer",
                               str(runs / "recognizer"), "--out", str(tmp_path / "r2")])
    assert result.exit_code == 2 and "not a detector" in result.output
    result = cli.invoke(main, ["export", str(reader), "--output", str(tmp_path / "x"), "--no-parity"])
    assert result.exit_code != 0 and "reader" in result.output
    (reader / "reader.json").write_text(json.dumps({"model": "reader", "detector": "nowhere",
                                                    "recognizer": str(runs / "recognizer")}))
    result = cli.invoke(main, ["predict", str(reader), str(bad / "a.png")])
    assert result.exit_code == 2 and "detector" in result.output and "nowhere" in result.output
