"""Input that cannot hurt, and no empty surprises.

Every bad input (including values that pass the schema but fail when used) ends in exit 2 and one message
naming the file and the field; text that cannot fit is refused with the largest size that fits; a page is
without text only when `layout.empty_pages` asks; font files are checked by drawing their glyphs.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from synthtext_industrial import RecipeError, load_recipe, recipe_from_dict, render_sample
from synthtext_industrial.cli import main
from synthtext_industrial.stages.layout import PlacementError

from .recipe_fuzz import FAILS_IN_USE, REPO, SMALL_TEXT, failing_in_use, outcome, write_fixtures

SEG7 = REPO / "fonts" / "dseg" / "DSEG7Classic-Regular.ttf"


def one_clean_error(result, path) -> str:
    """The output of a refused command: exit 2, one `Error:` naming the file, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and result.output.count("Error:") == 1, result.output
    assert result.output.startswith(f"Error: {path}"), result.output
    return result.output


@pytest.mark.parametrize("case", [name for name, _change, _names in FAILS_IN_USE])
def test_values_that_fail_in_use_are_refused_by_every_command(case, tmp_path):
    text, names = failing_in_use(case)
    result = outcome(text, tmp_path, render=False)
    assert result.result == "refused", (result.result, result.message)
    assert names in result.message, result.message
    path = tmp_path / "fuzz.yaml"
    runner = CliRunner()
    for command in (["check"], ["preview", "-n", "1", "-o", str(tmp_path / "p.png")],
                    ["render", "-n", "1", "-o", str(tmp_path / "r")],
                    ["generate", "-n", "2", "-o", str(tmp_path / "ds"), "--workers", "1"]):
        output = one_clean_error(runner.invoke(main, [command[0], str(path), *command[1:]]), path)
        assert names in output, (command, output)
    assert not (tmp_path / "ds").exists() and not (tmp_path / "p.png").exists()


# ----------------------------------------------------------------------------- text that cannot fit

def test_text_too_large_names_the_largest_height_that_fits(write_recipe):
    doc = {**SMALL_TEXT, "text": {"blocks": [{"lines": ["LOT {9:6}"]}]}, "typography": {"height_px": [90, 120]},
           "fonts": [{"font": "ocr-a"}, {"bitmap": "6x12"}]}
    with pytest.raises(RecipeError, match=r"text.blocks\[0\] does not fit") as refused:
        load_recipe(write_recipe(yaml.safe_dump(doc)))
    largest = int(re.search(r"the largest text height at which it fits is (\d+) px", str(refused.value)).group(1))
    assert 6 <= largest < 90
    doc["typography"]["height_px"] = [largest, 120]
    recipe = load_recipe(write_recipe(yaml.safe_dump(doc)))  # the size it names does fit
    for index in range(6):
        sample = render_sample(recipe, 0, index)
        assert sample.lines and all(b["height_px"] >= largest for b in sample.records["blocks"])
    doc["typography"]["height_px"] = [largest + 1, 120]
    with pytest.raises(RecipeError, match="does not fit"):  # and one pixel more does not
        load_recipe(write_recipe(yaml.safe_dump(doc)))


def test_text_that_fits_at_the_minimum_is_never_drawn_below_it():
    """Found by the fit check: a block too large for its region was shrunk to 90% of the room, below the
    recipe's range (here 39 px of 42-300). It now stops at the recipe's minimum, where the check proved it fits."""
    recipe = recipe_from_dict({"canvas": {"width": 320, "height": 240}, "fonts": [{"font": "ocr-a"}],
                               "typography": {"height_px": [42, 300], "aspect": 1, "char_gap": 0},
                               "text": {"blocks": [{"lines": ["{9:8}"]}]},
                               "layout": {"perspective": [0, 0], "margin_px": 0, "rotation": [0, 0]}})
    heights = [b["height_px"] for i in range(6) for b in render_sample(recipe, 0, i).records["blocks"]]
    assert len(heights) >= 6 and all(42 <= h <= 300 for h in heights), heights


