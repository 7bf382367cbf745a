"""Every labelled character must be readable from its pixels: the per-character legibility rule.

The first three tests are built from situations where 0.3.0 wrote labels that its pixels did not show.
"""
import cv2
import numpy as np
import pytest

from click.testing import CliRunner

from synthtext_industrial import recipe_from_dict, render_sample
from synthtext_industrial.cli import main
from synthtext_industrial.stages.effects import apply_highlights
from synthtext_industrial.stages.legibility import CharInk, char_legibility, legibility

NO_EFFECTS = {"min_legibility": 0, **{name: {"p": 0} for name in
                                      ("highlights", "partial_blur", "noise", "tone", "vignetting", "jpeg")}}


def _one_line(text, font, marking, background, colour, **typography):
    return recipe_from_dict({
        "canvas": {"width": 640, "height": 480},
        "text": {"blocks": [{"lines": [text]}]},
        "fonts": [font],
        "typography": {"height_px": [70, 70], "char_gap": [0.15, 0.15], "aspect": [1, 1], "stroke_px": [0, 0],
                       **typography},
        "layout": {"blocks": [1, 1], "rotation": [0, 0], "perspective": [0, 0]},
        "marking": [marking],
        "background": {"photos": [], **background},  # the named materials only, never a photo
        "colour": colour,
        "effects": NO_EFFECTS,
    })


def _scores(sample):
    (block,) = sample.records["blocks"]
    return block, block["char_legibility"]


def test_relief_lit_along_its_strokes_is_turned_to_the_light():
    """Embossed "69BI027" on black plastic, lit from the top: vertical strokes shade nothing (the I vanishes,
    the 0 keeps only its arcs). The rule sees the missing parts and turns the light to a diagonal."""
    emboss = {"kind": "emboss", "light_angle": [90, 90], "depth": [1.0, 1.0]}
    dark = {"materials": {"plastic_black": 1}, "brightness": [-40, -40]}
    unchecked = render_sample(_one_line("69BI027", {"font": "dinish"}, emboss, dark, {"min_legibility": 0}), 0, 0,
                              measure_legibility=True)
    checked = render_sample(_one_line("69BI027", {"font": "dinish"}, emboss, dark, {"min_legibility": 8}), 0, 0,
                            measure_legibility=True)
    block, scores = _scores(unchecked)
    assert scores[3] < 1 and scores[4] < 2, scores  # I and 0: their vertical strokes are not in the pixels
    assert max(scores) > 8  # ...while round characters still show
    block, scores = _scores(checked)
    assert "light_turned" in block["marking"]["adjusted"]
    assert block["marking"]["light_angle"] % 90 == 45
    assert min(scores) >= 8, scores
    # Legibility changes the look of the mark, never what is labelled or where.
    assert [line.text for line in checked.lines] == [line.text for line in unchecked.lines]
    assert np.array_equal(checked.mask, unchecked.mask)


def test_dark_ink_on_near_black_glass_changes_polarity():
    """Dark inkjet dots on near-black glass: little contrast is left, so the ink goes light, as the recipe
    documentation promises (strengthening dark ink on black cannot help)."""
    ink = {"kind": "inkjet", "opacity": [0.8, 0.8], "density_variation": [0.2, 0.2]}
    glass = {"materials": {"glass": 1}, "brightness": [-40, -40]}
    colour = {"polarity": {"dark_on_light": 1, "light_on_dark": 0}, "contrast": [12, 40]}
    font = {"bitmap": "6x12"}
    unchecked = render_sample(_one_line("EXP", font, ink, glass, {**colour, "min_legibility": 0}), 0, 1,
                              measure_legibility=True)
    checked = render_sample(_one_line("EXP", font, ink, glass, {**colour, "min_legibility": 8}), 0, 1,
                            measure_legibility=True)
    block, scores = _scores(unchecked)
    assert block["marking"]["polarity"] == "dark_on_light" and min(scores) < 8, scores
    block, scores = _scores(checked)
    assert block["marking"]["polarity"] == "light_on_dark"
    assert "polarity_flipped" in block["marking"]["adjusted"]
    assert min(scores) >= 8, scores


