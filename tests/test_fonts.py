"""Fonts: coverage comes from fontTools, excluded look-alikes are honoured, no tofu is ever drawn."""
from __future__ import annotations

import string

import numpy as np
import pytest

from synthtext_industrial.stages.dotmatrix import DotMatrixSource, dot_glyph, load_table, sample_dot_style
from synthtext_industrial.stages.fonts import FontFace, catalog, height_per_em, truetype_glyph

PRINTABLE = string.ascii_letters + string.digits + "-/.:#"


def face_of(font_id: str) -> FontFace:
    info = catalog()[font_id]
    return FontFace(info.id, str(info.path), info.axes, info.exclude)


@pytest.mark.parametrize("font_id", sorted(catalog()))
def test_every_covered_character_draws_a_real_glyph(font_id):
    face = face_of(font_id)
    em = int(round(40 / height_per_em(face)))
    notdef = truetype_glyph(face, em, "\ue000").bitmap  # a private-use code point: no font maps it
    covered = [c for c in PRINTABLE if c in face.coverage()]
    assert len(covered) >= 10 + 6, f"{font_id} covers too little: {covered}"
    for ch in covered:
        bitmap = truetype_glyph(face, em, ch).bitmap
        assert bitmap.size and bitmap.max() > 128, f"{font_id} draws nothing for {ch!r}"
        same_as_tofu = bitmap.shape == notdef.shape and np.array_equal(bitmap, notdef)
        assert not same_as_tofu, f"{font_id} draws the missing-glyph box for {ch!r}"


def test_known_gaps_and_look_alikes_are_not_covered():
    assert "#" not in face_of("dseg7").coverage() and "/" not in face_of("dseg7").coverage()
    assert "a" not in face_of("bebas-neue").coverage()  # drawn as a capital
    assert "I" not in face_of("routed-gothic").coverage()  # looks like 1
    assert "#" not in face_of("allerta-stencil").coverage()
    assert set(string.digits) <= face_of("dseg7").coverage()


def test_character_height_follows_the_request():
    face = face_of("ocr-b")
    for height in (20, 48, 90):
        em = int(round(height / height_per_em(face)))
        glyph = truetype_glyph(face, em, "0")
        assert abs(glyph.bitmap.shape[0] - height) <= 2


def test_aspect_stretches_width_not_height():
    face = face_of("dejavu-sans-mono")
    narrow = truetype_glyph(face, 60, "M", 0, 0.75).bitmap
    normal = truetype_glyph(face, 60, "M", 0, 1.0).bitmap
    wide = truetype_glyph(face, 60, "M", 0, 1.5).bitmap
    assert narrow.shape[1] < normal.shape[1] < wide.shape[1]
    assert abs(wide.shape[1] / normal.shape[1] - 1.5) < 0.1 and abs(narrow.shape[1] / normal.shape[1] - 0.75) < 0.1
    assert max(abs(g.shape[0] - normal.shape[0]) for g in (narrow, wide)) <= 2


def test_dot_matrix_glyph_matches_its_table_and_is_deterministic():
    source = DotMatrixSource(bitmap="6x12", missing_dots=(0, 0), jitter=(0, 0), smear=(0, 0), ink_spread=(0, 0))
    style = sample_dot_style(source, np.random.default_rng(1))
    a = dot_glyph("8", 35, style, np.random.default_rng(5))
    b = dot_glyph("8", 35, style, np.random.default_rng(5))
    assert np.array_equal(a.bitmap, b.bitmap)
    table = load_table("6x12")
    rows = table.dots["8"][:, 0]
    pitch = 35 / table.cap_rows
    assert abs(a.bitmap.shape[0] - (rows.max() - rows.min() + 1) * pitch) < pitch  # spans its dot rows
    import cv2

    separate = dot_glyph("8", 35, dict(style, dot_diameter=0.6), np.random.default_rng(5)).bitmap
    count, _labels = cv2.connectedComponents((separate > 64).astype(np.uint8))
    assert count - 1 == len(table.dots["8"]), "one ink blob per dot of the table"


