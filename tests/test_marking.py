import json

import cv2
import numpy as np
import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from synthtext_industrial.stages.marking import (ColourConfig, InkjetStyle, LaserStyle, MarkingStyle, ThermalStyle,
                                                 apply_marking, resolve_colour, sample_marking)
from synthtext_industrial.core.config import StrictModel

STYLE = TypeAdapter(MarkingStyle)
DARK = ColourConfig(polarity={"dark_on_light": 1, "light_on_dark": 0})
LIGHT = ColourConfig(polarity={"dark_on_light": 0, "light_on_dark": 1})
ALL_KINDS = ["inkjet", "thermal", "laser", "emboss", "stamp", "engrave"]


class Recipe(StrictModel):
    marking: list[MarkingStyle] = []
    colour: ColourConfig = ColourConfig()


def textured(value: int, shape=(120, 200), seed=0) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(-8, 9, shape)
    return np.clip(value + noise, 0, 255).astype(np.uint8)


def text_coverage(shape=(120, 200)) -> np.ndarray:
    coverage = np.zeros(shape, np.uint8)
    cv2.putText(coverage, "A7", (40, 85), cv2.FONT_HERSHEY_SIMPLEX, 2.2, 255, 7, cv2.LINE_AA)
    return coverage


def block_coverage(shape=(120, 200)) -> np.ndarray:
    coverage = np.zeros(shape, np.uint8)
    coverage[40:80, 60:140] = 255
    return coverage


def chessboard_distance(coverage: np.ndarray) -> np.ndarray:
    """Distance (px, max-norm) of every pixel to the nearest footprint pixel."""
    return cv2.distanceTransform((coverage == 0).astype(np.uint8), cv2.DIST_C, 3)


def mark(image, coverage, style: dict, colour=ColourConfig(), seed=0):
    rng = np.random.default_rng(seed)
    params = resolve_colour(image, coverage, sample_marking([STYLE.validate_python(style)], colour, rng))
    return apply_marking(image, coverage, params, rng), params


STEADY = {  # ink styles with every random variation turned off, to measure contrast exactly
    "inkjet": {"kind": "inkjet", "opacity": 1, "density_variation": 0},
    "thermal": {"kind": "thermal", "opacity": 1, "density_variation": 0, "streak_chance": 0},
    "laser": {"kind": "laser", "unevenness": 0, "halo": 0, "contrast": None},
}


@pytest.mark.parametrize("kind", ["inkjet", "thermal", "laser"])
def test_dark_ink_darkens_and_light_ink_brightens(kind):
    image, coverage = textured(128), text_coverage()
    inside, near_outside = coverage == 255, (chessboard_distance(coverage) > 12) & (chessboard_distance(coverage) < 20)
    dark, _ = mark(image, coverage, {"kind": kind}, DARK)
    light, _ = mark(image, coverage, {"kind": kind}, LIGHT)
    assert dark[inside].mean() < dark[near_outside].mean() - 15
    assert light[inside].mean() > light[near_outside].mean() + 15


@pytest.mark.parametrize("kind", ["inkjet", "thermal", "laser"])
@pytest.mark.parametrize("surface", [70, 128, 190])
def test_contrast_is_within_the_requested_range(kind, surface):
    image, coverage = np.full((120, 200), surface, np.uint8), text_coverage()
    colour = ColourConfig(contrast=(40, 65))
    seen = set()
    for seed in range(12):
        marked, params = mark(image, coverage, STEADY[kind], colour, seed)
        contrast = np.abs(marked[coverage == 255].astype(int) - surface)
        assert contrast.min() >= 40 - 1 and contrast.max() <= 65 + 1
        assert abs(params["achieved_contrast"] - contrast.mean()) <= 1
        seen.add(params["polarity"])
    assert seen == {"dark_on_light", "light_on_dark"}


