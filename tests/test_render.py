"""render_sample: API shape, determinism, and the exactness rule on every bundled recipe."""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from synthtext_industrial import GT_SCHEMA, load_recipe, recipe_from_dict, render_sample
from synthtext_industrial.exactness import check_sample

from .conftest import BUNDLED_RECIPES, REPO

SAMPLES_PER_RECIPE = 250

STRESS = {
    "canvas": {"width": 640, "height": 480},
    "text": {
        "fields": {"lot": {"pattern": "{A:2}{9:2}-{9:3}"}},
        "blocks": [{"lines": ["LOT {lot}", "{X:4} {9:3}"]}, {"lines": ["{[A-Z0-9./:-]:3-9}"]}],
    },
    "fonts": [
        {"category": "dot-matrix"}, {"category": "segment", "missing_glyphs": "skip"}, {"category": "stencil"},
        {"category": "engraving", "missing_glyphs": "skip"}, {"font": "ocr-a"}, {"font": "bebas-neue"},
        {"bitmap": "6x12", "smear": [0, 0.6], "missing_dots": [0, 0.2], "jitter": [0, 0.15], "ink_spread": [0, 0.3]},
        {"bitmap": "5x8", "roundness": [0, 1]},
    ],
    "typography": {"height_px": [12, 60], "char_gap": [-0.15, 0.4], "aspect": [0.5, 1.8], "stroke_px": [0, 2]},
    "layout": {"blocks": [1, 3], "rotation": [-180, 180], "perspective": [0, 0.08]},
    "marking": [{"kind": "inkjet"}, {"kind": "thermal"}, {"kind": "laser"}, {"kind": "emboss"},
                {"kind": "stamp"}, {"kind": "engrave"}],
}


def _assert_exact(recipe, indices, seed=0):
    failures = []
    for i in indices:
        sample = render_sample(recipe, seed, i, keep_char_masks=True)
        failures += [f"sample {i}: {p}" for p in check_sample(sample)]
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("path", BUNDLED_RECIPES, ids=lambda p: p.stem)
def test_bundled_recipe_ground_truth_is_exact(path):
    _assert_exact(load_recipe(path), range(SAMPLES_PER_RECIPE))


def test_stress_recipe_ground_truth_is_exact():
    """Rotations up to 180°, strong tilt, negative gaps, heavy dot smear/dropout, every marking style."""
    _assert_exact(recipe_from_dict(STRESS), range(400), seed=7)


def test_sample_api_and_ground_truth_dict():
    recipe = recipe_from_dict(STRESS)
    sample = render_sample(recipe, 3, 11)
    assert sample.image.dtype == np.uint8 and sample.image.shape == (480, 640)
    assert sample.mask.dtype == np.uint8 and sample.mask.shape == (480, 640)
    assert sample.mask.max() > 0 and sample.lines
    gt = sample.to_dict()
    assert gt["schema"] == GT_SCHEMA and (gt["width"], gt["height"], gt["seed"], gt["index"]) == (640, 480, 3, 11)
    for line, d in zip(sample.lines, gt["lines"]):
        assert d["text"] == line.text and len(d["quad"]) == 4
        assert [c["char"] for c in d["chars"]] == [c for c in line.text if c != " "]
        for f in d["fields"]:
            assert 0 <= f["start"] < f["end"] <= len(line.text)


def test_named_fields_span_their_values():
    recipe = recipe_from_dict({"text": {"fields": {"lot": {"pattern": "{9:5}"}},
                                        "blocks": [{"lines": ["LOT {lot} OK"]}]}})
    sample = render_sample(recipe, 0, 0)
    for line in sample.lines:
        (field,) = line.fields
        assert field.name == "lot"
        assert line.text[field.start:field.end].isdigit() and field.end - field.start == 5


def test_same_seed_and_index_give_identical_samples():
    recipe = recipe_from_dict(STRESS)
    a, b = render_sample(recipe, 5, 42), render_sample(recipe, 5, 42)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert a.to_dict() == b.to_dict()


