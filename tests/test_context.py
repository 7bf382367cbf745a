"""Label context (labels, barcodes, matrix codes, clutter text): drawn on the page, never labelled, never in the
mask, and never within `context.keep_out` line heights of a labelled line, so no line crop shows it."""
import cv2
import numpy as np
import pytest

from synthtext_industrial import load_recipe, recipe_from_dict, render_sample
from synthtext_industrial.exactness import check_sample
from synthtext_industrial.stages.context import ContextConfig, ean13

QUIET = {"min_legibility": 0, **{name: {"p": 0} for name in
                                 ("highlights", "partial_blur", "noise", "tone", "vignetting", "jpeg")}}
ALL = {"label": 1.0, "barcodes": [1, 3], "matrix_codes": [1, 2], "clutter": [4, 12], "label_margin": [0.2, 3],
       "label_rotation": [-6, 6]}
CROWDED = {"barcodes": [3, 5], "matrix_codes": [2, 3], "clutter": [25, 35], "clutter_height_px": [8, 40]}


def _with(name: str, context: dict | None, quiet: bool = False, text_scale: float = 1.0, **canvas):
    spec = load_recipe(name).model_dump(mode="json")
    spec["context"] = context or {}
    spec["canvas"].update(canvas)
    # on a half-size page, text_scale 0.5 keeps the recipe's proportions (its long date-code prefixes fit)
    spec["typography"]["height_px"] = [h * text_scale for h in spec["typography"]["height_px"]]
    if quiet:
        spec["effects"] = QUIET
        spec["colour"]["min_legibility"] = 0
    return recipe_from_dict(spec)


def _off_and_on(name: str, context: dict, pages: int, text_scale: float = 1.0):
    """(index, page without context, the same page with it) on quiet 800x600 pages of a bundled recipe."""
    off = _with(name, None, quiet=True, text_scale=text_scale, width=800, height=600)
    on = _with(name, context, quiet=True, text_scale=text_scale, width=800, height=600)
    for index in range(pages):
        yield index, render_sample(off, 0, index), render_sample(on, 0, index)