def test_style_contrast_overrides_the_colour_section():
    image, coverage = np.full((120, 200), 128, np.uint8), text_coverage()
    style = {**STEADY["inkjet"], "contrast": [10, 12]}
    marked, params = mark(image, coverage, style, ColourConfig(contrast=(100, 120)))
    assert 10 - 1 <= np.abs(marked[coverage == 255].astype(int) - 128).max() <= 12 + 1
    assert params["min_contrast"] == 10


def test_laser_contrast_is_lower_by_default():
    laser = sample_marking([LaserStyle()], ColourConfig(), np.random.default_rng(0))
    assert laser["contrast"] <= 70 < ColourConfig().contrast[1]


@pytest.mark.parametrize("kind", ["inkjet", "thermal", "laser"])
def test_polarity_flips_when_clipping_would_kill_the_contrast(kind):
    coverage = text_coverage()
    black = np.full((120, 200), 8, np.uint8)
    marked, params = mark(black, coverage, STEADY[kind], DARK)
    assert params["polarity"] == "light_on_dark"
    assert marked[coverage == 255].min() >= 8 + params["min_contrast"] - 1

    white = np.full((120, 200), 250, np.uint8)
    marked, params = mark(white, coverage, STEADY[kind], LIGHT)
    assert params["polarity"] == "dark_on_light"
    assert marked[coverage == 255].max() <= 250 - params["min_contrast"] + 1


def test_laser_forced_mark_tone_also_flips_on_a_black_surface():
    _, params = mark(np.full((120, 200), 5, np.uint8), text_coverage(), {"kind": "laser", "mark": "dark"})
    assert params["polarity"] == "light_on_dark"


def test_clipped_contrast_above_the_minimum_keeps_the_polarity():
    surface = np.full((120, 200), 60, np.uint8)
    _, params = mark(surface, text_coverage(), STEADY["inkjet"], ColourConfig(
        polarity={"dark_on_light": 1, "light_on_dark": 0}, contrast=(50, 170)), seed=3)
    assert params["polarity"] == "dark_on_light"
    assert params["ink_level"] == max(0.0, 60 - params["contrast"])


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_pixels_far_from_the_footprint_are_untouched(kind):
    image, coverage = textured(128), text_coverage()
    distance = chessboard_distance(coverage)
    for seed in range(4):
        marked, params = mark(image, coverage, {"kind": kind}, seed=seed)
        changed = marked != image
        reach = 2 * max(1, round(params["halo_radius"])) if kind == "laser" else {"inkjet": 0, "thermal": 0}.get(kind, 2)
        assert changed.any()
        assert distance[changed].max() <= reach


def test_laser_halo_reaches_outside_and_no_halo_stays_inside():
    image, coverage = np.full((120, 200), 150, np.uint8), block_coverage()
    ring = (chessboard_distance(coverage) >= 1) & (chessboard_distance(coverage) <= 3)
    haloed, _ = mark(image, coverage, {"kind": "laser", "mark": "dark", "halo": 0.5, "halo_radius": 4})
    plain, _ = mark(image, coverage, {"kind": "laser", "mark": "dark", "halo": 0})
    assert (haloed[ring] < 150).all()
    assert (plain[ring] == 150).all()


def test_thermal_dead_element_leaves_a_line_without_ink():
    image, coverage = np.full((120, 200), 200, np.uint8), block_coverage()
    style = {**STEADY["thermal"], "streak_chance": 1, "streaks": 1, "streak_width": 1, "streak_strength": 1}
    marked, params = mark(image, coverage, style, DARK)
    unprinted_rows = [r for r in range(40, 80) if (marked[r, 60:140] == 200).all()]
    assert len(unprinted_rows) == 1 and params["print_direction"] == "horizontal"


def relief_sides(kind: str, light_angle: float) -> tuple[float, float, float, float]:
    """Mean shading (marked - surface) on the left, right, top and bottom edge bands of a block."""
    image, coverage = np.full((120, 200), 128, np.uint8), block_coverage()
    style = {"kind": kind, "light_angle": light_angle, "depth": 1}
    if kind == "engrave":
        style["floor_darkening"] = 0
    shading = mark(image, coverage, style)[0].astype(int) - 128
    return (shading[45:75, 56:64].mean(), shading[45:75, 136:144].mean(),
            shading[36:44, 65:135].mean(), shading[76:84, 65:135].mean())


