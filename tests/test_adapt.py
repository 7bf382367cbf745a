"""`adapt`: self-training on unlabelled real line images, and batch-norm statistics only.

The "real photos" are crops of another tiny generated set, written as PNG files into a folder with a labels.tsv of
WRONG labels beside them: every file read is watched, and the test fails if adapt opens the labels (or reads a
wrong label into a pseudo-label).
"""
from __future__ import annotations

import builtins
import csv
import io
import json
import pathlib
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from synthtext_industrial.cli import main
from synthtext_industrial.stages.text import TextConfig
from synthtext_industrial.train.adapt import AdaptSettings, find_images, select_pseudo_labels
from synthtext_industrial.train.grammar import compile_grammar

TINY = {"canvas": {"width": 320, "height": 160}, "typography": {"height_px": [24, 30]},
        "text": {"blocks": [{"lines": ["{9:4}"]}]}}
WRONG = "87654321"  # every line's label in the photos' labels.tsv: digits the model could print, never the truth


def reading(text, confidence, rejected=False):
    return SimpleNamespace(text=text, confidence=confidence, rejected=rejected)


# ------------------------------------------------------------------------------------ choosing pseudo-labels

def test_pseudo_labels_are_confident_readings_the_grammar_accepts():
    grammar = compile_grammar([TextConfig.model_validate({"blocks": [{"lines": ["LOT {9:2}"]}]})])
    readings = [reading("LOT 12", 0.95), reading("LOT 1", 0.99), reading("LOT 12", 0.3), reading("", 0.0, True),
                reading("", 1.0), reading("LOT 34", 0.5), reading("LOT 1A", 0.99)]
    selection = select_pseudo_labels(readings, 0.5, grammar)
    assert selection.reasons == ["kept", "outside the grammar", "low confidence", "rejected by the grammar",
                                 "empty", "kept", "outside the grammar"]
    assert selection.kept == [0, 5]
    assert selection.dropped() == {"rejected by the grammar": 1, "empty": 1, "outside the grammar": 2,
                                   "low confidence": 1}
    # without a grammar only emptiness, length and confidence count
    assert select_pseudo_labels(readings, 0.5).kept == [0, 1, 5, 6]
    assert select_pseudo_labels(readings, 0.5, max_length=5).reasons[:2] == ["too long", "kept"]
    assert select_pseudo_labels(readings, 1.01, grammar).kept == []


