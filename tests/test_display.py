"""Display windows, ghost segments, italic slant and crop framing: the realism of meter and display crops.

None of them may touch the ground truth: windows and ghosts are not text, slanted characters keep tight
boxes, and a framed crop never cuts its line.
"""
import cv2
import numpy as np
import pytest

from synthtext_industrial import load_recipe, recipe_from_dict, render_sample
from synthtext_industrial.core import geometry
from synthtext_industrial.crops import (CropConfig, _line_windows, box_crop, box_frame, capture_at, crop_rng,
                                       framed_crops, framed_line_crops, line_crop, line_crops, sample_framing)
from synthtext_industrial.exactness import check_sample
from synthtext_industrial.stages.fonts import SEGMENT_FORMS, FontFace, catalog, truetype_glyph

QUIET = {"min_legibility": 0, **{name: {"p": 0} for name in
                                 ("highlights", "partial_blur", "noise", "tone", "vignetting", "jpeg")}}


def _display_recipe(ghost, ghost_digits=(2, 2), slant=(0, 0), lines=("{9:2}.{9:2}",), forms=None, font="dseg7"):
    return recipe_from_dict({
        "canvas": {"width": 640, "height": 480},
        "text": {"blocks": [{"lines": list(lines)}]},
        "fonts": [{"font": font}],
        "typography": {"height_px": [60, 60], "aspect": [1, 1], "slant": list(slant), "segment_forms": forms or {}},
        "layout": {"blocks": [1, 1], "rotation": [0, 0], "perspective": [0, 0], "alignment": {"right": 1}},
        "marking": [{"kind": "inkjet", "opacity": [1, 1], "density_variation": [0, 0]}],
        "colour": {"polarity": {"dark_on_light": 1, "light_on_dark": 0}, "contrast": [120, 120]},
        "background": {"materials": {"plastic_white": 1}},
        "display": {"p": 1, "ghost": list(ghost), "ghost_digits": list(ghost_digits), "window_level": [170, 170],
                    "texture": [0, 0], "backlight": [0, 0]},
        "effects": QUIET,
    })


@pytest.mark.parametrize("name, pages", [("meter-lcd", 150), ("licence-plate", 150), ("meter-digits", 60)])
def test_display_recipes_ground_truth_is_exact_with_windows_ghosts_emblems_and_slant(name, pages):
    recipe = load_recipe(name)
    problems = []
    for index in range(pages):
        sample = render_sample(recipe, 0, index, keep_char_masks=True)
        problems += [f"sample {index}: {p}" for p in check_sample(sample)]
    assert not problems, "\n".join(problems[:10])


def test_ghost_segments_are_drawn_but_never_labelled():
    """The same page with and without ghosts: only unlit pixels change (unlit segments and blank leading
    digits), never the mask, the labels or the boxes."""
    lit, unlit = (render_sample(_display_recipe(g), 0, 3) for g in ((0.3, 0.3), (0.0, 0.0)))
    assert lit.records["blocks"][0]["display"]["ghost"] == pytest.approx(0.3)
    assert np.array_equal(lit.mask, unlit.mask)
    assert [(line.text, line.quad.tolist()) for line in lit.lines] == \
        [(line.text, line.quad.tolist()) for line in unlit.lines]
    changed = np.abs(lit.image.astype(int) - unlit.image.astype(int)) > 10
    assert not (changed & (lit.mask > 250)).any(), "a lit segment stays as it was"
    quad = lit.lines[0].quad
    x0, y0, y1 = quad[:, 0].min(), quad[:, 1].min(), quad[:, 1].max()
    leading = changed[int(y0):int(y1), :int(x0)]
    assert leading.sum() > 100, "the blank leading digits show their unlit segments"
    assert (lit.image[changed] < unlit.image[changed]).all(), "dark LCD segments: unlit ones are a little darker"


