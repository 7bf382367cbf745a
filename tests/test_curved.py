"""Text on a cylinder (bottles, cans, cables): every character quad stays exact by the rule of
docs/ground-truth.md, the bend is the one the geometry predicts, and recipes that never ask draw nothing.
"""
import math

import numpy as np
import pytest

from synthtext_industrial import load_recipe, recipe_from_dict, render_sample
from synthtext_industrial.exactness import check_sample
from synthtext_industrial.stages.surface import SurfaceConfig, sample_surface

QUIET = {"min_legibility": 0, **{name: {"p": 0} for name in
                                 ("highlights", "partial_blur", "noise", "tone", "vignetting", "jpeg")}}
ALWAYS = {"cylinder": 1.0, "axis": {"vertical": 1, "horizontal": 1}, "radius": [1.5, 8], "elevation": [-30, 30],
          "offset": [-25, 25], "shading": [0, 0.4], "highlight": [0, 0.4]}


def _curved(name: str, **canvas):
    spec = load_recipe(name).model_dump(mode="json")
    spec["surface"] = ALWAYS
    scale = canvas.get("width", spec["canvas"]["width"]) / spec["canvas"]["width"]
    spec["canvas"].update(canvas)
    # a smaller page keeps the recipe's proportions: its text shrinks with it (long date-code prefixes fit)
    spec["typography"]["height_px"] = [h * scale for h in spec["typography"]["height_px"]]
    return recipe_from_dict(spec)


@pytest.mark.parametrize("name, pages", [("inkjet-dotmatrix", 150), ("default", 100)])
def test_curved_ground_truth_is_exact_on_both_axes(name, pages):
    """Small pages keep it quick; the text sizes, fonts, dots, rotation and tilt are the recipe's own."""
    recipe = _curved(name, width=960, height=720)
    problems, axes = [], set()
    for index in range(pages):
        sample = render_sample(recipe, 0, index, keep_char_masks=True)
        axes |= {block["surface"]["axis"] for block in sample.records["blocks"]}
        problems += [f"sample {index}: {p}" for p in check_sample(sample)]
    assert not problems, "\n".join(problems[:10])
    assert axes == {"vertical", "horizontal"}


def _one_line(surface: dict, text: str = "00000000000"):
    return recipe_from_dict({
        "canvas": {"width": 1200, "height": 400},
        "text": {"blocks": [{"lines": [text]}]},
        "fonts": [{"font": "dejavu-sans-mono"}],
        "typography": {"height_px": [40, 40], "aspect": [1, 1], "char_gap": [0.1, 0.1]},
        "layout": {"blocks": [1, 1], "rotation": [0, 0], "perspective": [0, 0], "alignment": {"left": 1}},
        "marking": [{"kind": "inkjet", "opacity": [1, 1], "density_variation": [0, 0]}],
        "colour": {"polarity": {"dark_on_light": 1, "light_on_dark": 0}, "contrast": [120, 120]},
        "background": {"materials": {"plastic_white": 1}},
        "surface": surface,
        "effects": QUIET,
    })


def test_a_bottle_seen_head_on_foreshortens_its_characters_as_r_sin_x_over_r():
    """Vertical axis, camera at the axis's height, label facing it: a flat point x from the block's centre
    shows at R sin(x / R). Each character's quad width is the width its flat ink spans after that map
    (to the pixel: the flat and the bent ink are each measured on whole pixels)."""
    surface = {"cylinder": 1, "radius": [5, 5], "elevation": [0, 0], "offset": [0, 0], "shading": [0, 0],
               "highlight": [0, 0]}
    flat = render_sample(_one_line({**surface, "cylinder": 0}), 0, 0)
    bent = render_sample(_one_line(surface), 0, 0)
    R = bent.records["blocks"][0]["surface"]["radius_px"]
    assert R >= 5 * 40 - 1e-6
    fq = np.array([c.quad for c in flat.lines[0].chars], np.float64)
    bq = np.array([c.quad for c in bent.lines[0].chars], np.float64)
    centre = (fq[:, :, 0].min() + fq[:, :, 0].max()) / 2  # the block's centre (one line of one font)
    x0, x1 = fq[:, :, 0].min(axis=1) - centre, fq[:, :, 0].max(axis=1) - centre
    predicted = R * (np.sin(x1 / R) - np.sin(x0 / R))
    widths = bq[:, :, 0].max(axis=1) - bq[:, :, 0].min(axis=1)
    error = np.abs(widths - predicted)  # both quads sit on whole ink pixels: a pixel of quantisation each
    assert error.max() < 1.5 and error.mean() < 0.6, (widths, predicted)
    middle = len(widths) // 2
    assert widths[0] < 0.85 * widths[middle] and widths[-1] < 0.85 * widths[middle]
    assert np.all(np.diff(widths[:middle + 1]) > -0.5) and np.all(np.diff(widths[middle:]) < 0.5)
    # head on, the line stays straight and as tall as on a flat label (it may be placed elsewhere)
    assert np.ptp(bq[:, :, 1].min(axis=1)) < 0.5 and np.ptp(bq[:, :, 1].max(axis=1)) < 0.5
    assert np.abs(np.ptp(bq[:, :, 1], axis=1) - np.ptp(fq[:, :, 1], axis=1)).max() < 1.0