def test_raised_marks_are_bright_on_the_side_facing_the_light():
    left, right, top, bottom = relief_sides("emboss", 0)  # light from the right
    assert right > 10 and left < -10
    left, right, top, bottom = relief_sides("emboss", 180)  # from the left
    assert left > 10 and right < -10
    left, right, top, bottom = relief_sides("emboss", 90)  # from the top
    assert top > 10 and bottom < -10


@pytest.mark.parametrize("kind", ["stamp", "engrave"])
def test_recessed_marks_shade_opposite_to_raised_ones(kind):
    for angle in (0, 90, 180, 270):
        raised, recessed = relief_sides("emboss", angle), relief_sides(kind, angle)
        lit = [(a, b) for a, b in zip(raised, recessed) if abs(a) > 10]
        assert len(lit) == 2 and all(a * b < 0 and abs(b) > 5 for a, b in lit)


def test_engraved_groove_floor_is_darker_and_emboss_adds_no_ink():
    image, coverage = np.full((120, 200), 128, np.uint8), block_coverage()
    engraved, params = mark(image, coverage, {"kind": "engrave", "floor_darkening": [20, 20]})
    embossed, _ = mark(image, coverage, {"kind": "emboss"})
    assert abs(int(engraved[60, 100]) - (128 - 20)) <= 1
    assert embossed[60, 100] == 128


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_inputs_are_not_modified(kind):
    image, coverage = textured(128), text_coverage()
    image_before, coverage_before = image.copy(), coverage.copy()
    rng = np.random.default_rng(0)
    params = sample_marking([STYLE.validate_python({"kind": kind})], ColourConfig(), rng)
    params_before = json.dumps(params)
    marked = apply_marking(image, coverage, params, rng)
    assert marked is not image
    assert np.array_equal(image, image_before) and np.array_equal(coverage, coverage_before)
    assert json.dumps(params) == params_before


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_same_seed_same_bytes_and_different_seed_differs(kind):
    image, coverage = textured(128), text_coverage()
    style = {"kind": kind}
    first, first_params = mark(image, coverage, style, seed=1)
    again, again_params = mark(image, coverage, style, seed=1)
    other, other_params = mark(image, coverage, style, seed=2)
    assert first.tobytes() == again.tobytes() and first_params == again_params
    assert first.tobytes() != other.tobytes() and first_params != other_params


def test_unresolved_record_gives_the_same_image_as_a_resolved_one():
    image, coverage = textured(100), text_coverage()
    params = sample_marking([InkjetStyle()], ColourConfig(), np.random.default_rng(0))
    direct = apply_marking(image, coverage, params, np.random.default_rng(9))
    resolved = apply_marking(image, coverage, resolve_colour(image, coverage, params), np.random.default_rng(9))
    assert direct.tobytes() == resolved.tobytes()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_record_holds_plain_values_for_provenance(kind):
    params = sample_marking([STYLE.validate_python({"kind": kind})], ColourConfig(), np.random.default_rng(0))
    params = resolve_colour(textured(128), text_coverage(), params)
    assert params["kind"] == kind
    assert json.loads(json.dumps(params)) == params
    if kind in ("inkjet", "thermal", "laser"):
        assert {"polarity", "contrast", "ink_level", "achieved_contrast", "local_mean"} <= set(params)


def test_styles_are_drawn_by_weight():
    styles = [STYLE.validate_python({"kind": "inkjet", "weight": 3}), STYLE.validate_python({"kind": "emboss"})]
    rng = np.random.default_rng(0)
    kinds = [sample_marking(styles, ColourConfig(), rng)["kind"] for _ in range(400)]
    assert 0.65 < kinds.count("inkjet") / 400 < 0.85