@pytest.mark.parametrize("bitmap", ["5x8", "6x12", "7x13", "9x15"])
def test_a_footless_1_keeps_its_flag_and_stem_and_drops_the_foot(bitmap):
    import cv2

    plain = DotMatrixSource(bitmap=bitmap, missing_dots=(0, 0), jitter=(0, 0), smear=(0, 0), ink_spread=(0, 0),
                            dot_diameter=(0.6, 0.6))
    footless = plain.model_copy(update={"footless_1": 1.0})
    style = sample_dot_style(footless, np.random.default_rng(0))
    assert style["footless_1"] and not sample_dot_style(plain, np.random.default_rng(0))["footless_1"]
    table = load_table(bitmap)
    dots = table.dots["1"]
    bottom = dots[:, 0] == dots[:, 0].max()
    assert bottom.sum() > 1, "the table's 1 has a foot"
    with_foot = dot_glyph("1", 40, dict(style, footless_1=False), np.random.default_rng(5)).bitmap
    without = dot_glyph("1", 40, style, np.random.default_rng(5)).bitmap
    count, _labels = cv2.connectedComponents((without > 64).astype(np.uint8))
    assert count - 1 == len(dots) - bottom.sum() + 1, "every dot but the foot's outer ones"
    assert without.shape[0] == with_foot.shape[0] and without.shape[1] < with_foot.shape[1]
    # the bottom row of ink is one dot wide: the stem
    last = (without[-max(2, without.shape[0] // 20):] > 64).any(axis=0)
    assert last.sum() < 40 / table.cap_rows * 1.2
    for other in "7I":  # other characters are drawn as before
        assert np.array_equal(dot_glyph(other, 40, style, np.random.default_rng(5)).bitmap,
                              dot_glyph(other, 40, dict(style, footless_1=False), np.random.default_rng(5)).bitmap)


@pytest.mark.parametrize("bitmap", ["5x8", "6x12", "7x13", "9x15"])
def test_a_1s_flag_can_stand_apart_from_its_stem_or_go(bitmap):
    import cv2

    # dots a little wider than their pitch touch their neighbours, so a gap in the ink is a missing column
    source = DotMatrixSource(bitmap=bitmap, missing_dots=(0, 0), jitter=(0, 0), smear=(0, 0), ink_spread=(0, 0),
                             dot_diameter=(1.1, 1.1))
    style = sample_dot_style(source, np.random.default_rng(0))
    assert style["flag_1"] == "table"
    table = load_table(bitmap)
    pitch = 40 / table.cap_rows

    def glyph(form, **changes):
        return dot_glyph("1", 40, dict(style, flag_1=form, **changes), np.random.default_rng(5))

    def ink_columns(g):  # above the foot, from the first to the last column with ink: False where one is empty
        ink = g.bitmap[: -int(pitch * 1.6)] > 64
        columns = np.flatnonzero(ink.any(axis=0))
        return ink[:, columns[0]: columns[-1] + 1].any(axis=0)

    drawn, detached, bare = glyph("table"), glyph("detached"), glyph("none")
    assert ink_columns(drawn).all(), "the table's flag touches the stem"
    gap = np.flatnonzero(~ink_columns(detached))
    assert len(gap) >= pitch * 0.5, "a column of space between the detached flag and the stem"
    assert detached.bitmap.shape[1] == pytest.approx(drawn.bitmap.shape[1] + pitch, abs=2)
    assert detached.left == pytest.approx(drawn.left - pitch, abs=1)
    # with small dots the detached 1 still has every dot of the table's, each its own blob
    small = glyph("detached", dot_diameter=0.6)
    count, _ = cv2.connectedComponents((small.bitmap > 64).astype(np.uint8))
    assert count - 1 == len(table.dots["1"])
    # diagonal: two flag dots running down-left from the stem's top, one pitch apart each way
    diagonal = glyph("diagonal", dot_diameter=0.6)
    _, _, _, centres = cv2.connectedComponentsWithStats((diagonal.bitmap > 64).astype(np.uint8))
    top = centres[1:][centres[1:, 1] < centres[1:, 1].min() + 2.5 * pitch]  # the dots of the top three rows
    stem_x, stem_top = top[:, 0].max(), top[:, 1].min()
    flag = sorted((stem_x - x, y - stem_top) for x, y in top if x < stem_x - pitch / 2)
    assert len(flag) == 2
    assert flag[0] == (pytest.approx(pitch, abs=1.5), pytest.approx(pitch, abs=1.5))
    assert flag[1] == (pytest.approx(2 * pitch, abs=1.5), pytest.approx(2 * pitch, abs=1.5))
    # none: above the foot only the stem is left, one dot wide
    assert ink_columns(bare).all() and len(ink_columns(bare)) <= pitch * 1.1 + 2
    assert bare.bitmap.shape[0] == drawn.bitmap.shape[0]
    # every form keeps the cell's advance, and other characters are drawn as the table draws them
    assert drawn.advance == detached.advance == bare.advance
    for other in "7I4":
        assert np.array_equal(dot_glyph(other, 40, dict(style, flag_1="detached"), np.random.default_rng(5)).bitmap,
                              dot_glyph(other, 40, style, np.random.default_rng(5)).bitmap)


@pytest.mark.parametrize("bitmap", ["5x8", "6x12", "7x13", "9x15"])
def test_a_coders_stop_and_colon_are_one_dot_column_wide_or_one_dot_per_point(bitmap):
    import cv2

    source = DotMatrixSource(bitmap=bitmap, missing_dots=(0, 0), jitter=(0, 0), smear=(0, 0), ink_spread=(0, 0),
                             dot_diameter=(0.6, 0.6))
    style = sample_dot_style(source, np.random.default_rng(0))
    assert "punctuation" not in style, "the default form takes no draw and leaves the style as it was"
    pitch = 40 / load_table(bitmap).cap_rows

    def dots(char, form):  # centres of the drawn dots (x right, y down from the baseline), one per blob
        glyph = dot_glyph(char, 40, dict(style, punctuation=form), np.random.default_rng(5))
        count, _, _, centres = cv2.connectedComponentsWithStats((glyph.bitmap > 64).astype(np.uint8))
        return centres[1:] + [glyph.left, glyph.top], glyph

    for char, points in ((".", 1), (":", 2)):
        table, table_glyph = dots(char, "table")
        narrow, narrow_glyph = dots(char, "narrow")
        single, single_glyph = dots(char, "single")
        assert np.ptp(narrow[:, 0]) < 1 and np.ptp(single[:, 0]) < 1, "one column of dots"
        assert np.ptp(table[:, 0]) >= pitch - 1, "the tables draw two or three columns"
        assert len(single) == points
        # narrow: at most two dots per point, within the table's rows (no tail like a comma's), in a column
        # the table draws
        assert points <= len(narrow) <= 2 * points
        assert table[:, 1].min() - 1 <= narrow[:, 1].min() and narrow[:, 1].max() <= table[:, 1].max() + 1
        assert table[:, 0].min() - 1 <= narrow[0, 0] <= table[:, 0].max() + 1
        # every dot lies within the table's ink, and a full stop keeps a dot in the table's lowest point
        assert single[:, 1].max() <= table[:, 1].max() + 1 and single[:, 1].max() >= table[:, 1].max() - pitch - 1
        assert table_glyph.advance == narrow_glyph.advance == single_glyph.advance
    # a colon's single dots stay apart by at least three pitches: it never becomes a short stem
    colon, _ = dots(":", "single")
    assert np.ptp(colon[:, 1]) >= 3 * pitch - 1
    for other in "1A-/":
        assert np.array_equal(dot_glyph(other, 40, dict(style, punctuation="single"), np.random.default_rng(5)).bitmap,
                              dot_glyph(other, 40, style, np.random.default_rng(5)).bitmap)


@pytest.mark.parametrize("field, forms", [("flag_1", ("table", "detached", "none")),
                                          ("punctuation", ("table", "narrow", "single"))])
def test_glyph_forms_are_drawn_per_block_by_weight_and_the_default_draws_nothing(field, forms):
    source = DotMatrixSource(bitmap="6x12", **{field: {form: 1 for form in forms}})
    rng = np.random.default_rng(0)
    drawn = [sample_dot_style(source, rng)[field] for _ in range(300)]
    assert set(drawn) == set(forms)
    assert all(60 < drawn.count(form) < 140 for form in forms)
    # the default form takes no draw from the stream, so recipes without the field keep their pages
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    sample_dot_style(DotMatrixSource(bitmap="6x12"), a)
    sample_dot_style(DotMatrixSource(bitmap="6x12", **{field: {"table": 1}}), b)
    assert a.random() == b.random()
    with pytest.raises(ValueError, match="positive weight"):
        DotMatrixSource(bitmap="6x12", **{field: {forms[1]: 0}})


def test_dot_dropout_never_erases_a_character():
    source = DotMatrixSource(bitmap="5x8", missing_dots=(0.5, 0.5))
    rng = np.random.default_rng(0)
    for _ in range(50):
        glyph = dot_glyph(".", 20, sample_dot_style(source, rng), rng)
        assert glyph.bitmap.size and glyph.bitmap.max() > 0


def test_axis_tags_set_the_axes_they_name():
    """Recipes give axis tags (ROND, wght); Pillow names axes otherwise (Roundness, Weight). Each tag must reach
    its own axis: round and square Doto differ, and so do two weights."""
    import numpy as np
    from PIL import Image, ImageDraw

    from synthtext_industrial.core.assets import bundled_dir
    from synthtext_industrial.stages.fonts import FontFace, load_font

    path = str(next(bundled_dir("fonts").glob("doto/*.ttf")))

    def drawn(**axes):
        font = load_font(FontFace("doto", path, tuple(sorted(axes.items())), "", ()), 40)
        image = Image.new("L", (160, 50))
        ImageDraw.Draw(image).text((0, 0), "8B0", font=font, fill=255)
        return np.asarray(image, dtype=np.int32)

    square, round_ = drawn(ROND=0.0, wght=900.0), drawn(ROND=100.0, wght=900.0)
    light = drawn(ROND=100.0, wght=400.0)
    assert np.abs(square - round_).sum() > 0.05 * square.sum()
    assert light.sum() < 0.8 * round_.sum()  # lighter weight, less ink