def test_order_of_rendering_does_not_matter():
    recipe = recipe_from_dict(STRESS)
    first = render_sample(recipe, 1, 9)
    for i in range(5):
        render_sample(recipe, 1, i)
    again = render_sample(recipe, 1, 9)
    assert np.array_equal(first.image, again.image)


def test_different_indices_and_seeds_differ():
    recipe = recipe_from_dict(STRESS)
    a = render_sample(recipe, 0, 0)
    assert not np.array_equal(a.image, render_sample(recipe, 0, 1).image)
    assert not np.array_equal(a.image, render_sample(recipe, 1, 0).image)


def test_identical_in_another_process(tmp_path):
    """A fresh interpreter renders the same bytes: nothing depends on process state."""
    recipe_path = REPO / "recipes" / "default.yaml"
    code = (
        "import sys, hashlib; from synthtext_industrial import load_recipe, render_sample;"
        f"s = render_sample(load_recipe({str(recipe_path)!r}), 3, 17);"
        "sys.stdout.write(hashlib.sha256(s.image.tobytes() + s.mask.tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    import hashlib
    s = render_sample(load_recipe(recipe_path), 3, 17)
    assert out == hashlib.sha256(s.image.tobytes() + s.mask.tobytes()).hexdigest()


def test_recipe_pickles_for_worker_processes():
    recipe = load_recipe(REPO / "recipes" / "default.yaml")
    clone = pickle.loads(pickle.dumps(recipe))
    assert np.array_equal(render_sample(recipe, 0, 4).image, render_sample(clone, 0, 4).image)


def test_mask_is_footprint_before_effects():
    """Effects change the image, never the mask: noise and blur must not leak into the ground truth."""
    base = dict(STRESS, effects={"noise": {"p": 1.0}})
    quiet = dict(STRESS, effects={"noise": {"p": 0.0}})
    noisy_sample = render_sample(recipe_from_dict(base), 0, 3)
    quiet_sample = render_sample(recipe_from_dict(quiet), 0, 3)
    assert np.array_equal(noisy_sample.mask, quiet_sample.mask)
    assert not np.array_equal(noisy_sample.image, quiet_sample.image)


def test_text_stays_inside_canvas_and_blocks_do_not_overlap():
    recipe = recipe_from_dict(dict(STRESS, layout={"blocks": [3, 3], "rotation": [-30, 30], "margin_px": 8,
                                                   "block_gap_px": 10}))
    for i in range(20):
        sample = render_sample(recipe, 0, i)
        ys, xs = np.nonzero(sample.mask)
        assert xs.min() >= 8 - 1 and ys.min() >= 8 - 1
        assert xs.max() < 640 - 8 + 1 and ys.max() < 480 - 8 + 1
        boxes = []
        for block in sample.records["blocks"]:
            start, end = block["lines"]
            quads = np.concatenate([sample.lines[k].quad for k in range(start, end)])
            boxes.append((*quads.min(axis=0), *quads.max(axis=0)))
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                A, B = boxes[a], boxes[b]
                separated = A[2] <= B[0] or B[2] <= A[0] or A[3] <= B[1] or B[3] <= A[1]
                assert separated, f"sample {i}: blocks {a} and {b} overlap"


HARSH_EFFECTS = {  # reflections and off-focus areas on every page, strong enough to wipe characters out
    "highlights": {"p": 1.0, "count": [2, 4], "intensity": [180, 255], "size": [0.1, 0.3]},
    "partial_blur": {"p": 1.0, "sigma": [4, 8], "area": [0.2, 0.5]},
    "noise": {"p": 1.0},
}


def test_effects_that_drown_a_character_are_drawn_again():
    """effects.min_legibility: a page whose effects leave a character under the floor gets new effects; a page
    whose first draw is fine is exactly what it is without the floor, and the floor never touches the text."""
    floor = 3.0
    with_floor = recipe_from_dict(dict(STRESS, effects={**HARSH_EFFECTS, "min_legibility": floor}))
    without = recipe_from_dict(dict(STRESS, effects={**HARSH_EFFECTS, "min_legibility": 0}))
    redrawn = 0
    for index in range(16):
        checked, plain = render_sample(with_floor, 0, index), render_sample(without, 0, index)
        draws = checked.records["effect_draws"]
        scores = [block["legibility_after_effects"] for block in checked.records["blocks"]]
        assert len(scores) == len(checked.records["blocks"])
        assert min(scores, default=floor) >= floor or draws == 3, (index, scores, draws)
        if draws == 1:
            assert np.array_equal(checked.image, plain.image), index
        elif min(scores) >= floor:  # a later draw met the floor where the first one did not
            assert not np.array_equal(checked.image, plain.image), index
        assert np.array_equal(checked.mask, plain.mask)
        assert [line.quad.tolist() for line in checked.lines] == [line.quad.tolist() for line in plain.lines]
        assert plain.records["effect_draws"] == 1
        assert all("legibility_after_effects" not in block for block in plain.records["blocks"])
        redrawn += draws > 1
    assert redrawn >= 2, "harsh effects should need new draws on some pages"


def test_threads_render_the_same_samples_as_one_thread():
    """Dask workers render in several threads of one process: no sample may see another's random draws."""
    from concurrent.futures import ThreadPoolExecutor

    recipe = recipe_from_dict(dict(STRESS, effects=HARSH_EFFECTS))
    alone = [render_sample(recipe, 4, i).image for i in range(12)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda i: render_sample(recipe, 4, i).image, range(12)))
    assert [i for i in range(12) if not np.array_equal(alone[i], threaded[i])] == []