def test_empty_coverage_returns_an_unchanged_copy():
    image = textured(128)
    params = sample_marking([], ColourConfig(), np.random.default_rng(0))
    marked = apply_marking(image, np.zeros_like(image), params, np.random.default_rng(0))
    assert marked is not image and np.array_equal(marked, image)


def test_shape_mismatch_is_an_error():
    params = sample_marking([], ColourConfig(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="same shape"):
        apply_marking(textured(128), np.zeros((10, 10), np.uint8), params, np.random.default_rng(0))


def test_recipe_example_parses_and_empty_sections_have_defaults():
    recipe = Recipe.model_validate(yaml.safe_load("""
marking:
  - {kind: inkjet, weight: 2, opacity: [0.85, 1.0]}
  - {kind: laser, weight: 1, mark: random, halo: [0, 0.6]}
  - {kind: emboss, weight: 1, light_angle: [0, 360], depth: [0.6, 1.5]}
colour:
  polarity: {dark_on_light: 0.7, light_on_dark: 0.3}
  contrast: [50, 170]
"""))
    assert [s.kind for s in recipe.marking] == ["inkjet", "laser", "emboss"]
    assert recipe.marking[1].halo == (0.0, 0.6)
    empty = Recipe.model_validate({"marking": [], "colour": {}})
    assert sample_marking(empty.marking, empty.colour, np.random.default_rng(0))["kind"] == "inkjet"
    assert ThermalStyle.model_validate({"kind": "thermal"}).streak_chance == 0.3


def test_wrong_field_for_a_kind_names_the_allowed_fields():
    with pytest.raises(ValidationError) as error:
        Recipe.model_validate({"marking": [{"kind": "inkjet", "halo": 0.3}]})
    message = str(error.value)
    assert "halo" in message and "allowed fields" in message and "opacity" in message


def test_unknown_or_missing_kind_is_an_error():
    with pytest.raises(ValidationError, match="inkjet.*thermal.*laser"):
        Recipe.model_validate({"marking": [{"kind": "spray"}]})
    with pytest.raises(ValidationError, match="kind"):
        Recipe.model_validate({"marking": [{"opacity": 0.9}]})


@pytest.mark.parametrize("bad", [
    {"marking": [{"kind": "inkjet", "opacity": [1.0, 0.5]}]},
    {"marking": [{"kind": "laser", "mark": "grey"}]},
    {"marking": [{"kind": "emboss", "weight": 0}]},
    {"colour": {"contrast": [50, 300]}},
    {"colour": {"polarity": {"dark_on_light": 0, "light_on_dark": 0}}},
    {"colour": {"polarity": {"dark": 1}}},
])
def test_invalid_values_are_errors(bad):
    with pytest.raises(ValidationError):
        Recipe.model_validate(bad)


# ---------------------------------------------------------------- legibility

def busy(value: int, spread: int, shape=(120, 200), seed=0) -> np.ndarray:
    """A surface with strong fine texture (grain about 2 px), like brushed or blasted metal."""
    noise = np.random.default_rng(seed).normal(0, spread, (shape[0] // 2, shape[1] // 2))
    grain = cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return np.clip(value + grain, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", ["laser", "engrave", "inkjet"])
def test_legibility_grows_with_the_mark_and_falls_with_the_texture(kind):
    from synthtext_industrial.stages.legibility import legibility

    coverage = text_coverage()
    style = ({"kind": kind, "contrast": [30, 30]} if kind != "engrave"
             else {"kind": kind, "depth": [0.5, 0.5], "floor_darkening": [0, 0]})
    strong = {**style, "contrast": [90, 90]} if kind != "engrave" else {**style, "depth": [1.5, 1.5]}
    calm, rough = busy(128, 3), busy(128, 25)
    weak_on_calm = legibility(calm, mark(calm, coverage, style)[0], coverage, 4.0)
    strong_on_calm = legibility(calm, mark(calm, coverage, strong)[0], coverage, 4.0)
    weak_on_rough = legibility(rough, mark(rough, coverage, style)[0], coverage, 4.0)
    assert strong_on_calm > 2 * weak_on_calm > 0
    assert weak_on_rough < weak_on_calm / 3
    assert legibility(calm, calm, coverage, 4.0) == 0.0  # no mark, nothing to read


@pytest.mark.parametrize("kind", ["laser", "engrave", "thermal"])
def test_a_drowned_mark_is_strengthened_to_the_floor(kind):
    from synthtext_industrial.stages.legibility import CharInk, chars_legibility
    from synthtext_industrial.stages.marking import legible_mark

    coverage, surface = text_coverage(), busy(128, 12)
    chars = [CharInk(0, 0, coverage)]
    style = {"kind": kind, "contrast": [10, 10]} if kind != "engrave" else {"kind": kind, "depth": [0.1, 0.1]}
    params = sample_marking([STYLE.validate_python(style)], ColourConfig(), np.random.default_rng(0))
    faint, faint_image, _ = legible_mark(surface, coverage, chars, params, 0.0, 60, np.random.default_rng(1))
    assert faint["legibility"] < 3
    record, image, scores = legible_mark(surface, coverage, chars, params, 6.0, 60, np.random.default_rng(1))
    assert record["legibility"] >= 6.0 and "strengthened" in record["adjusted"]
    relief = kind == "engrave"
    assert record["legibility"] == pytest.approx(min(chars_legibility(surface, image, chars, relief, 10.0)),
                                                 abs=1e-3)
    outside = chessboard_distance(coverage) > 12
    assert np.array_equal(image[outside], surface[outside]), "strengthening stays on the mark"


def test_a_floor_out_of_reach_keeps_the_strongest_mark_and_says_so():
    from synthtext_industrial.stages.marking import legible_mark

    from synthtext_industrial.stages.legibility import CharInk

    coverage, surface = text_coverage(), busy(128, 60)  # texture as strong as any mark can be
    params = sample_marking([STYLE.validate_python({"kind": "laser"})], ColourConfig(), np.random.default_rng(0))
    record, _image, _ = legible_mark(surface, coverage, [CharInk(0, 0, coverage)], params, 50.0, 60,
                                      np.random.default_rng(1))
    assert record["legibility"] < 50.0 and record["contrast"] == 255.0


def test_one_washed_out_character_makes_the_weakest_character_illegible():
    """A highlight over one character of three barely moves the line's RMS change but wipes out that character."""
    from synthtext_industrial.stages.legibility import CharInk, chars_legibility, legibility

    surface = busy(120, 4)
    coverage = np.zeros(surface.shape, np.uint8)
    chars = []
    for x in (30, 80, 130):  # three bar-shaped "characters", 40 px apart
        coverage[30:90, x:x + 12] = 255
        chars.append(CharInk(x - 2, 28, coverage[28:92, x - 2:x + 14]))
    marked = mark(surface, coverage, {"kind": "inkjet", "contrast": [80, 80]}, DARK)[0]
    clear = min(chars_legibility(surface, marked, chars, False, 4.0))
    assert clear > 8
    columns = np.arange(surface.shape[1], dtype=np.float32)
    light = 400 * np.exp(-((columns - 136) ** 2) / (2 * 12.0**2))  # a soft reflection over the third character
    washed_surface, washed_mark = (np.clip(image + light, 0, 255).astype(np.uint8) for image in (surface, marked))
    whole_line = legibility(washed_surface, washed_mark, coverage, 4.0)
    scores = chars_legibility(washed_surface, washed_mark, chars, False, 4.0)
    assert whole_line > 0.5 * legibility(surface, marked, coverage, 4.0)  # the line as a whole still looks readable...
    assert scores[2] < 0.05 * clear and min(scores[:2]) > 0.5 * clear  # ...but one of its characters is gone
    assert chars_legibility(surface, marked, [], False, 4.0) == []
