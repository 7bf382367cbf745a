"""The oriented detector: RBOX targets decode back to the lines at any angle, the reader rectifies rotated lines
upright from its quads, a tiny detector trains from the CLI and a reader built on it reads a frame, and a run of
another kind given as the detector is refused in one line."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

tf = pytest.importorskip("tensorflow")

from click.testing import CliRunner  # noqa: E402

from synthtext_industrial import load_recipe  # noqa: E402
from synthtext_industrial.cli import main  # noqa: E402
from synthtext_industrial.crops import line_crop  # noqa: E402
from synthtext_industrial.generate import generate  # noqa: E402
from synthtext_industrial.train import recognizer as recognizer_module  # noqa: E402
from synthtext_industrial.train.detector import (Detector, DetectorConfig, decode_quads, encode_targets,  # noqa: E402
                                                 line_rboxes)
from synthtext_industrial.train.fit_detector import detector_losses, page_batches  # noqa: E402
from synthtext_industrial.train.fit_recognizer import train_recognizer  # noqa: E402
from synthtext_industrial.train.frames import write_frame_labels  # noqa: E402
from synthtext_industrial.train.loop import TrainSettings  # noqa: E402
from synthtext_industrial.train.reader import Reader, ReaderConfig, read_frames  # noqa: E402
from synthtext_industrial.train.recognizer import RecognizerConfig  # noqa: E402

TINY = {"canvas": {"width": 320, "height": 240}, "typography": {"height_px": [36, 44]},
        "layout": {"rotation": [-20, 20], "perspective": [0, 0]},
        "text": {"blocks": [{"lines": ["{9:4}"]}]}}


def rotated_quad(cx: float, cy: float, width: float, height: float, degrees: float) -> np.ndarray:
    """A width x height text rectangle centred at (cx, cy), its baseline turned by `degrees` (clockwise on screen),
    corners clockwise from the text's top-left as read."""
    a = np.deg2rad(degrees)
    u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    c = np.array([cx, cy])
    return np.array([c - width / 2 * u - height / 2 * v, c + width / 2 * u - height / 2 * v,
                     c + width / 2 * u + height / 2 * v, c - width / 2 * u + height / 2 * v])


def nearest(quads: np.ndarray, quad: np.ndarray) -> np.ndarray:
    return quads[int(np.argmin([np.abs(q.mean(axis=0) - quad.mean(axis=0)).sum() for q in quads]))]


@pytest.mark.parametrize("degrees", [0, 6, -17, 45, 89, -100, 180])
def test_targets_decode_back_to_the_line_quads_at_any_angle(degrees):
    config = DetectorConfig(height=240, width=320)
    truth = np.stack([rotated_quad(110, 75, 130, 26, degrees), rotated_quad(230, 175, 70, 14, degrees + 3)])
    score, geometry, direction = encode_targets(truth, config)
    assert score.shape == (64, 80, 1) and geometry.shape == (64, 80, 4) and direction.shape == (64, 80, 2)
    quads, scores = decode_quads(score, geometry, direction, threshold=0.5, nms_iou=0.3)
    assert len(quads) == 2 and np.all(scores == 1.0)
    for line in truth:  # within a pixel, the first corner the text's top-left as read (upside down too)
        assert np.abs(nearest(quads, line) - line).max() < 1.0


def test_perspective_lines_become_their_enclosing_rotated_box_in_reading_order():
    line = np.array([[100, 50], [200, 60], [198, 88], [99, 80]], np.float64)  # a slightly keystoned line
    box = line_rboxes(line[None])[0]
    assert np.abs(box - line).max() < 6  # its corners, renumbered from the text's top-left
    upside_down = line_rboxes(rotated_quad(150, 100, 80, 20, 180)[None])[0]
    assert upside_down[0, 0] > upside_down[2, 0] and upside_down[0, 1] > upside_down[2, 1]  # top-left at bottom-right


def test_decoding_merges_noisy_votes_and_drops_low_scores():
    config = DetectorConfig(height=240, width=320)
    truth = rotated_quad(160, 120, 150, 30, 25)[None]
    score, geometry, direction = encode_targets(truth, config)
    rng = np.random.default_rng(0)
    noisy = geometry + rng.normal(0, 1.5, geometry.shape).astype(np.float32) * (score > 0)
    faint = np.where(score > 0, 0.9, rng.uniform(0, 0.3, score.shape)).astype(np.float32)
    quads, scores = decode_quads(faint, noisy, direction, threshold=0.5, nms_iou=0.3)
    assert len(quads) == 1 and scores[0] == pytest.approx(0.9)
    assert np.abs(quads[0] - truth[0]).max() < 1.5