def test_the_window_and_bezel_frame_the_reading():
    sample = render_sample(_display_recipe((0, 0)), 0, 1)
    display = sample.records["blocks"][0]["display"]
    quad = sample.lines[0].quad
    cx, cy = quad.mean(axis=0)
    height = quad[:, 1].max() - quad[:, 1].min()
    glass_y = int(quad[:, 1].min() - 0.5 * display["margins"][1] * height)  # inside the glass, above the digits
    assert abs(int(sample.image[glass_y, int(cx)]) - 170) < 8
    outside = int(quad[:, 1].min() - display["margins"][1] * height - display["bezel_px"] / 2)
    assert abs(int(sample.image[outside, int(cx)]) - display["bezel_level"]) < 12


def test_no_display_draws_nothing_so_other_pages_stay_as_they_were():
    base = load_recipe("default")
    asked = base.model_copy(update={"display": base.display.model_copy(update={"ghost": (0.1, 0.3)})})  # p is 0
    for index in range(3):
        assert np.array_equal(render_sample(base, 0, index).image, render_sample(asked, 0, index).image)
        assert "display" not in render_sample(base, 0, index).records["blocks"][0]


def test_slanted_characters_lean_right_and_keep_tight_boxes():
    upright = render_sample(_display_recipe((0, 0), (0, 0)), 0, 2, keep_char_masks=True)
    leaning = render_sample(_display_recipe((0, 0), (0, 0), slant=(12, 12)), 0, 2, keep_char_masks=True)
    assert leaning.records["blocks"][0]["slant"] == pytest.approx(12)
    assert not check_sample(leaning)

    def lean(sample):  # ink centroid of the top half minus that of the bottom half, in x
        ys, xs = np.nonzero(sample.mask[:, :] > 128)
        middle = (ys.min() + ys.max()) / 2
        return xs[ys < middle].mean() - xs[ys >= middle].mean()

    assert lean(leaning) > lean(upright) + 3


def test_alternative_segment_forms_drop_exactly_their_tail_segment_and_keep_tight_boxes():
    """DSEG7 draws 6, 7 and 9 with their tails; the alternatives drop the top of the 6, the upper-left segment
    of the 7 and the bottom of the 9. Each changes only its own digit, and every box still encloses its ink."""
    every = {"tailless_7": 1, "tailless_6": 1, "tailless_9": 1}
    plain, alternative = (render_sample(_display_recipe((0, 0), (0, 0), lines=("7690",), forms=forms), 0, 1,
                                        keep_char_masks=True) for forms in ({}, every))
    assert alternative.records["blocks"][0]["segment_forms"] == sorted(every)
    assert "segment_forms" not in plain.records["blocks"][0]
    assert not check_sample(alternative)

    def ink(sample, k):  # character k's own coverage, as a 0/1 mask
        return sample.char_masks[0][k][2] > 128

    for k in (0, 1, 2):
        assert ink(alternative, k).sum() < 0.9 * ink(plain, k).sum(), "6, 7 and 9 each lose a segment"
    assert_tailless_7_is_7_without_its_upper_left_segment()
    assert abs(int(ink(alternative, 3).sum()) - int(ink(plain, 3).sum())) < 0.05 * ink(plain, 3).sum(), \
        "the 0 has no alternative form (only its sub-pixel position may differ)"


def assert_tailless_7_is_7_without_its_upper_left_segment():
    face = FontFace("dseg7", str(catalog()["dseg7"].path))

    def pen_frame(glyph, size=120):  # the glyph's ink on a canvas whose origin is the pen on the baseline
        canvas = np.zeros((size, size), bool)
        y, x = int(round(glyph.top)) + size - 10, int(round(glyph.left)) + 10
        h, w = glyph.bitmap.shape
        canvas[y:y + h, x:x + w] = glyph.bitmap > 128
        return canvas

    seven = pen_frame(truetype_glyph(face, 80, "7"))
    tailless = pen_frame(truetype_glyph(face, 80, "7", form=SEGMENT_FORMS["tailless_7"][1]))
    assert not (tailless & ~seven).any(), "nothing is added"
    removed = seven & ~tailless
    ys, xs = np.nonzero(seven)
    rys, rxs = np.nonzero(removed)
    assert removed.sum() > 0.15 * seven.sum()
    assert rxs.max() < xs.min() + 0.3 * np.ptp(xs), "the removed segment is on the left"
    assert rys.max() < ys.min() + 0.6 * np.ptp(ys), "and in the upper half"


