"""End-to-end spotter: shapes, target round trip, NMS decoding, matching, training, resume and the CLI."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from click.testing import CliRunner  # noqa: E402

from synthtext_industrial import recipe_from_dict  # noqa: E402
from synthtext_industrial.cli import main  # noqa: E402
from synthtext_industrial.generate import generate  # noqa: E402
from synthtext_industrial.train.evaluate_spotter import PageSpots, match_boxes, score_pages  # noqa: E402
from synthtext_industrial.train.fit_recognizer import TrainSettings  # noqa: E402
from synthtext_industrial.train.fit_spotter import page_batches, train_spotter  # noqa: E402
from synthtext_industrial.train.spotter import (STRIDE, Spotter, SpotterConfig, decode_boxes, encode_targets,
                                                feature_pyramid)

TINY = {"canvas": {"width": 320, "height": 240}, "typography": {"height_px": [36, 44]},
        "layout": {"rotation": [0, 0], "perspective": [0, 0]},
        "text": {"blocks": [{"lines": ["{9:4}"]}]}}


def tiny_config(**overrides) -> SpotterConfig:
    values = dict(backbone="small", height=120, width=160, fusion_channels=16, roi_width=16, lstm_units=16,
                  charset="0123456789")
    return SpotterConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("spotter")
    recipe = recipe_from_dict(TINY)
    generate(recipe, root / "train", n=12, seed=0, shard_size=6, workers=1, with_crops=False)
    generate(recipe, root / "val", n=4, seed=1, shard_size=4, workers=1, with_crops=False, fmt="tfrecord")
    return root


@pytest.mark.parametrize("backbone", ["small", "efficientnet-b0"])
def test_spotter_outputs_maps_at_stride_four_and_ctc_steps_per_box(backbone):
    config = tiny_config(backbone=backbone, height=120, width=160)  # height padded to 128 for the backbone
    model = Spotter(config)
    features, score, geometry = model.detector(np.zeros((2, 120, 160, 1), np.float32))
    assert config.map_shape == (32, 40)
    assert tuple(score.shape) == (2, 32, 40, 1) and tuple(geometry.shape) == (2, 32, 40, 4)
    assert tuple(features.shape) == (2, 32, 40, 16) and float(tf.reduce_min(geometry)) > 0
    logits = model.read(features, tf.constant([[8.0, 8, 80, 30], [0, 0, 160, 120], [40, 60, 100, 90]]),
                        tf.constant([0, 1, 1]))
    assert tuple(logits.shape) == (3, 16, 11)


@pytest.mark.parametrize("backbone, channels", [("efficientnet-b1", 320), ("efficientnet-b2", 352),
                                                ("efficientnet-b3", 384)])
def test_larger_efficientnets_give_four_scales(backbone, channels):
    taps = feature_pyramid(backbone, 64, 64)(np.zeros((1, 64, 64, 1), np.float32))
    assert [tuple(t.shape[1:3]) for t in taps] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    assert taps[-1].shape[-1] == 4 * channels  # EfficientNet's top conv: 1280 for B0, scaled by width


def test_config_rejects_what_cannot_work():
    with pytest.raises(ValueError, match="mobilenetv3"):
        tiny_config(backbone="mobilenetv3").validate()
    with pytest.raises(ValueError, match="RoI width"):
        tiny_config(roi_width=16).validate(max_label_length=9)
    with pytest.raises(ValueError, match="multiple"):
        tiny_config(width=150).validate()
    assert tiny_config(width=100, height=76).map_shape == (24, 32)  # padded to 96x128 for stride 32


def test_targets_decode_back_to_the_boxes():
    config = tiny_config(height=120, width=160)
    boxes = np.array([[10.3, 12.0, 90.0, 30.5], [20.0, 60.0, 150.0, 95.0], [100.0, 100.0, 108.0, 106.0]],
                     np.float32)
    score, geometry = encode_targets(boxes, config)
    assert score.shape == (32, 40, 1) and geometry.shape == (32, 40, 4)
    assert score[2:5].sum() > 0 and score[0, 0, 0] == 0 and score[25, 26, 0] == 1  # the tiny box has its cell
    found, scores = decode_boxes(score, geometry, threshold=0.5)
    order = np.argsort(found[:, 1] * 1000 + found[:, 0])
    np.testing.assert_allclose(found[order], boxes, atol=1.0)
    assert (scores == 1).all()


def test_nms_merges_noisy_votes_and_drops_low_scores():
    config = tiny_config(height=120, width=160)
    score, geometry = encode_targets(np.array([[20.0, 20.0, 100.0, 44.0]], np.float32), config)
    noisy = geometry + np.random.default_rng(0).normal(0, 1.5, geometry.shape).astype(np.float32) * score
    weights = score.copy()
    weights[score[..., 0] > 0] = np.linspace(0.8, 1.0, int(score.sum()))[:, None]
    weights[28, 35, 0] = 0.4  # a speck below the threshold
    found, scores = decode_boxes(weights, np.abs(noisy), threshold=0.5, nms_iou=0.3)
    assert found.shape == (1, 4)
    np.testing.assert_allclose(found[0], [20, 20, 100, 44], atol=1.5)
    assert 0.8 <= scores[0] <= 1.0


def test_matching_and_scores_on_hand_made_boxes():
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float32)
    pred = np.array([[0, 0, 10, 9], [1, 0, 11, 10], [20, 0, 26, 10], [60, 0, 70, 10]], np.float32)
    # the better-scoring of the two boxes on gt 0 takes it; [20,0,26,10] has IoU 0.6 with gt 1
    assert match_boxes(pred, [0.5, 0.9, 0.8, 0.7], gt) == [(1, 0), (2, 1)]
    page = PageSpots("p", gt, ["A1", "B2", "C3"], pred, ["A1", "A1", "B9", "X"], [0.5, 0.9, 0.8, 0.7])
    result = score_pages([page, PageSpots("q", gt[:1], ["Z"], pred[:1], ["Z"], [0.9])])
    assert (result.gt_lines, result.detections) == (4, 5)
    assert result.precision == pytest.approx(3 / 5) and result.recall == pytest.approx(3 / 4)
    assert result.f1 == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert result.e2e_precision == pytest.approx(2 / 5) and result.string_accuracy == pytest.approx(2 / 4)
    assert result.page_accuracy == pytest.approx(0.5)


def test_page_batches_carry_the_lines_of_each_page(pages):
    config = tiny_config()
    batch = next(iter(page_batches([pages / "train"], config, 3, shuffle=0, repeat=False)))
    manifest = json.loads((pages / "train" / "manifest.json").read_text())
    assert batch["image"].shape == (3, 120, 160, 1) and batch["score"].shape == (3, 32, 40, 1)
    assert int(batch["count"].numpy().sum()) >= 3 and manifest["counts"]["lines"] >= 12
    for i in range(3):
        n = int(batch["count"][i])
        boxes = batch["boxes"][i, :n].numpy()
        assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()
        assert (boxes[:, 2] <= 161).all() and (boxes[:, 3] <= 121).all()
        rows = ((boxes[:, 1] + boxes[:, 3]) / 2 // STRIDE).astype(int)
        cols = ((boxes[:, 0] + boxes[:, 2]) / 2 // STRIDE).astype(int)
        assert (batch["score"].numpy()[i, rows, cols, 0] == 1).all()
        assert all(len(t) == 4 for t in batch["texts"][i, :n].numpy())
        assert (batch["length"][i, :n].numpy() == 4).all()


def test_loss_falls_resume_continues_and_cli_spots(pages, tmp_path):
    config = tiny_config()
    run = tmp_path / "run"
    settings = TrainSettings(epochs=3, batch_size=4, steps_per_epoch=8, learning_rate=3e-3, patience=10,
                             val_lines=4, ema=0.9)  # validated on averaged weights (both of the spotter's models)
    metrics = train_spotter([pages / "train"], run, config, settings, val=pages / "val", log=lambda _: None)
    first, last = metrics["history"][0], metrics["history"][-1]
    assert last["step"] == 24
    assert last["loss"] < 0.8 * first["loss"], [h["loss"] for h in metrics["history"]]
    assert last["loss_score"] < first["loss_score"]
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"] == "spotter" and saved["charset"] == "0123456789"
    training = json.loads((run / "training.json").read_text())
    assert training["data"][0]["recipe_sha256"] and training["val"] == str(pages / "val")
    assert (run / "best.weights.h5").exists() and (run / "best.reader.weights.h5").exists()
    assert list((run / "logs").iterdir()) and "val_e2e_f1" in last

    with pytest.raises(FileExistsError, match="--resume"):
        train_spotter([pages / "train"], run, config, settings, log=lambda _: None)
    messages = []
    resumed = train_spotter([pages / "train"], run, settings=TrainSettings(epochs=4), resume=True,
                            log=messages.append)
    assert any("epoch 3, step 24" in m for m in messages), messages
    assert [h["step"] for h in resumed["history"]] == [8, 16, 24, 32]

    result = CliRunner().invoke(main, ["evaluate", str(run), "--data", str(pages / "val")])
    assert result.exit_code == 0, result.output
    scores = json.loads((run / "eval-val" / "metrics.json").read_text())
    rows = list(csv.DictReader(open(run / "eval-val" / "predictions.csv")))
    assert scores["pages"] == 4 and scores["gt_lines"] == sum(1 for r in rows if r["truth"])
    assert scores["string_accuracy"] == pytest.approx(np.mean([int(r["correct"]) for r in rows if r["truth"]]))
    assert f"F1 {scores['f1']:.4f} (IoU 0.5)" in result.output
    # predict: one line per detection with its box; --draw writes the annotated page. A model this
    # young scores nothing above the default threshold, so take every cell as a vote here
    config_path = run / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "score_threshold": 0.0}))
    page = np.full((240, 320), 180, np.uint8)
    cv2.imwrite(str(tmp_path / "page.png"), page)
    result = CliRunner().invoke(main, ["predict", str(run), str(tmp_path / "page.png"), "--draw",
                                       str(tmp_path / "drawn")])
    assert result.exit_code == 0, result.output
    assert result.output.strip()
    for line in result.output.splitlines():
        path, box, _text, _score = line.split("\t")
        assert path == str(tmp_path / "page.png") and len(box.split(",")) == 4
    assert cv2.imread(str(tmp_path / "drawn" / "page.png")).shape == (240, 320, 3)
    result = CliRunner().invoke(main, ["evaluate", str(run), "--images", str(tmp_path)])
    assert result.exit_code != 0 and "--data" in result.output


def test_train_spotter_from_the_cli(pages, tmp_path):
    run = tmp_path / "cli-run"
    args = ["train", "spotter", "--data", str(pages / "train"), "--data", str(pages / "val"), "--weight", "3",
            "--weight", "1", "--height", "120", "--width", "160", "--epochs", "1", "--steps-per-epoch", "2",
            "--batch-size", "2", "--val-pages", "2", "--out", str(run)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "no --val given" in result.output and "best epoch 1: end-to-end F1" in result.output
    config = json.loads((run / "config.json").read_text())
    assert (config["model"], config["width"], config["height"], config["roi_width"]) == ("spotter", 160, 120, 32)
    training = json.loads((run / "training.json").read_text())
    assert [d["path"] for d in training["data"]] == [str(pages / "train"), str(pages / "val")]
    assert training["settings"]["weights"] == [3.0, 1.0]
    assert json.loads((run / "metrics.json").read_text())["history"][-1]["step"] == 2
    result = CliRunner().invoke(main, args[:6] + ["--weight", "1"] + args[10:] + ["--resume"])
    assert result.exit_code != 0 and "one --weight per --data" in result.output


def test_training_jitters_only_the_boxes_the_reader_crops(pages):
    from synthtext_industrial.train.fit_spotter import spotter_losses

    model = Spotter(tiny_config(box_jitter=0.3))
    batch = next(iter(page_batches([pages / "train"], model.config, 3, shuffle=0, repeat=False)))
    first, again = spotter_losses(model, batch), spotter_losses(model, batch)
    assert float(first["ctc"]) == pytest.approx(float(again["ctc"]), rel=1e-5), "no generator, no jitter"
    rng = tf.random.Generator.from_seed(0)
    jittered = [spotter_losses(model, batch, jitter_rng=rng) for _ in range(2)]
    assert abs(float(jittered[0]["ctc"]) - float(jittered[1]["ctc"])) > 1e-4, "boxes move between steps"
    for key in ("score", "geometry"):  # the detector's targets stay where the text is
        assert float(jittered[0][key]) == pytest.approx(float(first[key]), rel=1e-5)
    replay = spotter_losses(model, batch, jitter_rng=tf.random.Generator.from_seed(0))
    assert float(replay["ctc"]) == pytest.approx(float(jittered[0]["ctc"]), rel=1e-5), "the seed decides"
    calm = spotter_losses(model, batch, training=False, jitter_rng=rng)
    assert float(calm["ctc"]) == pytest.approx(float(spotter_losses(model, batch, training=False)["ctc"]),
                                               rel=1e-5), "no jitter outside training"
