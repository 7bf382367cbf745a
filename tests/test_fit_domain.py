"""`fit`: the measures recover known rendering parameters, the fitted recipe covers them, the gap ranks sets."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from synthtext_industrial.cli import main
from synthtext_industrial.domain import column, fit, gap_verdict, recipe_crops
from synthtext_industrial.measure import gap_score, measure_crop
from synthtext_industrial.recipe import load_recipe

# A plain recipe: digits on label paper, no effects. "Real" crops are drawn from it at 20-24 px with a Gaussian
# blur of sigma 2 and noise of std 4 added; the recipe fitted to them starts at 40-60 px, sharp and clean.
PLAIN = """
version: 1
name: fit-{name}
canvas: {{width: 400, height: 128, encoding: {{format: png}}}}
text:
  blocks:
    - {{lines: ["{{9:6}}"]}}
fonts:
  - {{category: industrial-sans}}
typography:
  height_px: {height}
  char_gap: [0.05, 0.15]
  aspect: [0.9, 1.1]
  stroke_px: [0, 0]
layout: {{blocks: [1, 1], rotation: [0, 0], perspective: [0, 0]}}
marking:
  - {{kind: inkjet, opacity: [1.0, 1.0], density_variation: [0.0, 0.0]}}
colour:
  polarity: {{dark_on_light: 1, light_on_dark: 0}}
  contrast: [90, 110]
background: {{photos: [], materials: {{label_paper: 1}}, brightness: [0, 0]}}
effects:
  highlights: {{p: 0}}
  partial_blur: {{p: 0}}
  noise: {{p: 0}}
  tone: {{p: 0}}
  vignetting: {{p: 0}}
  jpeg: {{p: 0}}