def test_a_page_the_text_cannot_fill_is_an_error_not_an_empty_page(write_recipe, tmp_path):
    """Text that fits an untilted page exactly, under the strongest camera tilt: some pages have no room."""
    path = write_recipe("canvas: {width: 320, height: 240}\nfonts: [{font: ocr-a}]\n"
                        "typography: {height_px: [42, 42], aspect: 1, char_gap: 0}\n"
                        "text: {blocks: [{lines: ['{9:8}']}]}\n"
                        "layout: {perspective: [0.15, 0.15], margin_px: 0, rotation: [0, 0]}\n")
    recipe = load_recipe(path)  # the text itself fits: 42 px is the largest height that does
    outcomes = []
    for index in range(8):
        try:
            outcomes.append(bool(render_sample(recipe, 0, index).lines))
        except PlacementError as error:
            assert f"sample {index} (seed 0): no text block could be placed" in str(error)
            outcomes.append(None)
    assert None in outcomes and False not in outcomes, outcomes  # never an empty page
    failing = outcomes.index(None)
    output = one_clean_error(CliRunner().invoke(main, ["check", str(path)]), path)
    assert f"sample {failing} (seed 0): no text block could be placed" in output and "layout.perspective" in output
    assert CliRunner().invoke(main, ["check", str(path), "--samples", "0"]).exit_code == 0
    one_clean_error(CliRunner().invoke(main, ["generate", str(path), "-n", str(failing + 1), "--workers", "1",
                                              "-o", str(tmp_path / "ds")]), path)


def test_the_bundled_recipes_fit_and_pass_check():
    for path in sorted((REPO / "recipes").glob("*.yaml")):
        result = CliRunner().invoke(main, ["check", str(path), "--samples", "2"])
        assert result.exit_code == 0 and "2 sample pages rendered" in result.output, result.output


# ----------------------------------------------------------------------------- empty pages, only when asked

