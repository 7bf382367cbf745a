"""Training from shards: loss falls on a tiny set, resume continues at the saved step, evaluate and predict work."""
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
from synthtext_industrial.train.fit_recognizer import TrainSettings, train_recognizer  # noqa: E402
from synthtext_industrial.train.recognizer import RecognizerConfig  # noqa: E402

TINY = {"canvas": {"width": 320, "height": 160}, "typography": {"height_px": [24, 30]},
        "text": {"blocks": [{"lines": ["{9:4}"]}]}}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    recipe = recipe_from_dict(TINY)
    generate(recipe, root / "crops", n=20, seed=0, shard_size=10, workers=1)
    generate(recipe, root / "pages", n=20, seed=0, shard_size=10, workers=1, fmt="tfrecord", with_crops=False)
    return root


def lines_written(out) -> int:
    return json.loads((out / "manifest.json").read_text())["counts"]["lines"]


def test_loss_falls_when_overfitting_twenty_pages(tiny_data, tmp_path):
    config = RecognizerConfig(backbone="small", height=32, width=64, lstm_units=32)
    settings = TrainSettings(epochs=12, batch_size=10, steps_per_epoch=10, learning_rate=1e-3, patience=20)
    metrics = train_recognizer([tiny_data / "crops"], tmp_path / "run", config, settings, log=lambda _: None)
    losses = [h["loss"] for h in metrics["history"]]
    assert len(losses) == 12 and losses[-1] < 0.6 * losses[0], losses  # past CTC's all-blank plateau (~10)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["history"][-1]["step"] == 120
    assert json.loads((tmp_path / "run" / "config.json").read_text())["charset"] == "0123456789"
    assert (tmp_path / "run" / "best.weights.h5").exists() and list((tmp_path / "run" / "logs").iterdir())


def test_resume_continues_at_the_saved_step(tiny_data, tmp_path):
    config = RecognizerConfig(backbone="small", height=32, width=64, lstm_units=16)
    settings = TrainSettings(epochs=2, batch_size=10, steps_per_epoch=3, patience=10)
    train_recognizer([tiny_data / "crops"], tmp_path / "run", config, settings, log=lambda _: None)
    with pytest.raises(FileExistsError, match="--resume"):
        train_recognizer([tiny_data / "crops"], tmp_path / "run", config, settings, log=lambda _: None)
    messages = []
    metrics = train_recognizer([tiny_data / "crops"], tmp_path / "run", settings=TrainSettings(epochs=3),
                               resume=True, log=messages.append)
    assert any("resuming" in m and "epoch 2, step 6" in m for m in messages), messages
    assert [h["step"] for h in metrics["history"]] == [3, 6, 9]


def test_pages_without_crops_are_cut_on_the_fly(tiny_data):
    """A TFRecord dataset of pages only gives the same lines as the crops dataset of the same recipe and seed."""
    from synthtext_industrial.train.lines import raw_lines

    def lines(out):  # shards are interleaved, so compare in a fixed order
        return sorted(((e["text"].numpy(), e["image"].numpy()) for e in raw_lines(out)), key=lambda x: x[0])

    crops, cut = lines(tiny_data / "crops"), lines(tiny_data / "pages")
    assert [t for t, _ in crops] == [t for t, _ in cut] and len(crops) == lines_written(tiny_data / "crops")
    for (_, a), (_, b) in zip(crops, cut):
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize("with_crops", [True, False], ids=["crops", "pages-cut-on-the-fly"])
def test_lmdb_and_tfrecord_give_the_same_training_batches(tiny_data, tmp_path, with_crops):
    """The format is storage only: the same recipe and seed stream identical shuffled batches from either."""
    from synthtext_industrial.train.lines import training_batches
    from synthtext_industrial.train.text import Charset

    recipe = recipe_from_dict(TINY)
    for fmt in ("lmdb", "tfrecord"):
        generate(recipe, tmp_path / fmt, n=20, seed=0, shard_size=10, workers=1, fmt=fmt, with_crops=with_crops)

    def batches(fmt):
        stream = training_batches([tmp_path / fmt], Charset("0123456789"), height=32, width=64, batch_size=8,
                                  shuffle=16, seed=3, repeat=False)
        return [{k: v.numpy() for k, v in batch.items()} for batch in stream]

    from_lmdb, from_tfrecord = batches("lmdb"), batches("tfrecord")
    assert sum(len(b["text"]) for b in from_lmdb) == lines_written(tmp_path / "lmdb") > 8
    assert len(from_lmdb) == len(from_tfrecord)
    for a, b in zip(from_lmdb, from_tfrecord):
        assert a.keys() == b.keys()
        for key in a:
            assert np.array_equal(a[key], b[key]), key
    unshuffled = training_batches([tmp_path / "lmdb"], Charset("0123456789"), 32, 64, 8, shuffle=0, repeat=False)
    assert [t for b in from_lmdb for t in b["text"]] != [t.numpy() for b in unshuffled for t in b["text"]]