def test_only_image_files_are_listed(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/b/2.PNG", "1.jpg", "labels.tsv", "notes.txt", "a/3.tif"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)] == ["1.jpg", "a/3.tif", "a/b/2.PNG"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        find_images(tmp_path / "empty")


# ------------------------------------------------------------------------------------------ end to end

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A recognizer trained for 150 steps on 20 pages of 4-digit codes (its last weights print a character or
    more for every line), and 16 line crops of other pages as the unlabelled photos, some in a subfolder, with a
    labels.tsv of wrong labels and a note beside them."""
    pytest.importorskip("tensorflow")
    import cv2

    from synthtext_industrial.generate import generate
    from synthtext_industrial.recipe import load_recipe
    from synthtext_industrial.train.evaluate import dataset_lines
    from synthtext_industrial.train.fit_recognizer import TrainSettings, train_recognizer
    from synthtext_industrial.train.recognizer import RecognizerConfig

    root = tmp_path_factory.mktemp("adapt")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    recipe = load_recipe(root / "tiny.yaml")
    generate(recipe, root / "data", n=20, seed=0, shard_size=10, workers=1)
    generate(recipe, root / "real", n=10, seed=3, shard_size=10, workers=1)
    photos = root / "photos"
    (photos / "more").mkdir(parents=True)
    rows = []
    for k, (_, image, _) in enumerate(dataset_lines(root / "real")):
        name = f"{'more/' if k % 3 == 0 else ''}{k:03d}.png"
        assert cv2.imwrite(str(photos / name), image)
        rows.append(f"{name}\t{WRONG}\n")
    (photos / "labels.tsv").write_text("".join(rows))
    (photos / "notes.txt").write_text("photographed on line 3\n")
    config = RecognizerConfig(backbone="small", height=32, width=64, lstm_units=32)
    settings = TrainSettings(epochs=3, batch_size=16, steps_per_epoch=50, learning_rate=1e-2, seed=0, patience=20)
    train_recognizer([root / "data"], root / "run", config, settings, log=lambda _: None)
    return SimpleNamespace(root=root, run=root / "run", photos=photos, data=root / "data", count=len(rows))


@pytest.fixture
def watched(monkeypatch, tiny):
    """Every attempt to open a file that is not an image, inside the photos folder, is recorded and fails."""
    import cv2

    attempts = []
    photos = str(tiny.photos.resolve())

    def forbidden(path) -> bool:
        try:
            resolved = str(pathlib.Path(path).resolve())
        except TypeError:  # a file descriptor
            return False
        return resolved.startswith(photos) and not resolved.endswith(".png")

    def guard(original):
        def guarded(path, *args, **kwargs):
            if forbidden(path):
                attempts.append(str(path))
                raise PermissionError(f"adapt must not read {path}")
            return original(path, *args, **kwargs)
        return guarded

    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(io, "open", guard(io.open))
    monkeypatch.setattr(cv2, "imread", guard(cv2.imread))
    for method in ("open", "read_text", "read_bytes"):
        monkeypatch.setattr(pathlib.Path, method, guard(getattr(pathlib.Path, method)))
    return attempts


def test_adapt_self_trains_on_the_images_and_never_reads_their_labels(tiny, watched, tmp_path):
    from synthtext_industrial.train.adapt import adapt
    from synthtext_industrial.train.grammar import run_grammar
    from synthtext_industrial.train.recognizer import RecognizerConfig, read_lines
    from synthtext_industrial.train.runs import load_recognizer

    out = tmp_path / "adapted"
    settings = AdaptSettings(rounds=2, steps=8, threshold=0.0, batch_size=16, seed=1)
    record = adapt(tiny.run, tiny.photos, out, settings, grammar=None, which="last", log=lambda _: None)
    assert watched == []
    from synthtext_industrial.train.lines import read_labels_tsv

    with pytest.raises(PermissionError):  # the watch is on: had adapt read the labels, it would have failed
        read_labels_tsv(tiny.photos / "labels.tsv")
    assert watched == [str(tiny.photos / "labels.tsv")]

    saved = json.loads((out / "adapt.json").read_text())
    assert saved == record and record["source"] == str(tiny.run) and record["data"] == [str(tiny.data)]
    assert record["settings"]["threshold"] == 0.0 and record["grammar"] is None
    first = record["rounds"][0]
    assert first["lines"] == tiny.count and first["read_with"] == str(tiny.run)
    assert 0 < first["kept"] == sum(first["kept_lengths"].values()) <= tiny.count
    assert first["kept"] + sum(first["dropped"].values()) == tiny.count
    assert first["confidence_kept"]["mean"] is not None and first["steps"] == 8
    assert record["trained_rounds"] >= 1 and "final" in record

    # round 1's pseudo-labels are the model's readings of the images, not the labels beside them
    with open(out / "rounds" / "round-1" / "readings.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == tiny.count and all(row["image"].endswith(".png") for row in rows)
    assert any("/more/" in row["image"] for row in rows)
    kept = {row["image"]: row["text"] for row in rows if row["kept"] == "1"}
    pseudo = dict(line.split("\t") for line in
                  (out / "rounds" / "round-1" / "pseudo" / "lines.tsv").read_text().splitlines())
    assert pseudo == kept and len(pseudo) == first["kept"]
    assert WRONG not in pseudo.values() and all(text for text in pseudo.values())

    # OUT is an ordinary run: the source's config, the last round's weights, loadable and readable
    assert RecognizerConfig.load(out / "config.json") == RecognizerConfig.load(tiny.run / "config.json")
    training = json.loads((out / "training.json").read_text())
    assert training["data"][0]["path"] == str(tiny.data)
    assert training["data"][1]["kind"] == "lines" and training["data"][1]["path"].endswith("pseudo")
    last = record["trained_rounds"]
    assert training["init"] == str(out / "rounds" / f"round-{last - 1}" if last > 1 else tiny.run)
    assert run_grammar(out).sources == run_grammar(tiny.run).sources  # the pseudo-labels carry no recipe
    import cv2

    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(tiny.photos.rglob("*.png"))]
    for which in ("best", "last"):
        model, config = load_recognizer(out, which)
        assert len(read_lines(model, config, images)) == tiny.count
    source, _ = load_recognizer(tiny.run, "last")
    adapted, _ = load_recognizer(out)
    assert any(not np.array_equal(a, b) for a, b in zip(source.get_weights(), adapted.get_weights()))


def test_a_threshold_nothing_reaches_trains_nothing_and_says_so(tiny, watched, tmp_path):
    from synthtext_industrial.train.adapt import adapt

    out = tmp_path / "adapted"
    messages = []
    record = adapt(tiny.run, tiny.photos, out, AdaptSettings(rounds=2, steps=5, threshold=1.01), grammar=None,
                   log=messages.append)
    assert record["trained_rounds"] == 0 and len(record["rounds"]) == 1 and record["rounds"][0]["kept"] == 0
    assert "kept no line at confidence >= 1.01: nothing to train on" in record["stopped"]
    assert any("nothing to train on" in m for m in messages)
    assert sorted(p.name for p in out.iterdir()) == ["adapt.json", "rounds"]
    assert not (out / "rounds" / "round-1" / "checkpoints").exists()
    result = CliRunner().invoke(main, ["adapt", str(tiny.run), "--images", str(tiny.photos), "--out",
                                       str(tmp_path / "cli"), "--threshold", "1.01", "--no-grammar"])
    assert result.exit_code == 1 and "no adapted run was written" in result.output, result.output
    assert "Traceback" not in result.output and watched == []


def test_the_command_adapts_and_the_result_predicts(tiny, watched, tmp_path):
    out = tmp_path / "adapted"
    runner = CliRunner()
    result = runner.invoke(main, ["adapt", str(tiny.run), "--images", str(tiny.photos), "--out", str(out),
                                  "--rounds", "1", "--steps", "5", "--threshold", "0", "--batch-size", "16",
                                  "--weights", "last", "--no-grammar", "--pseudo-weight", "2"])
    assert result.exit_code == 0, result.output
    assert "round 1: kept" in result.output and f"the adapted run is {out}" in result.output
    record = json.loads((out / "adapt.json").read_text())
    assert record["trained_rounds"] == 1 and record["settings"]["pseudo_weight"] == 2.0
    assert json.loads((out / "training.json").read_text())["settings"]["weights"] == [1.0, 2.0]
    assert watched == []
    image = str(sorted(tiny.photos.glob("*.png"))[0])
    result = runner.invoke(main, ["predict", str(out), image, "--no-grammar"])
    assert result.exit_code == 0 and result.output.startswith(f"{image}\t"), result.output
    pytest.importorskip("tf2onnx")
    from synthtext_industrial.export.exporter import export_run

    meta = export_run(out, tmp_path / "export", ["onnx"], log=lambda _: None)  # the adapted run stays exportable
    assert (tmp_path / "export" / "recognizer.onnx").stat().st_size > 10_000
    assert [d.get("kind") for d in meta["training"]["data"]] == [None, "lines"]
    assert meta["training"]["init"] == str(tiny.run)


def test_batch_norm_adaptation_changes_only_the_statistics(tiny, watched, tmp_path):
    from synthtext_industrial.train.runs import load_recognizer

    out = tmp_path / "bn"
    result = CliRunner().invoke(main, ["adapt", str(tiny.run), "--images", str(tiny.photos), "--out", str(out),
                                       "--bn-only", "--weights", "last", "--no-grammar"])
    assert result.exit_code == 0, result.output
    assert watched == []
    record = json.loads((out / "adapt.json").read_text())
    assert record["mode"] == "batchnorm" and record["lines"] == tiny.count and record["layers"] == 6
    source, _ = load_recognizer(tiny.run, "last")
    adapted, _ = load_recognizer(out)
    changed = [w.path for w, a, b in zip(source.weights, source.get_weights(), adapted.get_weights())
               if not np.array_equal(a, b)]
    assert changed and all("moving_mean" in p or "moving_variance" in p for p in changed), changed
    assert len([p for p in changed if "moving_mean" in p]) == record["layers"]


def test_bad_input_is_one_clear_error(tmp_path):
    pytest.importorskip("tensorflow")
    run, photos, empty = tmp_path / "run", tmp_path / "photos", tmp_path / "empty"
    for folder in (run, photos, empty):
        folder.mkdir()
    (run / "config.json").write_text('{"model": "recognizer"}')
    (run / "best.weights.h5").write_bytes(b"")  # enough to pass as a trained run before anything is loaded
    (photos / "labels.tsv").write_text(f"a.png\t{WRONG}\n")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    runner = CliRunner()
    cases = [([str(tmp_path / "missing"), "--images", str(photos)], "has no config.json: not a training run"),
             ([str(run), "--images", str(empty)], "holds no images"),
             ([str(run), "--images", str(photos)], "holds no images"),  # a labels.tsv is not an image
             ([str(run), "--images", str(tmp_path / "nowhere")], "is not a folder of images")]
    for args, message in cases:
        result = runner.invoke(main, ["adapt", *args, "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (args, result.output)
        assert result.output.count("Error:") == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
    (photos / "a.png").write_bytes(b"")
    result = runner.invoke(main, ["adapt", str(run), "--images", str(photos), "--out", str(tmp_path / "full")])
    assert result.exit_code == 2 and "is not empty" in result.output, result.output
    result = runner.invoke(main, ["adapt", str(run), "--images", str(photos), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "training.json is unreadable" in result.output, result.output
    (run / "training.json").write_text(json.dumps({"data": [{"path": str(tmp_path / "gone")}]}))
    result = runner.invoke(main, ["adapt", str(run), "--images", str(photos), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "are gone; give --data" in result.output, result.output
    assert result.output.count("Error:") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_one_weight_per_synthetic_dataset(tiny, tmp_path):
    result = CliRunner().invoke(main, ["adapt", str(tiny.run), "--images", str(tiny.photos), "--out",
                                       str(tmp_path / "out"), "--weight", "1", "--weight", "2"])
    assert result.exit_code == 2 and "give one --weight per synthetic dataset (1:" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_with_the_runs_grammar_every_pseudo_label_is_a_line_the_recipe_can_print(tiny, watched, tmp_path):
    from synthtext_industrial.train.adapt import adapt
    from synthtext_industrial.train.grammar import run_grammar

    out = tmp_path / "adapted"
    record = adapt(tiny.run, tiny.photos, out, AdaptSettings(rounds=1, steps=3, threshold=0.0, batch_size=16),
                   which="last", log=lambda _: None)
    grammar = run_grammar(tiny.run)
    assert record["grammar"] == list(grammar.sources) == [str(tiny.root / "tiny.yaml")]
    first = record["rounds"][0]
    assert first["kept"] + sum(first["dropped"].values()) == tiny.count
    assert set(first["dropped"]) <= {"rejected by the grammar", "low confidence"}
    with open(out / "rounds" / "round-1" / "readings.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(grammar.accepts(row["text"]) for row in rows if row["kept"] == "1")
    assert all(row["text"] == "" for row in rows if row["reason"] == "rejected by the grammar")
    assert watched == []


def test_fine_tuning_refuses_characters_the_run_cannot_output(tmp_path):
    pytest.importorskip("tensorflow")
    from synthtext_industrial import recipe_from_dict
    from synthtext_industrial.generate import generate
    from synthtext_industrial.train.fit_recognizer import train_recognizer
    from synthtext_industrial.train.recognizer import RecognizerConfig

    generate(recipe_from_dict(TINY), tmp_path / "data", n=2, seed=0, shard_size=2, workers=1)
    (tmp_path / "init").mkdir()
    RecognizerConfig(width=64, charset="0123").save(tmp_path / "init" / "config.json")
    with pytest.raises(ValueError, match="characters '[4-9]+' that .*init cannot output"):
        train_recognizer([tmp_path / "data"], tmp_path / "run", init=tmp_path / "init", log=lambda _: None)
    assert not (tmp_path / "run" / "checkpoints").exists()