def _dot_matrix_L(shape=(120, 120), pitch=10, radius=3.5, origin=(40, 25)):
    """A 5x7 dot-matrix L: the left column and the bottom row of dots."""
    coverage = np.zeros(shape, np.uint8)
    x0, y0 = origin
    dots = [(0, row) for row in range(7)] + [(col, 6) for col in range(1, 5)]
    for col, row in dots:
        cv2.circle(coverage, (x0 + col * pitch, y0 + row * pitch), int(radius), 255, -1, cv2.LINE_AA)
    return coverage, (x0 - 5, y0 - 5)


def test_a_highlight_streak_over_the_bottom_row_of_a_dot_matrix_L():
    """A tube-light reflection over the bottom row of an L leaves an I. The character's RMS change hardly
    notices (most dots are intact); the per-part rule does."""
    rng = np.random.default_rng(0)
    surface = np.clip(150 + rng.normal(0, 3, (120, 120)), 0, 255).astype(np.uint8)
    coverage, (cx, cy) = _dot_matrix_L()
    marked = (surface - 90 * (coverage / 255.0)).clip(0, 255).astype(np.uint8)
    char = CharInk(cx, cy, coverage[cy:cy + 75, cx:cx + 55])
    streak = [{"kind": "streak", "cx": 60.0, "cy": 85.0, "length": 400.0, "width": 40.0, "angle": 0.0,
               "intensity": 255.0}]
    plain_fx, marked_fx = apply_highlights(surface, streak), apply_highlights(marked, streak)
    bottom = coverage[80:, :] > 0
    assert (marked_fx[80:, :][bottom] > 250).all(), "the streak must wipe the bottom row out"
    assert (marked_fx[:55, :][coverage[:55, :] > 128] < 100).all(), "and leave the top of the column"
    whole = legibility(plain_fx, marked_fx, coverage, 4.0)
    assert whole > 3, "the character's overall change still looks readable"
    assert char_legibility(surface, marked, char, relief=False, sigma=4.0) >= 8
    assert char_legibility(plain_fx, marked_fx, char, relief=False, sigma=4.0) < 1


@pytest.mark.parametrize("polarity", [-1, 1])
def test_dark_and_light_ink_of_equal_contrast_score_alike(polarity):
    rng = np.random.default_rng(1)
    surface = np.clip(128 + rng.normal(0, 6, (120, 120)), 0, 255).astype(np.uint8)
    coverage, (cx, cy) = _dot_matrix_L()
    marked = (surface + polarity * 50 * (coverage / 255.0)).clip(0, 255).astype(np.uint8)
    char = CharInk(cx, cy, coverage[cy:cy + 75, cx:cx + 55])
    score = char_legibility(surface, marked, char, relief=False, sigma=4.0)
    assert score == pytest.approx(50 / 6, rel=0.25)


def test_render_records_every_character_and_what_stayed_under_the_floor():
    recipe = recipe_from_dict({"canvas": {"width": 640, "height": 480}, "effects": {"min_legibility": 3}})
    for index in range(4):
        sample = render_sample(recipe, 0, index)
        for block in sample.records["blocks"]:
            n_chars = sum(len(sample.lines[k].chars) for k in range(*block["lines"]))
            assert len(block["char_legibility"]) == n_chars
            assert block["legibility_after_effects"] == pytest.approx(min(block["char_legibility"]), abs=0.01)
            under = [i for i, s in enumerate(block["char_legibility"]) if s < 3]
            assert block.get("below_floor", []) == under
            if under:
                assert sample.records["effect_draws"] == 3, "a page is redrawn before a character is given up"


def test_audit_writes_a_sheet_of_the_least_legible_characters(tmp_path, write_recipe):
    path = write_recipe("canvas: {width: 640, height: 480}\neffects: {min_legibility: 3}\n")
    sheet = tmp_path / "audit.png"
    result = CliRunner().invoke(main, ["audit", str(path), "-n", "3", "-o", str(sheet), "--worst", "5"])
    assert result.exit_code == 0, result.output
    assert "characters on 3 pages" in result.output and "under the floor 3" in result.output
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[1] == 1400 and image.std() > 5
    from synthtext_industrial.audit import audit
    report = audit(recipe_from_dict({"canvas": {"width": 640, "height": 480}}), 3, progress=False)
    weakest = min(block["legibility_after_effects"] for index in range(3)
                  for block in render_sample(recipe_from_dict({"canvas": {"width": 640, "height": 480}}), 0,
                                             index).records["blocks"])
    assert report.chars[0].score == pytest.approx(weakest, abs=0.01)
    assert all(a.score <= b.score for a, b in zip(report.chars, report.chars[1:]))