def test_segment_forms_draw_nothing_for_other_fonts():
    recipe = load_recipe("default")
    asked = recipe.model_copy(update={"typography": recipe.typography.model_copy(
        update={"segment_forms": {"tailless_7": 1.0}})})
    for index in range(3):
        assert np.array_equal(render_sample(recipe, 0, index).image, render_sample(asked, 0, index).image)


def test_default_framing_is_the_old_tight_crop():
    recipe = load_recipe("default")
    sample = render_sample(recipe, 0, 0)
    for (framed, text), (tight, tight_text) in zip(framed_crops(sample, recipe.crops), line_crops(sample)):
        assert text == tight_text and np.array_equal(framed, tight)


def test_framed_crops_are_loose_off_centre_never_cut_and_repeatable():
    recipe = load_recipe("meter-lcd")
    cfg = CropConfig(margin_x=(0.0, 1.5), margin_y=(0.0, 0.7))
    sizes = set()
    for index in range(6):
        sample = render_sample(recipe, 0, index)
        crops = framed_crops(sample, cfg)
        again = framed_crops(sample, cfg)
        assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(crops, again))
        rng = crop_rng(sample.seed, sample.index)
        for line, (crop, text) in zip(sample.lines, crops):
            framing = sample_framing(cfg, rng)
            ink = line_crop(sample.mask, line.quad, framing["margins"])
            assert ink.shape == crop.shape
            left, top, right, bottom = framing["margins"]
            h = crop.shape[0] / (1 + top + bottom)  # text height in the crop
            cols = np.nonzero(ink.max(axis=0) > 128)[0]
            assert cols[0] >= left * h - 2 and cols[-1] <= crop.shape[1] - right * h + 2, "the text sits where asked"
            sizes.add(round(left, 2))
    assert len(sizes) > 3, "each line draws its own framing"


def test_capture_at_a_small_text_height_blurs_like_a_low_resolution_camera():
    rng = np.random.default_rng(0)
    crop = (rng.random((120, 400)) > 0.5).astype(np.uint8) * 255
    crop = cv2.resize(cv2.resize(crop, (100, 30), interpolation=cv2.INTER_NEAREST), (400, 120),
                      interpolation=cv2.INTER_NEAREST)  # 4-px blocks: detail a 10-px text height cannot keep
    small = capture_at(crop, text_height=100, target=10)
    assert small.shape == crop.shape
    assert np.abs(np.diff(small.astype(float), axis=1)).mean() < 0.5 * np.abs(np.diff(crop.astype(float), axis=1)).mean()
    assert capture_at(crop, text_height=8, target=10) is crop  # already that small: unchanged


def test_unlit_digits_beyond_the_frame_are_left_out():
    """Twelve blank leading digits of a tilted display run off the page: they are not drawn, nothing breaks."""
    base = _display_recipe((0.2, 0.2), ghost_digits=(12, 12))
    tilted = base.model_copy(update={"layout": base.layout.model_copy(update={"perspective": (0.05, 0.08)})})
    for index in range(6):
        sample = render_sample(tilted, 0, index, keep_char_masks=True)
        assert not check_sample(sample)


def _plate_recipe(emblem, separator):
    recipe = _display_recipe((0, 0), (0, 0), lines=("{[ACE]} {9:5}",))
    display = recipe.display.model_copy(update={"emblem": emblem, "separator": separator})
    layout = recipe.layout.model_copy(update={"margin_px": 120})  # room for the emblem on the page
    return recipe.model_copy(update={"display": display, "layout": layout})


