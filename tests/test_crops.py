"""Line crops: upright whatever the rotation, the line's ink inside, the sizes the recognisers expect."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import synthtext_industrial as sti
from synthtext_industrial.core import geometry
from synthtext_industrial.crops import line_crop, line_crops


def _textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(60, 200, (height, width), dtype=np.uint8), (0, 0), 1.0)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _page_with_letters() -> tuple[np.ndarray, np.ndarray]:
    """A 400x400 page with an asymmetric 'F7' mark near the centre and the quad around it."""
    page = np.full((400, 400), 210, np.uint8)
    cv2.putText(page, "F7", (160, 222), cv2.FONT_HERSHEY_SIMPLEX, 1.6, 30, 4, cv2.LINE_AA)
    quad = geometry.rect_quad(155, 180, 245, 230)
    return page, quad


def _rotate_page(page: np.ndarray, quad: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate page and quad about the page centre with one matrix; the quad keeps its reading-order corners."""
    h, w = page.shape
    matrix = geometry.translate(w / 2, h / 2) @ geometry.rotate(degrees) @ geometry.translate(-w / 2, -h / 2)
    rotated = cv2.warpAffine(page, geometry.to_cv(matrix)[:2], (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    return rotated, geometry.apply(matrix, quad)


def test_axis_aligned_quad_is_the_plain_slice_with_margin():
    image = _textured(120, 200)
    quad = geometry.rect_quad(40, 30, 140, 50)  # 100 x 20 px, margin 0.15 -> 3 px
    crop = line_crop(image, quad)
    expected = image[27:53, 37:143]
    assert crop.shape == expected.shape
    assert np.abs(crop.astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(line_crop(image, quad, margin=0), image[30:50, 40:140])


@pytest.mark.parametrize("degrees", [90, 180, -90, -37, 143])
def test_rotated_text_comes_out_upright(degrees):
    page, quad = _page_with_letters()
    upright = line_crop(page, quad)
    rotated, rotated_quad = _rotate_page(page, quad, degrees)
    crop = line_crop(rotated, rotated_quad)
    assert crop.shape == upright.shape
    assert _ncc(crop, upright) > 0.9
    # The check has teeth: the same crop turned by 180 degrees does not match.
    assert _ncc(crop[::-1, ::-1], upright) < 0.5


def test_perspective_quad_is_rectified():
    page, quad = _page_with_letters()
    corner_shift = np.array([[30, -20], [-25, 10], [15, 25], [-10, -15]], dtype=np.float64)
    matrix = geometry.camera_tilt(400, 400, corner_shift)
    tilted = cv2.warpPerspective(page, geometry.to_cv(matrix), (400, 400), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
    tilted_quad = geometry.apply(matrix, quad)
    upright = line_crop(page, quad, height=40)
    crop = line_crop(tilted, tilted_quad, height=40)
    # The tilt changes the quad's side lengths, so the aspect ratio differs a little; compare at one size.
    assert _ncc(cv2.resize(crop, upright.shape[::-1], interpolation=cv2.INTER_LINEAR), upright) > 0.9


def _line_ink(sample, line) -> np.ndarray:
    """The sample's mark mask restricted to one line's quad (grown by 1 px, as the exactness rule allows)."""
    region = np.zeros_like(sample.mask)
    centre = line.quad.mean(axis=0)
    grown = line.quad + 1.5 * np.sign(line.quad - centre)
    cv2.fillConvexPoly(region, np.round(grown * 16 - 8).astype(np.int32), 255, cv2.LINE_8, shift=4)
    return np.where(region > 0, sample.mask, 0).astype(np.uint8)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_crop_of_rendered_sample_holds_its_line_ink(index):
    recipe = sti.recipe_from_dict({"canvas": {"width": 320, "height": 240},
                                   "typography": {"height_px": [14, 19]}})  # the default text fits at 19 px
    sample = sti.render_sample(recipe, seed=3, index=index)
    crops = line_crops(sample)
    assert [text for _, text in crops] == [line.text for line in sample.lines]
    for (crop, _), line in zip(crops, sample.lines):
        ink = _line_ink(sample, line)
        ink_crop = line_crop(ink, line.quad).astype(np.float64)
        assert ink_crop.shape == crop.shape
        pad = round(0.15 * crop.shape[0] / 1.3)
        centre = ink_crop[pad - 1:crop.shape[0] - pad + 1, pad - 1:crop.shape[1] - pad + 1]
        assert ink_crop.sum() > 0.8 * ink.sum()  # roughly 1:1 scale, nothing lost off the crop
        assert centre.sum() > 0.98 * ink_crop.sum()
        # The image crop shows the marks: inked pixels differ from the unmarked ones.
        inked = ink_crop > 128
        assert inked.any() and (~inked).any()
        assert abs(crop[inked].mean() - crop[~inked].mean()) > 5


def test_dtype_and_size_rules():
    image = _textured(200, 300)
    quad = geometry.rect_quad(20, 40, 220, 80)  # 200 x 40
    crop = line_crop(image, quad, margin=0.25)  # 10 px per side
    assert crop.dtype == np.uint8 and crop.ndim == 2
    assert crop.shape == (60, 220)
    small = line_crop(image, geometry.rect_quad(20, 40, 50, 44))  # 4 px tall text -> at least 8 px
    assert small.shape[0] == 8 and small.dtype == np.uint8


@pytest.mark.parametrize("height", [32, 64, 200])
def test_height_option_keeps_the_aspect_ratio(height):
    image = _textured(200, 300)
    quad = geometry.rect_quad(20, 40, 220, 80)  # with margin 0.15: 212 x 52
    crop = line_crop(image, quad, height=height)
    assert crop.shape == (height, round(212 * height / 52))
    native = line_crop(image, quad)
    resized = cv2.resize(native, crop.shape[::-1], interpolation=cv2.INTER_AREA)
    assert _ncc(crop, resized) > 0.95


def test_shrinking_averages_thin_strokes_instead_of_aliasing():
    stripes = np.zeros((400, 800), np.uint8)
    stripes[:, ::2] = 255  # 1-px stripes: a shrunk crop should come out mid-grey, not striped
    crop = line_crop(stripes, geometry.rect_quad(100, 100, 700, 300), margin=0, height=20)
    assert crop.shape == (20, 60)
    assert 100 < crop.min() and crop.max() < 155


def test_deterministic_and_input_untouched():
    page, quad = _page_with_letters()
    rotated, rotated_quad = _rotate_page(page, quad, -37)
    before = rotated.copy()
    first = line_crop(rotated, rotated_quad, height=32)
    assert np.array_equal(first, line_crop(rotated, rotated_quad, height=32))
    assert np.array_equal(rotated, before)


@pytest.mark.parametrize("quad", [
    geometry.rect_quad(-30, -10, 60, 20),  # partly outside the top-left corner
    geometry.rect_quad(250, 180, 330, 215),  # partly outside the bottom-right corner
    geometry.rect_quad(400, 300, 480, 330),  # entirely outside
])
def test_crops_at_and_beyond_the_border_repeat_edge_pixels(quad):
    image = _textured(200, 300)
    crop = line_crop(image, quad)
    assert crop.dtype == np.uint8 and crop.shape[0] >= 8 and crop.shape[1] > 0
    assert image.min() <= crop.min() and crop.max() <= image.max()


def test_bad_inputs_are_refused():
    image = _textured(50, 50)
    with pytest.raises(ValueError, match="2-D uint8"):
        line_crop(image.astype(np.float32), geometry.rect_quad(0, 0, 10, 10))
    with pytest.raises(ValueError, match="degenerate"):
        line_crop(image, np.zeros((4, 2)))