def test_empty_pages_only_when_asked_and_counted_in_the_manifest(tmp_path):
    doc = {**SMALL_TEXT, "layout": {"empty_pages": 0.4}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp_path / "ds"
    result = CliRunner().invoke(main, ["generate", str(path), "-n", "20", "--shard-size", "7", "--workers", "1",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    recipe = load_recipe(path)
    samples = [render_sample(recipe, 0, i) for i in range(20)]
    empty = [s.index for s in samples if not s.lines]
    assert all(s.records["empty_page"] == (not s.lines) for s in samples)
    assert 0 < len(empty) < 20
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["empty_pages"] == len(empty)
    assert sum(e["empty_pages"] for e in manifest["shards"] if e["kind"] == "images") == len(empty)
    assert f"20 images ({len(empty)} without text, as layout.empty_pages asks)" in result.output
    # an empty page is still a page: background, camera and effects, no text
    assert samples[empty[0]].image.std() > 1 and not samples[empty[0]].mask.any()


def test_pages_of_recipes_without_empty_pages_are_unchanged():
    """empty_pages: 0 (the default) draws nothing, so it renders the very pages a recipe without it does."""
    plain = recipe_from_dict(SMALL_TEXT)
    zero = recipe_from_dict({**SMALL_TEXT, "layout": {"empty_pages": 0}})
    every = recipe_from_dict({**SMALL_TEXT, "layout": {"empty_pages": 1}})
    for index in range(4):
        a, b = render_sample(plain, 5, index), render_sample(zero, 5, index)
        assert np.array_equal(a.image, b.image) and a.to_dict() == b.to_dict() and "empty_page" not in a.records
        assert a.lines and not render_sample(every, 5, index).lines


def test_without_empty_pages_no_page_is_empty_in_a_crowded_layout():
    recipe = recipe_from_dict({**SMALL_TEXT, "layout": {"blocks": [6, 8], "block_gap_px": 40}})
    for index in range(10):
        assert render_sample(recipe, 1, index).lines, index


# ----------------------------------------------------------------------------- font files checked by drawing

@pytest.fixture
def fonts_here(tmp_path):
    write_fixtures(tmp_path)
    shutil.copy(REPO / "fonts" / "ocr-a" / "OCRA.ttf", tmp_path / "mine.ttf")
    return tmp_path


def test_a_seven_segment_font_file_cannot_draw_letters(fonts_here):
    def load(font: str, line: str):
        doc = {**SMALL_TEXT, "fonts": [{"file": font}], "text": {"blocks": [{"lines": [line]}]}}
        return recipe_from_dict(doc, base_dir=fonts_here)

    with pytest.raises(RecipeError, match=r"'abc' drawn exactly like 'ABC'") as alike:
        load("seg-renamed.ttf", "{[abc]:3}")  # not a bundled file: found by drawing
    assert "fonts[0] (seg-renamed.ttf) cannot draw 'abc' used by text.blocks[0]" in str(alike.value)
    with pytest.raises(RecipeError, match="'!' draws nothing"):
        load("seg-renamed.ttf", "{9:3}!")
    with pytest.raises(RecipeError, match="'MX' are excluded for the bundled font dseg7"):
        load("seg.ttf", "MAX {9:3}")  # a copy of the bundled file keeps the catalogue's exclusions
    assert load("seg-renamed.ttf", "{9:2}.{9:2}").font_choices(0)  # digits draw
    mine = load("mine.ttf", "{X:4}-{a:3}")  # a font whose glyphs are all distinct loses nothing
    assert mine.font_choices(0)[0][0].missing(set("ABCXYZabcxyz019-")) == ""
    skipping = recipe_from_dict({**SMALL_TEXT, "fonts": [{"file": "seg.ttf", "missing_glyphs": "skip"},
                                                         {"font": "ocr-a"}],
                                 "text": {"blocks": [{"lines": ["{a:3}"]}, {"lines": ["{9:3}"]}]}},
                                base_dir=fonts_here)
    assert [f.label for f, _w in skipping.font_choices(0)] == ["ocr-a"]
    assert [f.label for f, _w in skipping.font_choices(1)] == ["seg.ttf", "ocr-a"]


# ----------------------------------------------------------------------------- not a dataset, not a run

def test_commands_pointed_at_a_folder_that_is_not_a_dataset(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.txt").write_text("hello")
    runner = CliRunner()
    for args in (["inspect", str(folder)], ["verify", str(folder)],
                 ["train", "recognizer", "--data", str(folder), "--out", str(tmp_path / "run")],
                 ["train", "spotter", "--data", str(folder), "--out", str(tmp_path / "run")],
                 ["evaluate", str(tmp_path), "--data", str(folder)],
                 ["export", str(tmp_path), "-o", str(tmp_path / "x"), "--data", str(folder)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (args, result.output)
        assert f"{folder} is not a dataset: it has no manifest.json" in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_a_run_folder_with_a_broken_config_is_a_bad_run_without_tensorflow_noise(tmp_path):
    pytest.importorskip("tensorflow")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{")
    image = tmp_path / "line.png"
    image.write_bytes(b"not an image")
    for args in (["predict", str(run), str(image)], ["evaluate", str(run), "--images", str(tmp_path)],
                 ["export", str(run), "-o", str(tmp_path / "x")]):
        proc = subprocess.run([sys.executable, "-m", "synthtext_industrial.cli", *args], capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert f"{run / 'config.json'} is unreadable" in proc.stderr
        # nothing but click's usage lines and our one error: no TensorFlow, absl or OpenCV log lines
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert all(line.startswith(("Usage:", "Try ", "Error:")) for line in lines), proc.stderr


def test_output_paths_that_cannot_be_created_are_refused_before_any_work(tmp_path, write_recipe):
    recipe = write_recipe("canvas: {width: 320, height: 240}\ntypography: {height_px: [14, 30]}\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    run, dataset = tmp_path / "run", tmp_path / "ds"
    run.mkdir()
    dataset.mkdir()
    (dataset / "manifest.json").write_text("{}")  # enough to pass as a dataset folder on the command line
    runner = CliRunner()
    for args in (["preview", str(recipe), "-o", str(a_file / "sheet.png")],
                 ["render", str(recipe), "-o", str(a_file / "pages")],
                 ["train", "recognizer", "--data", str(dataset), "--out", str(a_file / "run")],
                 ["evaluate", str(run), "--images", str(tmp_path), "-o", str(a_file / "eval")],
                 ["export", str(run), "-o", str(a_file / "export")],
                 ["predict", str(run), str(a_file), "--draw", str(a_file / "drawn")]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and "Traceback" not in result.output, (args, result.output)
        assert f"cannot be created: {a_file} is a file, not a folder" in result.output, result.output
    assert a_file.read_text() == "not a folder"


def test_a_labels_file_without_labels_is_refused(tmp_path):
    pytest.importorskip("tensorflow")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"model": "recognizer"}')
    (tmp_path / "labels.tsv").write_text("\n\n")
    result = CliRunner().invoke(main, ["evaluate", str(run), "--images", str(tmp_path)])
    assert result.exit_code == 2 and "has no `path<TAB>text` lines" in result.output, result.output
    (tmp_path / "labels.tsv").write_text("no tab here\n")
    result = CliRunner().invoke(main, ["evaluate", str(run), "--images", str(tmp_path)])
    assert result.exit_code == 2 and "expected `path<TAB>text`" in result.output, result.output