def test_a_plates_emblem_and_separator_dot_are_printed_but_never_labelled():
    """The same plate with and without its emblem and dot: the labels, boxes and text mask stay; ink appears
    left of the text (the emblem) and in the gap between the groups (the dot), in the text's polarity."""
    marked, bare = (render_sample(_plate_recipe(p, p), 0, 2, keep_char_masks=True) for p in (1.0, 0.0))
    display = marked.records["blocks"][0]["display"]
    assert display["emblem"] and display["separator"] is True
    assert "emblem" not in bare.records["blocks"][0]["display"]
    assert not check_sample(marked)
    assert [(line.text, line.quad.tolist()) for line in marked.lines] == \
        [(line.text, line.quad.tolist()) for line in bare.lines]
    assert np.array_equal(marked.mask, bare.mask)
    line = marked.lines[0]
    chars = line.chars
    y0, y1 = int(line.quad[:, 1].min()), int(line.quad[:, 1].max())
    first_x = int(chars[0].quad[:, 0].min())
    left = (slice(y0, y1), slice(first_x - int(1.2 * (y1 - y0)), first_x - 2))
    dark_marked, dark_bare = (int((sample.image[left] < 120).sum()) for sample in (marked, bare))
    assert dark_marked > dark_bare + 0.05 * marked.image[left].size, "a dark emblem left of the dark text"
    gap_x0, gap_x1 = int(chars[0].quad[:, 0].max()) + 1, int(chars[1].quad[:, 0].min()) - 1
    gap = marked.image[y0:y1, gap_x0:gap_x1]
    assert gap.size and gap.min() < 120, "a dot between the groups"
    assert bare.image[y0:y1, gap_x0:gap_x1].min() > 140


def test_window_framed_crops_show_the_whole_window_and_never_cut_the_text():
    recipe = load_recipe("licence-plate")
    cfg = recipe.crops.model_copy(update={"window": 1.0, "window_margin": (0.0, 0.1), "text_height_px": None, "box": 0.0})
    framed = 0
    for index in range(8):
        sample = render_sample(recipe, 0, index)
        quad = np.asarray(sample.records["blocks"][0]["display"]["window_quad"])
        rng = crop_rng(sample.seed, sample.index)
        for line, (crop, _text) in zip(sample.lines, framed_crops(sample, cfg)):
            framing = sample_framing(cfg, rng, in_window=True)
            assert framing.get("window")
            ink = line_crop(sample.mask, quad, framing["margins"])
            assert ink.shape == crop.shape
            rows, cols = np.nonzero(ink > 128)
            assert rows.min() > 0 and cols.min() > 0 and rows.max() < ink.shape[0] - 1 and cols.max() < ink.shape[1] - 1
            width = np.hypot(*(quad[1] - quad[0]))
            height = np.hypot(*(quad[3] - quad[0]))
            left, top, right, bottom = framing["margins"]
            assert crop.shape[1] / crop.shape[0] == pytest.approx((width + (left + right) * height)
                                                                 / (height * (1 + top + bottom)), rel=0.05)
            framed += 1
    assert framed == 8


@pytest.mark.parametrize("stroke", [0, 1, 2, 3])
def test_alternative_forms_leave_no_faint_specks_where_glyph_edges_touch(stroke):
    """An intersection of two glyphs leaves specks where their strokes only meet (the 7's upper-left segment
    ends where the 3's middle one starts): every piece of a form's bitmap is a whole segment."""
    face = FontFace("dseg7", str(catalog()["dseg7"].path))
    for name, (char, form) in SEGMENT_FORMS.items():
        for aspect in (0.6, 0.86, 1.2):
            bitmap = truetype_glyph(face, 150, char, stroke, aspect, form).bitmap
            _count, _labels, stats, _ = cv2.connectedComponentsWithStats((bitmap > 0).astype(np.uint8))
            areas = stats[1:, cv2.CC_STAT_AREA]
            assert areas.min() > 0.15 * areas.max(), (name, stroke, aspect, sorted(areas))


def _ink_of_line(sample, line) -> np.ndarray:
    """The mark mask of one line only (its quad grown by 1.5 px, as the exactness rule allows)."""
    region = np.zeros_like(sample.mask)
    grown = line.quad + 1.5 * np.sign(line.quad - line.quad.mean(axis=0))
    cv2.fillConvexPoly(region, np.round(grown * 16 - 8).astype(np.int32), 255, cv2.LINE_8, shift=4)
    return np.where(region > 0, sample.mask, 0).astype(np.uint8)


def test_box_crop_without_a_view_is_the_plain_slice():
    page = np.random.default_rng(0).integers(0, 255, (120, 200), dtype=np.uint8)
    quad = np.array([[40, 30], [140, 30], [140, 70], [40, 70]], np.float64)
    crop = box_crop(page, quad, [0.25, 0.5, 0.25, 0.5])  # margins in quad heights (40 px)
    assert np.array_equal(crop, page[10:90, 30:150])