def test_training_resizes_lines_as_inference_does(tiny_data):
    """Training batches hold exactly portable.preprocess's pixels, which predict, evaluate and exports feed the model."""
    from synthtext_industrial.train.lines import raw_lines, training_batches
    from synthtext_industrial.core.portable import preprocess
    from synthtext_industrial.train.text import Charset

    lines = [(e["text"].numpy(), e["image"].numpy()) for e in raw_lines(tiny_data / "crops")][:6]
    batch = next(iter(training_batches([tiny_data / "crops"], Charset("0123456789"), 32, 64, 6, shuffle=0,
                                       repeat=False)))
    for (text, image), got, got_text in zip(lines, batch["image"].numpy(), batch["text"].numpy()):
        assert text == got_text
        assert np.array_equal(got, preprocess(image, 32, 64))


def test_evaluate_and_predict_from_the_cli(tiny_data, tmp_path):
    config = RecognizerConfig(backbone="small", height=32, width=64, lstm_units=16)
    train_recognizer([tiny_data / "crops"], tmp_path / "run", config,
                     TrainSettings(epochs=1, batch_size=10, steps_per_epoch=2), log=lambda _: None)
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "run"), "--data", str(tiny_data / "crops")])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "run" / "eval-crops" / "predictions.csv")))
    assert len(rows) == lines_written(tiny_data / "crops") and all(r["truth"].isdigit() for r in rows)
    metrics = json.loads((tmp_path / "run" / "eval-crops" / "metrics.json").read_text())
    assert metrics["string_accuracy"] == pytest.approx(np.mean([int(r["correct"]) for r in rows]))
    assert f"string accuracy {metrics['string_accuracy']:.4f}" in result.output
    # real photos: a folder with labels.tsv
    photos = tmp_path / "photos"
    photos.mkdir()
    with open(photos / "labels.tsv", "w") as fh:
        for k, row in enumerate(rows[:3]):
            cv2.imwrite(str(photos / f"{k}.png"), np.full((30, 90), 200, np.uint8))
            fh.write(f"{k}.png\t{row['truth']}\n")
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "run"), "--images", str(photos)])
    assert result.exit_code == 0, result.output
    assert "3 lines" in result.output
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "run"), str(photos / "0.png")])
    assert result.exit_code == 0 and result.output.startswith(str(photos / "0.png") + "\t")
    beam = CliRunner().invoke(main, ["evaluate", str(tmp_path / "run"), "--images", str(photos), "--beam-width", "4",
                                     "-o", str(tmp_path / "beam")])
    assert beam.exit_code == 0 and "3 lines" in beam.output, beam.output
    assert len(list(csv.DictReader(open(tmp_path / "beam" / "predictions.csv")))) == 3


def test_augmentation_is_repeatable_for_a_seed(tiny_data):
    from synthtext_industrial.train.lines import training_batches
    from synthtext_industrial.train.text import Charset

    def first_batch(seed):
        batches = training_batches([tiny_data / "crops"], Charset("0123456789"), 32, 64, 8, seed=seed, augment=True)
        return next(iter(batches))["image"].numpy()

    plain = next(iter(training_batches([tiny_data / "crops"], Charset("0123456789"), 32, 64, 8, seed=3)))
    assert (first_batch(3) == first_batch(3)).all()
    assert not (first_batch(3) == plain["image"].numpy()).all()  # the effects changed something


def test_cosine_schedule_warms_up_then_decays_to_one_percent():
    from synthtext_industrial.train.loop import cosine_rate

    settings = TrainSettings(epochs=10, steps_per_epoch=100, learning_rate=2e-3, schedule="cosine")
    rates = [cosine_rate(settings, step, 100, 0.0) for step in range(0, 1001, 10)]
    peak = rates.index(max(rates))
    assert rates[0] < 0.1 * 2e-3 and max(rates) == pytest.approx(2e-3, rel=0.01) and peak <= 3
    assert all(a >= b for a, b in zip(rates[peak:], rates[peak + 1:])), "decays monotonically after the warm-up"
    assert rates[-1] == pytest.approx(2e-5)
    timed = TrainSettings(epochs=1000, learning_rate=2e-3, schedule="cosine", max_seconds=100)
    assert cosine_rate(timed, 10, 100, 50.0) == pytest.approx(cosine_rate(settings, 500, 100, 0.0))  # time decides


def test_cosine_schedule_is_what_training_uses(tiny_data, tmp_path):
    config = RecognizerConfig(backbone="small", height=32, width=64, lstm_units=16)
    settings = TrainSettings(epochs=4, batch_size=10, steps_per_epoch=3, patience=10, schedule="cosine")
    metrics = train_recognizer([tiny_data / "crops"], tmp_path / "run", config, settings, log=lambda _: None)
    rates = [h["learning_rate"] for h in metrics["history"]]
    assert rates == sorted(rates, reverse=True) and rates[-1] < 0.2 * settings.learning_rate
    with pytest.raises(ValueError, match="plateau, cosine"):
        train_recognizer([tiny_data / "crops"], tmp_path / "other", config,
                         TrainSettings(epochs=1, steps_per_epoch=1, schedule="linear"), log=lambda _: None)