def test_looked_down_on_a_line_is_an_arc_with_its_ends_up_and_its_quad_encloses_it():
    surface = {"cylinder": 1, "radius": [4, 4], "elevation": [25, 25], "offset": [0, 0]}
    sample = render_sample(_one_line(surface), 0, 0, keep_char_masks=True)
    assert not check_sample(sample)
    tops = np.array([np.asarray(c.quad)[:, 1].min() for c in sample.lines[0].chars])
    middle = len(tops) // 2
    assert tops[0] < tops[middle] - 5 and tops[-1] < tops[middle] - 5  # y grows downwards: the ends are higher
    line = np.asarray(sample.lines[0].quad)
    assert line[:, 1].max() - line[:, 1].min() > 40 + 5  # the chord's rectangle holds the sag of the arc


def test_along_a_cable_the_lines_stay_straight_and_flatten_towards_its_edges():
    """Horizontal axis: a point y from the block's centre shows at R sin(y / R), so the outer lines are
    shorter than the middle one, and every line stays straight."""
    surface = {"cylinder": 1, "axis": {"horizontal": 1}, "radius": [2, 2], "offset": [0, 0]}
    spec = _one_line(surface).model_dump(mode="json")
    spec["text"]["blocks"] = [{"lines": ["0000", "0000", "0000"]}]
    spec["typography"]["line_spacing"] = [1.5, 1.5]
    spec["layout"]["alignment"] = {"center": 1}
    sample = render_sample(recipe_from_dict(spec), 0, 0, keep_char_masks=True)
    assert not check_sample(sample)
    heights = [np.mean([np.ptp(np.asarray(c.quad)[:, 1]) for c in line.chars]) for line in sample.lines]
    assert heights[0] < 0.9 * heights[1] and heights[2] < 0.9 * heights[1]
    for line in sample.lines:
        tops = [np.asarray(c.quad)[:, 1].min() for c in line.chars]
        assert np.ptp(tops) < 0.5


def test_no_cylinder_draws_nothing_so_other_pages_stay_as_they_were():
    rng = np.random.default_rng(7)
    state = rng.bit_generator.state
    assert sample_surface(SurfaceConfig(radius=(2, 3)), rng) is None
    assert rng.bit_generator.state == state
    base = load_recipe("default")
    asked = base.model_copy(update={"surface": SurfaceConfig(cylinder=0.0, axis={"horizontal": 1})})
    for index in range(2):
        plain, off = render_sample(base, 0, index), render_sample(asked, 0, index)
        assert np.array_equal(plain.image, off.image)
        assert all("surface" not in block for block in off.records["blocks"])


def test_a_curved_page_is_the_same_page_every_time():
    recipe = _curved("inkjet-dotmatrix", width=800, height=600)
    a, b = render_sample(recipe, 3, 5), render_sample(recipe, 3, 5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert [line.quad.tolist() for line in a.lines] == [line.quad.tolist() for line in b.lines]
    assert a.records["blocks"] == b.records["blocks"]
    record = a.records["blocks"][0]["surface"]
    assert set(record) >= {"axis", "radius", "radius_px", "elevation", "offset", "shading", "highlight"}
    assert math.isfinite(record["radius_px"])