def test_line_ends_come_from_the_cells_near_them():
    # cells far from an end regress it short (as a trunk that cannot see that far does); the cells near it are right
    config = DetectorConfig(height=240, width=320)
    truth = rotated_quad(160, 120, 280, 24, 8)[None]
    score, geometry, direction = encode_targets(truth, config)
    height = 24.0
    biased = geometry.copy()
    for side in (1, 3):  # left, right
        far = biased[..., side] > 2 * height
        biased[..., side][far] -= 0.25 * (biased[..., side][far] - 2 * height)
    quads, _ = decode_quads(score, biased, direction, threshold=0.5, nms_iou=0.3)
    assert len(quads) == 1
    u = truth[0, 1] - truth[0, 0]
    u /= np.linalg.norm(u)
    ends = [(quads[0][0] + quads[0][3]) / 2 @ u, (quads[0][1] + quads[0][2]) / 2 @ u]
    true_ends = [(truth[0, 0] + truth[0, 3]) / 2 @ u, (truth[0, 1] + truth[0, 2]) / 2 @ u]
    # a plain mean of the cells' boxes cuts each end by 24 px here, weights of 1 / distance by 12
    assert np.abs(np.subtract(ends, true_ends)).max() < 0.15 * height


def page_with_a_line(degrees: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(upright page, its line quad, the page turned by `degrees` about its centre, the line's quad there): a
    640x480 frame with one line of text."""
    upright = np.full((480, 640), 235, np.uint8)
    cv2.putText(upright, "LOT 2417A", (190, 262), cv2.FONT_HERSHEY_SIMPLEX, 1.6, 20, 4, cv2.LINE_AA)
    quad = np.array([[186, 222], [452, 222], [452, 272], [186, 272]], np.float64)
    turn = cv2.getRotationMatrix2D((320, 240), -degrees, 1.0)  # OpenCV's positive angle is counter-clockwise
    turned = cv2.warpAffine(upright, turn, (640, 480), flags=cv2.INTER_LINEAR, borderValue=235)
    # quads are in pixel-edge coordinates (pixel i spans [i, i + 1]), OpenCV's matrix in pixel-centre indices
    return upright, quad, turned, np.c_[quad - 0.5, np.ones(4)] @ turn.T + 0.5


@pytest.mark.parametrize("degrees", [15, -35, 170])
def test_rotated_lines_are_rectified_upright_by_the_reader(degrees, monkeypatch):
    upright, quad, turned, turned_quad = page_with_a_line(degrees)
    # a detector whose maps are the exact targets of the turned line, at half the frame's size
    detector = Detector(DetectorConfig(height=240, width=320, fusion_channels=8))
    maps = encode_targets(turned_quad[None] / 2, detector.config)
    detector.model = lambda images, training=False: tuple(np.stack([m] * len(images)) for m in maps)
    crops = []

    def read_lines(model, config, images, grammar=None):
        crops.extend(images)
        return [recognizer_module.LineReading("", 1.0, None) for _ in images]

    monkeypatch.setattr(recognizer_module, "read_lines", read_lines)
    reader = Reader(None, ReaderConfig(detector="d", recognizer="r", crop_margin=(0, 0, 0, 0)), detector, None, None)
    (line,) = read_frames(reader, [turned])[0]
    assert np.abs(line.quad - turned_quad).max() < 2.0  # frame pixels: the quad from the text's top-left
    expected = line_crop(upright, quad, 0.0)
    got = cv2.resize(crops[0], expected.shape[::-1], interpolation=cv2.INTER_AREA)
    same = np.corrcoef(got.ravel().astype(float), expected.ravel().astype(float))[0, 1]
    flipped = np.corrcoef(got.ravel().astype(float), expected[::-1, ::-1].ravel().astype(float))[0, 1]
    assert same > 0.97 and flipped < 0.5, (same, flipped)  # upright, not upside down
    assert np.abs(got.astype(float) - expected).mean() < 8


def test_a_frame_is_letterboxed_into_the_detector_keeping_its_aspect():
    from synthtext_industrial.core import portable

    frame = np.random.default_rng(0).integers(0, 256, (360, 640), dtype=np.uint8)
    x, scale = portable.letterbox(frame, 240, 320)
    assert x.shape == (240, 320, 1) and np.allclose(scale, [0.5, 0.5])  # 16:9 in 4:3: the width fits
    expected = cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA)
    assert np.array_equal(x[:180, :, 0], expected.astype(np.float32))
    assert np.all(x[180:, :, 0] == round(float(expected.mean())))  # the rest: the frame's mean gray
    same, scale = portable.letterbox(frame[:, :480], 240, 320)  # the input's own aspect: the plain resize
    assert np.array_equal(same, portable.preprocess(frame[:, :480], 240, 320)) and np.allclose(scale, 2 / 3)


def test_a_wide_frame_keeps_its_text_shape_and_the_quads_come_back_in_frame_pixels(monkeypatch):
    """A 16:9 frame read by a 4:3 detector: the detector sees the line at its own shape (not a third taller), and
    the quad it finds comes back where the line is in the frame."""
    _, _, turned, turned_quad = page_with_a_line(12)
    wide = np.full((720, 1280), 235, np.uint8)
    wide[120:600, 320:960] = turned
    quad = turned_quad + [320, 120]
    detector = Detector(DetectorConfig(height=240, width=320, fusion_channels=8))
    seen = []

    def model(images, training=False):  # the exact targets of the line as the letterbox puts it in the input
        seen.append(np.asarray(images))
        maps = encode_targets(quad[None] / 4, detector.config)
        return tuple(np.stack([m] * len(images)) for m in maps)

    detector.model = model
    monkeypatch.setattr(recognizer_module, "read_lines",
                        lambda model, config, images, grammar=None: [recognizer_module.LineReading("", 1.0, None)
                                                                     for _ in images])
    reader = Reader(None, ReaderConfig(detector="d", recognizer="r", crop_margin=(0, 0, 0, 0)), detector, None, None)
    (line,) = read_frames(reader, [wide])[0]
    assert np.abs(line.quad - quad).max() < 4.0  # frame pixels
    x = seen[0][0, :, :, 0]
    assert np.array_equal(x[:180], cv2.resize(wide, (320, 180), interpolation=cv2.INTER_AREA))  # a quarter, both ways
    assert np.all(x[180:] == x[200, 5])  # padded below the frame, not stretched over the input


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny pages with rotated lines, a detector trained for two steps from the CLI and a recognizer for two."""
    root = tmp_path_factory.mktemp("detector")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY), encoding="utf-8")
    recipe = load_recipe(root / "tiny.yaml")
    generate(recipe, root / "train", n=8, seed=0, shard_size=8, workers=1)
    generate(recipe, root / "val", n=2, seed=1, shard_size=2, workers=1, with_crops=False)
    result = CliRunner().invoke(main, ["train", "detector", "--data", str(root / "train"), "--val", str(root / "val"),
                                       "--out", str(root / "detector"), "--height", "120", "--width", "160",
                                       "--fusion-channels", "16", "--epochs", "1", "--batch-size", "4",
                                       "--steps-per-epoch", "2", "--val-pages", "2", "--score-threshold", "0.05"])
    assert result.exit_code == 0, result.output
    quick = dict(epochs=1, batch_size=4, steps_per_epoch=2, val_lines=2)
    train_recognizer([root / "train"], root / "recognizer", RecognizerConfig(height=32, width=64, lstm_units=16),
                     TrainSettings(**quick), log=lambda _: None)
    assert write_frame_labels(root / "val", root / "frames", "jsonl") == 2
    return root