crops: {{margin_x: [0.3, 0.6], margin_y: [0.3, 0.5]}}
"""
BLUR, NOISE = 2.0, 4.0


def _real_crops(write_recipe, pages=30, seed=7):
    recipe = load_recipe(write_recipe(PLAIN.format(name="real", height="[20, 24]"), "real.yaml"))
    crops = []
    for i, (crop, _nominal, _scale) in enumerate(recipe_crops(recipe, pages, seed)):
        noisy = cv2.GaussianBlur(crop.astype(np.float32), (0, 0), BLUR)
        noisy += np.random.default_rng(i).normal(0, NOISE, crop.shape)
        crops.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return crops


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    recipe_dir = tmp_path_factory.mktemp("recipes")

    def write(text, name):
        (recipe_dir / name).write_text(text, encoding="utf-8")
        return recipe_dir / name

    for i, crop in enumerate(_real_crops(write)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), crop)
    return folder


def test_measures_recover_known_height_blur_noise_and_polarity(real_folder):
    rows = [measure_crop(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in sorted(real_folder.glob("*.png"))]
    # the glyphs are 20-24 px (the height of a 0; round digits overshoot a little)
    assert 20 <= np.median(column(rows, "text_height")) <= 26
    # sigma 2 on an anti-aliased render (about 0.5 px) is 2.06; strokes of 2-3 px read sharper (docs/fit.md)
    assert 1.4 <= np.median(column(rows, "blur")) <= 2.5
    assert abs(np.median(column(rows, "noise")) - NOISE) < 0.6
    assert (column(rows, "polarity") > 0).all()


def test_a_sharp_clean_crop_reads_sharp_and_noise_free(write_recipe):
    recipe = load_recipe(write_recipe(PLAIN.format(name="clean", height="[40, 44]")))
    rows = [measure_crop(c) for c, _n, _s in recipe_crops(recipe, 10, seed=1)]
    assert np.median(column(rows, "blur")) < 0.9
    assert np.median(column(rows, "noise")) < 1.0
    assert 38 <= np.median(column(rows, "text_height")) <= 48


def test_fit_writes_a_recipe_whose_ranges_cover_the_real_crops(real_folder, write_recipe, tmp_path):
    start = load_recipe(write_recipe(PLAIN.format(name="start", height="[40, 60]"), "start.yaml"))
    report = fit(real_folder, start, tmp_path / "out", pages=30, seed=3)
    for name in ("report.txt", "report.json", "measures.csv", "histograms.png", "fitted.yaml"):
        assert (tmp_path / "out" / name).is_file(), name
    assert cv2.imread(str(tmp_path / "out" / "histograms.png")) is not None
    fitted = load_recipe(tmp_path / "out" / "fitted.yaml")  # a valid recipe
    lo, hi = fitted.typography.height_px
    assert 18 <= lo <= 22 and 22 <= hi <= 26, (lo, hi)  # found 20-24 px
    assert fitted.effects.noise.p == 1.0 and fitted.effects.noise.gaussian_sigma[1] >= NOISE
    blur = fitted.effects.blur  # sigma 2, found through the fit's own renders (the measure alone reads ~1.5)
    assert blur.p >= 0.9 and blur.sigma[0] <= 2.3 and blur.sigma[1] >= 1.7, blur
    assert fitted.colour.polarity.light_on_dark == 0
    lo, hi = fitted.crops.margin_y  # both framed alike: the margins stay where they were
    assert abs(lo - 0.3) <= 0.15 and abs(hi - 0.5) <= 0.15, (lo, hi)
    # the fitted recipe's crops are closer to the real ones than the recipe's it started from
    assert report.fitted_gap < report.gap
    assert not any("NOT closer" in n for n in report.notes)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["fitted_closer"] is True
    assert abs(np.median(column(report.fitted, "text_height")) - np.median(column(report.real, "text_height"))) < 2.5


def test_fit_finds_how_loosely_the_real_crops_are_framed(write_recipe, tmp_path):
    """Real crops cut with 1.0-1.5 line heights above and below the text; the recipe starts at 0.3-0.5."""
    loose = PLAIN.format(name="loose", height="[30, 34]").replace("margin_y: [0.3, 0.5]", "margin_y: [1.0, 1.5]")
    real = tmp_path / "real"
    real.mkdir()
    for i, (crop, _n, _s) in enumerate(recipe_crops(load_recipe(write_recipe(loose, "loose.yaml")), 20, seed=5)):
        cv2.imwrite(str(real / f"{i:03d}.png"), crop)
    start = load_recipe(write_recipe(PLAIN.format(name="tight", height="[30, 34]"), "tight.yaml"))
    report = fit(real, start, tmp_path / "out", pages=20, seed=3)
    lo, hi = load_recipe(tmp_path / "out" / "fitted.yaml").crops.margin_y
    assert 0.75 <= lo <= 1.3 and 1.2 <= hi <= 1.8, (lo, hi)
    fill = {name: np.median(column(rows, "fill")) for name, rows in
            (("real", report.real), ("start", report.synthetic), ("fitted", report.fitted))}
    assert fill["real"] < 0.4 < fill["start"], fill  # 1 / (1 + 2.5) against 1 / (1 + 0.8)
    assert abs(fill["fitted"] - fill["real"]) < 0.05, fill


def test_a_fit_that_moves_away_from_the_real_crops_says_so():
    assert gap_verdict(0.77, 0.70, "recipes/inkjet-dotmatrix.yaml") is None
    note = gap_verdict(0.77, 0.795, "recipes/inkjet-dotmatrix.yaml")
    assert "NOT closer" in note and "inkjet-dotmatrix.yaml" in note and "0.7950" in note and "0.7700" in note


def test_gap_is_about_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)

    def rows(n, contrast, blur):
        return [{"text_height": h, "stroke_width": 0.15 * h, "blur": b, "contrast": c, "polarity": 1.0,
                 "brightness": g, "texture": t, "noise": z, "blockiness": k}
                for h, b, c, g, t, z, k in zip(rng.uniform(20, 30, n), rng.normal(blur, 0.2, n),
                                              rng.normal(contrast, 10, n), rng.normal(180, 15, n),
                                              rng.uniform(2, 8, n), rng.uniform(1, 4, n), rng.uniform(1, 5, n))]

    real = rows(300, 80, 1.5)
    same, nearer, far = gap_score(real, rows(300, 80, 1.5)), gap_score(real, rows(300, 95, 1.5)), \
        gap_score(real, rows(300, 140, 3.0))
    assert abs(same) < 0.02
    assert same < nearer < far
    assert far > 0.2


def test_cli_fit_refuses_a_missing_folder_and_one_without_images(tmp_path, write_recipe):
    recipe = str(write_recipe(PLAIN.format(name="cli", height="[20, 24]")))
    for photos, words in ((tmp_path / "nope", "no such folder"), (tmp_path, "no images")):
        (tmp_path / "notes.txt").write_text("not an image")
        result = CliRunner().invoke(main, ["fit", str(photos), recipe, "-o", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and str(photos) in lines[0] and words in lines[0], result.output


def test_cli_fit_prints_the_table_and_the_gap(real_folder, write_recipe, tmp_path):
    recipe = str(write_recipe(PLAIN.format(name="cli", height="[40, 60]")))
    result = CliRunner().invoke(main, ["fit", str(real_folder), recipe, "-o", str(tmp_path / "o"), "-n", "8"])
    assert result.exit_code == 0, result.output
    assert "text height" in result.output and "domain gap" in result.output
    assert yaml.safe_load((tmp_path / "o" / "fitted.yaml").read_text())["name"] == "fit-cli-fit"


def test_frame_blur_is_left_out_when_off_and_blurs_the_whole_page_when_on():
    from synthtext_industrial.stages.effects import EffectsConfig, FrameBlur, build_effects

    off = build_effects(EffectsConfig())
    assert not any(isinstance(t, FrameBlur) for t in off.transforms)  # recipes without it draw as before
    image = np.full((64, 64), 30, np.uint8)
    cv2.putText(image, "8", (20, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.4, 200, 5, cv2.LINE_AA)
    blurred = FrameBlur(sigma_range=(2.0, 2.0), p=1.0)(image=image)["image"]
    assert measure_crop(image)["blur"] < 0.9
    assert 1.6 <= measure_crop(blurred)["blur"] <= 2.5