def test_box_crop_keeps_the_view_turned_not_rectified():
    page = np.full((300, 400), 200, np.uint8)
    cv2.rectangle(page, (100, 145), (300, 155), 20, -1)  # a long horizontal bar
    quad = geometry.rect_quad(95, 140, 305, 160)
    for rotation in (-8.0, 6.0):
        crop = box_crop(page, quad, [0.1] * 4, rotation=rotation)
        ys, xs = np.nonzero(crop < 100)
        slope = np.polyfit(xs, ys, 1)[0]
        assert slope == pytest.approx(-np.tan(np.deg2rad(rotation)), abs=0.01), "turned counter-clockwise"
    ys, xs = np.nonzero(box_crop(page, quad, [0.1] * 4, shear=(0.0, 0.2)) < 100)
    assert np.polyfit(xs, ys, 1)[0] == pytest.approx(0.2, abs=0.01), "vertical shear slopes the baseline"


def test_box_framed_plate_crops_never_cut_their_line():
    """Every line of 150 licence-plate pages, cut as the recipe cuts it (mostly detector boxes of the tilted plate):
    the line's whole ink lands inside its crop, in the crop's own (view) geometry."""
    recipe = load_recipe("licence-plate")
    boxes = 0
    for index in range(150):
        sample = render_sample(recipe, 5, index)
        windows = _line_windows(sample)
        for k, (line, framed) in enumerate(zip(sample.lines, framed_line_crops(sample, recipe.crops))):
            assert framed.text == line.text
            if not framed.framing.get("box"):
                continue
            boxes += 1
            frame = windows[k] if framed.framing.get("window") else line.quad
            to_crop, width, height = box_frame(frame, framed.framing["margins"], **framed.framing["box"])
            ink = _ink_of_line(sample, line).astype(np.float64)
            seen = cv2.warpPerspective(ink, geometry.to_cv(to_crop), (width, height), flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            shx, shy = framed.framing["box"]["shear"]
            assert seen.sum() == pytest.approx(ink.sum() * abs(1 - shx * shy), rel=0.03), (index, k)
            assert framed.image.shape == (height, width) or framed.framing["text_height_px"] is not None
    assert boxes > 100, "the recipe cuts most crops as boxes"


def _glare_recipe(glare: float, level=(150, 150)):
    recipe = _display_recipe((0, 0))
    return recipe.model_copy(update={"display": recipe.display.model_copy(
        update={"glare": glare, "glare_level": level})})


def test_glare_lights_only_the_glass_and_never_touches_the_ground_truth():
    seen = 0
    for index in range(6):
        bare, lit = (render_sample(_glare_recipe(g), 0, index, measure_legibility=True) for g in (0.0, 1.0))
        glare = lit.records["blocks"][0]["display"]["glare"]
        assert "glare" not in bare.records["blocks"][0]["display"], "glare 0 draws nothing"
        assert np.array_equal(bare.mask, lit.mask)
        assert [(line.text, line.quad.tolist()) for line in bare.lines] == \
            [(line.text, line.quad.tolist()) for line in lit.lines]
        brighter = lit.image.astype(int) - bare.image.astype(int)
        assert brighter.min() >= -1, "a reflection only adds light"
        outer = np.asarray(lit.records["blocks"][0]["display"]["window_quad"])
        x0, y0 = np.maximum(np.floor(outer.min(axis=0)).astype(int), 0)  # the display may reach off the page
        x1, y1 = np.ceil(outer.max(axis=0)).astype(int)
        outside = np.ones_like(brighter, bool)
        outside[y0:y1 + 1, x0:x1 + 1] = False
        assert not brighter[outside].any(), "nothing outside the display changes"
        if brighter.max() > 40:
            seen += 1
            lit_ink = lit.image[lit.mask > 250].astype(int)
            assert lit.records["blocks"][0]["char_legibility"] and \
                min(lit.records["blocks"][0]["char_legibility"]) >= 1.0, ("every digit still reads under it", glare)
            assert lit_ink.min() >= bare.image[bare.mask > 250].min()
    assert seen >= 4, "most reflections show"


def _hollow_recipe(hollow: float, ghost=(0.0, 0.0), font="dseg7"):
    recipe = _display_recipe(ghost, lines=("{9:3}.{9:2}",), font=font)
    return recipe.model_copy(update={
        "display": recipe.display.model_copy(update={"hollow": hollow, "hollow_edge": (0.25, 0.25)}),
        "typography": recipe.typography.model_copy(update={"height_px": (100, 100)})})


def test_hollow_segments_keep_every_box_and_thin_only_the_inside_of_the_ink():
    """Outlined segments (a reflective LCD under a flash): the same page with and without them has the same
    text and the same character boxes, and the outlined ink lies inside the whole ink, a good deal thinner."""
    for index in range(4):
        whole, hollow = (render_sample(_hollow_recipe(h), 0, index, keep_char_masks=True) for h in (0.0, 1.0))
        assert "hollow" not in whole.records["blocks"][0]["display"], "hollow 0 draws nothing"
        assert hollow.records["blocks"][0]["display"]["hollow"] == pytest.approx(0.25)
        assert [line.text for line in whole.lines] == [line.text for line in hollow.lines]
        for a, b in zip(whole.lines, hollow.lines):
            for ca, cb in zip(a.chars, b.chars):
                assert np.abs(ca.quad - cb.quad).max() < 0.75, (a.text, ca.text, ca.quad, cb.quad)
        whole_ink, hollow_ink = whole.mask > 128, hollow.mask > 128
        assert not (hollow_ink & ~(whole.mask > 0)).any(), "outlines lie within the whole segments"
        assert 0.2 * whole_ink.sum() < hollow_ink.sum() < 0.85 * whole_ink.sum()
        assert not check_sample(hollow), check_sample(hollow)


def test_hollow_segments_keep_the_decimal_point_solid():
    """Real outlined displays show their points solid: the point's ink is the same with and without outlines,
    while every digit beside it loses its inside."""
    for index in range(3):
        whole, hollow = (render_sample(_hollow_recipe(h), 0, index) for h in (0.0, 1.0))
        for line in whole.lines:
            for char in line.chars:
                x0, y0 = np.floor(char.quad.min(axis=0)).astype(int)
                x1, y1 = np.ceil(char.quad.max(axis=0)).astype(int) + 1
                whole_ink = int((whole.mask[y0:y1, x0:x1] > 128).sum())
                hollow_ink = int((hollow.mask[y0:y1, x0:x1] > 128).sum())
                if char.char == ".":
                    assert whole_ink > 0 and hollow_ink == whole_ink, (index, whole_ink, hollow_ink)
                else:
                    assert hollow_ink < 0.85 * whole_ink, (index, char.char, whole_ink, hollow_ink)


def test_hollow_ghosts_are_outlined_too_and_other_fonts_stay_whole():
    def ghost_pixels(hollow):  # pixels the unlit segments darken
        bare, ghosted = (render_sample(_hollow_recipe(hollow, ghost=g), 0, 2) for g in ((0.0, 0.0), (0.3, 0.3)))
        return (bare.image.astype(int) - ghosted.image.astype(int) > 10).sum()

    outlined, whole = ghost_pixels(1.0), ghost_pixels(0.0)
    assert 0 < outlined < 0.85 * whole, (outlined, whole)
    outlined, whole = (render_sample(_hollow_recipe(h, font="ocr-b"), 0, 0) for h in (1.0, 0.0))
    assert outlined.records["blocks"][0]["display"]["hollow"] == pytest.approx(0.25)
    assert np.array_equal(outlined.mask, whole.mask), "a font that is not a segment font is drawn whole"


def _drum_recipe(drum: float, font="ocr-b", lines=("{9:3}",)):
    recipe = _display_recipe((0, 0), (0, 0), lines=lines, font=font)
    return recipe.model_copy(update={
        "display": recipe.display.model_copy(update={
            "drum": drum, "drum_pitch": (1.5, 1.5), "drum_show": (0.3, 0.3), "drum_squash": (0.8, 0.8),
            "bezel_level": (20, 20), "bezel_px": (6, 6)}),
        "layout": recipe.layout.model_copy(update={"margin_px": 150})})  # room for the drum window on the page


def test_counter_drums_show_their_neighbouring_digits_cut_by_the_window_and_never_labelled():
    """A counter's drums: the same reading with and without them has the same labels, boxes and text mask;
    above and below the reading the glass shows dark ink (the digits before and after), separated from the
    reading by clear glass, and the window's edges cut them (bezel right beyond)."""
    for index in range(3):
        drums, bare = (render_sample(_drum_recipe(d), 0, index, keep_char_masks=True) for d in (1.0, 0.0))
        display = drums.records["blocks"][0]["display"]
        assert display["drum"] == {"pitch": 1.5, "show": [0.3, 0.3], "squash": 0.8}
        assert "drum" not in bare.records["blocks"][0]["display"], "drum 0 draws nothing"
        assert not check_sample(drums), check_sample(drums)
        assert [(line.text, line.quad.tolist()) for line in drums.lines] == \
            [(line.text, line.quad.tolist()) for line in bare.lines]
        assert np.array_equal(drums.mask, bare.mask)
        quad = drums.lines[0].quad
        x0, x1 = int(quad[:, 0].min()) + 2, int(quad[:, 0].max()) - 2
        top, bottom = float(quad[:, 1].min()), float(quad[:, 1].max())
        height = drums.records["blocks"][0]["height_px"]  # the text height the drum's pitch and margins are in
        assert abs((bottom - top) - height) < 0.1 * height, "digits as tall as the text height"
        image = drums.image.astype(int)
        above = image[int(top - 0.8 * height) + 1:int(top - 0.5 * height) - 1, x0:x1]  # the glass's neighbour strip
        below = image[int(bottom + 0.5 * height) + 1:int(bottom + 0.8 * height) - 1, x0:x1]
        gap_above = image[int(top - 0.4 * height):int(top - 0.1 * height), x0:x1]
        gap_below = image[int(bottom + 0.1 * height):int(bottom + 0.4 * height), x0:x1]
        for strip in (above, below):
            assert (strip < 100).mean() > 0.05, "the neighbouring digits' dark ink shows on the glass"
        for gap in (gap_above, gap_below):
            assert np.abs(gap - 170).max() < 12, "clear glass between the reading and its neighbours"
        beyond = int(top - 0.8 * height) - 3  # the bezel (20) just outside the glass's top edge
        assert abs(int(np.median(image[beyond, x0:x1])) - 20) < 12


def test_drums_turn_only_behind_one_line_readings_in_printed_fonts():
    for recipe in (_drum_recipe(1.0, font="dseg7"), _drum_recipe(1.0, lines=("{9:3}", "{9:3}"))):
        sample = render_sample(recipe, 0, 0, keep_char_masks=True)
        assert sample.records["blocks"][0]["display"]["drum"] is None
        assert not check_sample(sample)


@pytest.mark.parametrize("gap", [0.0, 0.3])
def test_a_decimal_point_keeps_the_digit_pitch(gap):
    """DSEG's point has no advance: it sits in the gap between two digit cells, and the digits keep their
    pitch across it as on a display; it used to take a gap of its own, so every point came with a wide gap."""
    from synthtext_industrial.stages.text import GeneratedLine
    from synthtext_industrial.stages.typeset import typeset

    face = FontFace("dseg7", str(catalog()["dseg7"].path))

    def lefts(text):
        line, = typeset([GeneratedLine(text, ())], face, None, 60.0, 1.0, gap * 60, 0, 1.5, "left",
                        np.random.default_rng(0))
        return {line.source.text[g.char_index] + str(g.char_index): (g.x, g.x + g.glyph.bitmap.shape[1])
                for g in line.glyphs}

    plain, pointed = lefts("580"), lefts("58.0")
    pitch = plain["02"][0] - plain["81"][0]
    assert pointed["03"][0] - pointed["81"][0] == pytest.approx(pitch, abs=0.5), "8 to 0: one pitch"
    point, eight, zero = pointed[".2"], pointed["81"], pointed["03"]
    assert eight[1] <= point[0] + 1 and point[1] <= zero[0] + 1, "the point lies between the two digits"