def test_page_batches_hold_rotated_targets_and_the_losses_are_finite(runs):
    config = DetectorConfig(height=120, width=160, fusion_channels=8)
    batch = next(iter(page_batches([runs / "train"], config, 2, shuffle=0)))
    assert batch["score"].shape == (2, 32, 40, 1) and batch["direction"].shape == (2, 32, 40, 2)
    text = batch["score"].numpy()[..., 0] > 0.5
    angles = np.degrees(np.arctan2(*batch["direction"].numpy()[text].T[::-1]))
    assert text.any() and np.abs(angles).max() <= 21 and np.abs(angles).max() > 0.5  # the recipe's rotations
    losses = detector_losses(Detector(config), batch)
    assert all(np.isfinite(float(v)) for v in losses.values())


def test_training_pages_are_letterboxed_as_frames_are_read(tmp_path):
    """A recipe of 16:9 pages trains a 4:3 detector on what it will see: the page letterboxed, not stretched."""
    from synthtext_industrial.core import portable
    from synthtext_industrial.store.readers import LmdbDataset
    from synthtext_industrial.train.fit_spotter import resized_pages

    (tmp_path / "wide.yaml").write_text(yaml.safe_dump({**TINY, "canvas": {"width": 320, "height": 180}}),
                                        encoding="utf-8")
    generate(load_recipe(tmp_path / "wide.yaml"), tmp_path / "wide", n=2, seed=0, shard_size=2, workers=1,
             with_crops=False)
    page = next(iter(resized_pages([tmp_path / "wide"], 120, 160, shuffle=0, repeat=False, keep_ratio=True)))
    first = LmdbDataset(tmp_path / "wide")[0]
    expected, scale = portable.letterbox(first["image"], 120, 160)
    assert np.allclose(page["scale"].numpy(), scale)
    got = page["image"].numpy()[..., 0].astype(float)
    stretched = portable.preprocess(first["image"], 120, 160)[..., 0]
    # TensorFlow's antialiased resize differs from OpenCV's area average by a few levels on textured surfaces
    assert np.abs(got - expected[..., 0]).mean() < 5
    assert np.abs(got - expected[..., 0]).mean() < 0.5 * np.abs(got - stretched).mean()
    assert np.abs(got[90:] - expected[90:, :, 0]).max() <= 1  # the same mean-gray band below the page