def _grown(sample, margin: float) -> np.ndarray:
    """Every labelled line's quad grown by `margin` line heights along its own sides, rasterised (pixel centres
    inside). Written out here apart from the stage's own keep-out, so the test checks it."""
    zone = np.zeros(sample.mask.shape, np.uint8)
    for line in sample.lines:
        q = np.asarray(line.quad, np.float64)
        tl, tr, br, bl = q
        height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
        along = (tr - tl + br - bl) / np.linalg.norm(tr - tl + br - bl) * margin * height
        down = (bl - tl + br - tr) / np.linalg.norm(bl - tl + br - tr) * margin * height
        grown = np.array([tl - along - down, tr + along - down, br + along + down, bl - along + down])
        cv2.fillConvexPoly(zone, np.round(grown * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
    return zone > 0


def _under_labels(sample) -> np.ndarray:
    """Where the labels (and their shadows, a few px down and right) lie."""
    zone = np.zeros(sample.mask.shape, np.uint8)
    for block in sample.records["blocks"]:
        if block.get("label"):
            outline = np.asarray(block["label"]["outline"], np.float64)
            cv2.fillPoly(zone, [np.round(outline * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return cv2.dilate(zone, np.ones((15, 15), np.uint8)) > 0


@pytest.mark.parametrize("name, pages", [("thermal-label", 80), ("inkjet-dotmatrix", 80)])
def test_ground_truth_stays_exact_with_every_kind_of_context(name, pages):
    recipe = _with(name, ALL, width=960, height=720)
    problems, kinds = [], set()
    for index in range(pages):
        sample = render_sample(recipe, 0, index, keep_char_masks=True)
        kinds |= {item["kind"] for item in sample.records["context"]["items"]}
        kinds |= {"label" for block in sample.records["blocks"] if block.get("label")}
        problems += [f"sample {index}: {p}" for p in check_sample(sample)]
    assert not problems, "\n".join(problems[:10])
    assert kinds == {"label", "ean13", "bars", "matrix", "text"}


def test_barcodes_and_clutter_never_come_within_the_keep_out_of_a_labelled_line():
    """The same page without and with a crowd of context: the pages differ only outside every line quad grown
    by keep_out (1 line height). The mask and the ground truth do not change at all."""
    drawn = 0
    for index, a, b in _off_and_on("thermal-label", CROWDED, 30):
        changed = a.image != b.image
        drawn += int(changed.sum())
        assert not (changed & _grown(a, 1.0)).any(), f"sample {index}: context inside a line's keep-out zone"
        assert np.array_equal(a.mask, b.mask) and a.to_dict() == b.to_dict()
    assert drawn > 30 * 20000, "the crowd is drawn"


def test_the_keep_out_check_fails_when_clutter_is_let_near_the_lines():
    """The check above can fail: with keep_out 0 the crowd comes within a line height of some line."""
    hits = 0
    for _index, a, b in _off_and_on("thermal-label", {**CROWDED, "keep_out": 0.0}, 15):
        hits += int(((a.image != b.image) & _grown(a, 1.0)).any())
        assert not ((a.image != b.image) & _grown(a, 0.0)).any(), "never over the line itself"
    assert hits >= 3


def test_labels_change_the_page_only_under_themselves_near_the_lines():
    labels = 0
    for index, a, b in _off_and_on("inkjet-dotmatrix", {**CROWDED, "label": 1.0}, 20, text_scale=0.5):
        labels += sum(1 for block in b.records["blocks"] if block.get("label"))
        stray = (a.image != b.image) & _grown(a, 1.0) & ~_under_labels(b)
        assert not stray.any(), f"sample {index}: context near a line outside its label"
        assert np.array_equal(a.mask, b.mask) and a.to_dict() == b.to_dict()
    assert labels >= 15


def test_a_label_lies_under_its_whole_block_and_lighter_than_a_dark_surface():
    recipe = _with("thermal-label", {"label": 1.0, "label_level": [235, 235], "label_texture": [0, 0],
                                     "label_rotation": [-8, 8]}, quiet=True, width=800, height=600)
    recipe = recipe.model_copy(update={"background": recipe.background.model_copy(
        update={"materials": {"plastic_black": 1}})})
    for index in range(10):
        sample = render_sample(recipe, 0, index)
        zone = _under_labels(sample)
        for block in sample.records["blocks"]:
            if block["label"] and block["label"]["margin_scale"] > 0:
                first, last = block["lines"]
                for line in sample.lines[first:last]:
                    corners = np.asarray(line.quad)
                    outline = np.asarray(block["label"]["outline"], np.float32)
                    assert all(cv2.pointPolygonTest(outline, (float(x), float(y)), False) >= 0 for x, y in corners)
        paper = zone & (sample.mask == 0)
        assert (sample.image[paper] > 150).mean() > 0.8, "the label is light paper on a dark surface"


def test_context_off_draws_nothing_so_other_pages_stay_as_they_were():
    base = load_recipe("default")
    asked = base.model_copy(update={"context": ContextConfig(label_level=(10, 20), clutter_height_px=(50, 60),
                                                             keep_out=3.0)})  # every chance and count is 0
    for index in range(4):
        a, b = render_sample(base, 0, index), render_sample(asked, 0, index)
        assert np.array_equal(a.image, b.image) and a.records == b.records
        assert "context" not in a.records and all("label" not in block for block in a.records["blocks"])


def test_context_is_deterministic_and_recorded():
    recipe = _with("thermal-label", ALL, width=800, height=600)
    a, b = render_sample(recipe, 5, 3), render_sample(recipe, 5, 3)
    assert np.array_equal(a.image, b.image) and a.records == b.records
    assert not np.array_equal(a.image, render_sample(recipe, 5, 4).image)
    record = a.records["context"]
    assert record["asked"]["clutter"] >= 4 and len(record["items"]) + record["left_out"] == sum(
        record["asked"].values())
    for item in record["items"]:
        assert item["kind"] in {"ean13", "bars", "matrix", "text"} and len(item["quad"]) == 4


def test_ean13_has_its_guard_bars_and_a_valid_check_digit():
    rng = np.random.default_rng(0)
    for _ in range(20):
        digits, bars, guard = ean13(rng)
        assert len(digits) == 13 and len(bars) == 95 == len(guard)
        weights = [1, 3] * 6 + [1]
        assert sum(int(d) * w for d, w in zip(digits, weights)) % 10 == 0
        assert "".join(map(str, bars[:3].astype(int))) == "101" == "".join(map(str, bars[-3:].astype(int)))
        assert "".join(map(str, bars[45:50].astype(int))) == "01010"
        assert (bars[guard > 0] == 1).all(), "the long guard bars are bars"
        for start in list(range(3, 45, 7)) + list(range(50, 92, 7)):
            code = bars[start:start + 7]
            assert code[0] + (code[1:] > code[:-1]).sum() == 2, "every digit is two bars and two spaces"