def _weights_in_order(order: str) -> dict:
    """One recipe whose every weight mapping is written in sorted (`order="sorted"`) or reversed key order."""
    def ordered(mapping: dict) -> dict:
        return dict(sorted(mapping.items(), reverse=order == "reversed"))

    return {
        "canvas": {"width": 320, "height": 240},
        "text": {"blocks": [{"lines": ["{X:5}"]}]},
        "typography": {"height_px": [14, 22]},
        "layout": {"blocks": [1, 2], "alignment": ordered({"left": 1, "center": 2, "right": 3}),
                   "regions": ordered({"top": {"y": [0, 0.5], "weight": 1}, "bottom": {"y": [0.5, 1], "weight": 2},
                                       "all": {"weight": 1}})},
        "background": {"photos": [], "materials": ordered({"glass": 1, "cardboard": 2, "rubber": 1,
                                                           "brushed_metal": 3})},
        "effects": {"partial_blur": {"p": 1, "kinds": ordered({"motion": 3, "gaussian": 1, "defocus": 2})}},
    }


def test_the_same_weights_in_any_key_order_render_identical_pages(tmp_path):
    """Mappings are drawn over sorted keys: a recipe re-serialised (yaml.safe_dump sorts keys) renders the same."""
    import yaml

    from synthtext_industrial import load_recipe

    (tmp_path / "sorted.yaml").write_text(yaml.safe_dump(_weights_in_order("sorted"), sort_keys=False))
    (tmp_path / "reversed.yaml").write_text(yaml.safe_dump(_weights_in_order("reversed"), sort_keys=False))
    a, b = load_recipe(tmp_path / "sorted.yaml"), load_recipe(tmp_path / "reversed.yaml")
    assert list(a.background.materials) != list(b.background.materials)  # the recipes really differ in order
    seen = {"material": set(), "blur": set(), "alignment": set(), "region": set()}
    for i in range(24):
        x, y = render_sample(a, 5, i), render_sample(b, 5, i)
        assert x.image.tobytes() == y.image.tobytes(), f"page {i} differs"
        assert x.to_dict() == y.to_dict()
        seen["material"].add(x.records["background"]["name"])
        seen["blur"].add(x.records["effects"]["PartialBlur"]["kind"])
        seen["alignment"] |= {block["alignment"] for block in x.records["blocks"]}
        seen["region"] |= {block["region"] for block in x.records["blocks"]}
    assert all(len(values) >= 2 for values in seen.values()), seen  # every mapping was really drawn from