def test_the_angle_loss_is_the_angle_error_and_its_gradients_are_finite(runs):
    """1 - cos(error) is ~0.001 at the 3 degrees codes are turned and left the direction head level; the loss is
    the error itself. Cells without text have no direction (0, 0): no NaN may come back from them."""
    import tensorflow as tf

    config = DetectorConfig(height=120, width=160, fusion_channels=8)
    batch = next(iter(page_batches([runs / "train"], config, 2, shuffle=0)))
    detector = Detector(config)
    with tf.GradientTape() as tape:
        total = detector_losses(detector, batch)["total"]
    grads = tape.gradient(total, detector.trainable_variables)
    assert all(g is None or np.isfinite(g.numpy()).all() for g in grads)

    turn = np.radians(3.0)
    target = batch["direction"].numpy()
    c, s = np.cos(turn), np.sin(turn)
    off = np.stack([c * target[..., 0] - s * target[..., 1], s * target[..., 0] + c * target[..., 1]], -1)
    off[batch["score"].numpy()[..., 0] <= 0.5] = (1.0, 0.0)
    fake = Detector(config)
    fake.model = lambda images, training=False: (batch["score"], batch["geometry"], tf.constant(off, tf.float32))
    assert abs(float(detector_losses(fake, batch)["angle"]) - turn) < 1e-4


def test_a_trained_detector_saves_loads_and_reads_a_frame_in_a_reader(runs, tmp_path):
    saved = json.loads((runs / "detector" / "config.json").read_text())
    assert saved["model"] == "detector" and saved["score_threshold"] == 0.05
    assert (runs / "detector" / "best.weights.h5").exists()
    metrics = json.loads((runs / "detector" / "metrics.json").read_text())
    assert {"val_precision", "val_recall", "val_f1", "loss_angle"} <= set(metrics["history"][0])
    cli = CliRunner()
    frame = sorted((runs / "frames").glob("*.png"))[0]
    result = cli.invoke(main, ["predict", str(runs / "detector"), str(frame), "--draw", str(tmp_path / "drawn")])
    assert result.exit_code == 0, result.output
    quads = [line.split("\t") for line in result.output.splitlines() if line.startswith(str(frame))]
    assert quads and all(len(q[1].split(",")) == 8 for q in quads)
    assert (tmp_path / "drawn" / (frame.stem + ".png")).exists()

    reader = tmp_path / "reader"
    result = cli.invoke(main, ["reader", "create", "--detector", str(runs / "detector"), "--recognizer",
                               str(runs / "recognizer"), "--out", str(reader)])
    assert result.exit_code == 0, result.output
    result = cli.invoke(main, ["predict", str(reader), str(frame)])
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.output.splitlines() if line.startswith(str(frame))]
    assert lines and all(len(line[1].split(",")) == 8 and 0 <= float(line[3]) <= 1 for line in lines)
    result = cli.invoke(main, ["evaluate", str(reader), "--frames", str(runs / "frames"), "-o", str(tmp_path / "e")])
    assert result.exit_code == 0 and "detection (IoU 0.5)" in result.output, result.output
    result = cli.invoke(main, ["evaluate", str(runs / "detector"), "--frames", str(runs / "frames"), "-o",
                               str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "d" / "metrics.json").read_text())["frames"] == 2


def test_a_run_of_another_kind_as_detector_is_refused_in_one_line(runs, tmp_path):
    cli = CliRunner()
    result = cli.invoke(main, ["reader", "create", "--detector", str(runs / "recognizer"), "--recognizer",
                               str(runs / "recognizer"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "is a recognizer run, not a detector" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r").exists()
    result = cli.invoke(main, ["reader", "create", "--detector", str(runs / "train"), "--recognizer",
                               str(runs / "recognizer"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "not a training run" in result.output and "Traceback" not in result.output
    result = cli.invoke(main, ["train", "detector", "--help"])
    assert result.exit_code == 0 and "default: 0.7" in result.output and "default: small" in result.output