def test_init_from_the_cli_starts_from_a_trained_run(tiny_data, tmp_path):
    """`train recognizer --init RUN` keeps RUN's config and weights: the new run's first loss is the trained
    run's, not a fresh model's; a folder that is not a trained recognizer run is refused in one line."""
    config = RecognizerConfig(backbone="small", height=32, width=64, lstm_units=32)
    settings = TrainSettings(epochs=8, batch_size=10, steps_per_epoch=10, learning_rate=1e-3, patience=20)
    first = train_recognizer([tiny_data / "crops"], tmp_path / "first", config, settings, val=tiny_data / "crops",
                             log=lambda _: None)
    args = ["train", "recognizer", "--data", str(tiny_data / "crops"), "--epochs", "1", "--steps-per-epoch", "2",
            "--batch-size", "10", "--width", "128"]
    fresh = CliRunner().invoke(main, args + ["--out", str(tmp_path / "fresh")])
    warm = CliRunner().invoke(main, args + ["--out", str(tmp_path / "warm"), "--init", str(tmp_path / "first")])
    assert fresh.exit_code == 0 and warm.exit_code == 0, (fresh.output, warm.output)
    loss = {name: json.loads((tmp_path / name / "metrics.json").read_text())["history"][0]["loss"]
            for name in ("fresh", "warm")}
    assert loss["warm"] < 0.5 * loss["fresh"], loss
    started = first["history"][first["best"]["epoch"]]  # --init takes the run's best weights, not its last
    assert loss["warm"] < 2 * started["loss"] + 1, (loss, started)
    assert json.loads((tmp_path / "warm" / "config.json").read_text())["width"] == 64, "the init run's shape"
    assert json.loads((tmp_path / "warm" / "training.json").read_text())["init"] == str(tmp_path / "first")
    bad = CliRunner().invoke(main, args + ["--out", str(tmp_path / "bad"), "--init", str(tiny_data / "crops")])
    assert bad.exit_code == 2 and "--init" in bad.output and "Traceback" not in bad.output, bad.output


def test_weight_average_follows_the_formula_and_swaps_back():
    """WeightAverage keeps decay * average + (1 - decay) * weights (the decay warming up from 0.1), puts the
    average in the model only inside swapped(), and gives the trained weights back after."""
    from synthtext_industrial.train.loop import WeightAverage

    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
    start = [np.full(w.shape, 1.0, np.float32) for w in model.weights]
    model.set_weights(start)
    average = WeightAverage(model, decay=0.5)
    model.set_weights([np.full(w.shape, 3.0, np.float32) for w in model.weights])
    average.update(step=0)  # warm-up: decay min(0.5, 1/10) = 0.1 -> 0.1 * 1 + 0.9 * 3
    assert np.allclose(average.shadow[0].numpy(), 2.8)
    model.set_weights([np.full(w.shape, 5.0, np.float32) for w in model.weights])
    average.update(step=1000)  # decay 0.5 -> 0.5 * 2.8 + 0.5 * 5
    with average.swapped():
        assert all(np.allclose(w.numpy(), 3.9) for w in model.weights)
    assert all(np.allclose(w.numpy(), 5.0) for w in model.weights)


def test_ema_run_keeps_the_average_as_its_best_weights_and_resumes(tiny_data, tmp_path):
    """With --ema the best weights are the averaged weights saved in the checkpoint, not the last step's, and a
    resumed run restores the average with the rest."""
    config = RecognizerConfig(backbone="small", height=32, width=64, lstm_units=16)
    settings = TrainSettings(epochs=1, batch_size=10, steps_per_epoch=4, patience=10, ema=0.9)
    train_recognizer([tiny_data / "crops"], tmp_path / "run", config, settings, log=lambda _: None)
    from synthtext_industrial.train.recognizer import build_recognizer

    model = build_recognizer(RecognizerConfig.load(tmp_path / "run" / "config.json"))
    model.load_weights(str(tmp_path / "run" / "best.weights.h5"))
    best = [w.numpy() for w in model.weights]
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    reader = tf.train.load_checkpoint(latest)
    shadow = [reader.get_tensor(f"ema/{i}/.ATTRIBUTES/VARIABLE_VALUE") for i in range(len(best))]
    assert all(np.allclose(a, b) for a, b in zip(best, shadow))
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    trained = [w.numpy() for w in model.weights]
    assert any(not np.allclose(a, b) for a, b in zip(best, trained)), "the best weights are the last step's"
    messages = []
    metrics = train_recognizer([tiny_data / "crops"], tmp_path / "run", settings=TrainSettings(epochs=2),
                               resume=True, log=messages.append)
    assert [h["step"] for h in metrics["history"]] == [4, 8]
    assert json.loads((tmp_path / "run" / "training.json").read_text())["settings"]["ema"] == 0.9
