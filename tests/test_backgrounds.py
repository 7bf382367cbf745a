"""Backgrounds: procedural materials, photo crops (incl. atlas regions), recipe validation, tone jitter."""
from __future__ import annotations

import math
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from synthtext_industrial.core.assets import bundled_dir
from synthtext_industrial.stages.backgrounds import (ATLAS_FLAT_REGIONS, MATERIALS, PHOTO_EXTENSIONS,
                                                     BackgroundConfig, apply_tone, load_gray_photo,
                                                     sample_background)

MATERIAL_NAMES = [
    "brushed_metal", "anodized_aluminium", "blasted_metal", "painted_metal", "plastic_black", "plastic_white",
    "plastic_textured", "rubber", "cardboard", "kraft_paper", "label_paper", "glass",
]


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Colour and gray photos of different sizes and formats."""
    folder = tmp_path / "photos"
    folder.mkdir()
    gen = np.random.default_rng(0)
    colour = gen.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    gray = cv2.GaussianBlur(gen.integers(0, 256, (200, 150), dtype=np.uint8), (5, 5), 0)
    cv2.imwrite(str(folder / "a_colour.png"), colour)
    cv2.imwrite(str(folder / "b_gray.jpg"), gray)
    cv2.imwrite(str(folder / "c_colour.JPEG"), colour[:, ::-1])
    (folder / "notes.txt").write_text("not an image")
    return folder


def photos_only(folder: Path, **fields) -> BackgroundConfig:
    return BackgroundConfig(photos=[{"folder": str(folder)}], materials={}, **fields)


# --------------------------------------------------------------------------- materials


def test_all_materials_are_registered():
    assert sorted(MATERIALS) == sorted(MATERIAL_NAMES)


@pytest.mark.parametrize("name", MATERIAL_NAMES)
@pytest.mark.parametrize("size", [(64, 48), (37, 23)])
def test_material_is_gray_uint8_textured_and_deterministic(name, size):
    width, height = size
    make = MATERIALS[name]
    image = make(rng(1), width, height)
    assert image.dtype == np.uint8 and image.shape == (height, width)
    assert image.std() > 0.2, "a material must not be a flat constant"
    assert np.array_equal(image, make(rng(1), width, height))
    assert not np.array_equal(image, make(rng(2), width, height))


@pytest.mark.parametrize("name", MATERIAL_NAMES)
def test_material_does_not_consume_cv2_global_state(name):
    """Output depends on the rng only, not on what else used cv2's RNG before."""
    cv2.setRNGSeed(1)
    first = MATERIALS[name](rng(3), 40, 30)
    cv2.setRNGSeed(999)
    cv2.randu(np.empty((10, 10), np.uint8), 0, 255)
    assert np.array_equal(first, MATERIALS[name](rng(3), 40, 30))


def test_material_tones_are_plausible():
    """Dark materials come out dark and white ones bright, whatever the seed."""
    for seed in range(5):
        assert MATERIALS["plastic_black"](rng(seed), 80, 60).mean() < 80
        assert MATERIALS["rubber"](rng(seed), 80, 60).mean() < 80
        assert MATERIALS["label_paper"](rng(seed), 80, 60).mean() > 170
        assert MATERIALS["plastic_white"](rng(seed), 80, 60).mean() > 160


# --------------------------------------------------------------------------- photos


def test_photo_crops_from_a_user_folder(photo_folder):
    cfg = photos_only(photo_folder)
    assert [Path(f).name for f in cfg.photos[0].files] == ["a_colour.png", "b_gray.jpg", "c_colour.JPEG"]
    seen = set()
    for seed in range(30):
        image, record = sample_background(cfg, rng(seed), 64, 48)
        assert image.dtype == np.uint8 and image.shape == (48, 64)
        assert record["kind"] == "photo" and record["name"] == str(photo_folder)
        photo = load_gray_photo(record["file"])
        x, y, w, h = record["crop"]
        assert 0 <= x and 0 <= y and x + w <= photo.shape[1] and y + h <= photo.shape[0]
        assert math.isclose(w / h, 64 / 48, rel_tol=0.05)
        seen.add(Path(record["file"]).name)
    assert seen == {"a_colour.png", "b_gray.jpg", "c_colour.JPEG"}


def test_photo_sampling_is_deterministic(photo_folder):
    cfg = photos_only(photo_folder)
    a, record_a = sample_background(cfg, rng(5), 50, 70)
    b, record_b = sample_background(cfg, rng(5), 50, 70)
    assert np.array_equal(a, b) and record_a == record_b
    assert a.shape == (70, 50)
    assert any(not np.array_equal(a, sample_background(cfg, rng(s), 50, 70)[0]) for s in range(6, 9))


def test_crop_side_is_a_fraction_of_the_photos_shorter_side(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    cv2.imwrite(str(folder / "wide.png"), np.zeros((100, 300), np.uint8))
    landscape = photos_only(folder, crop_scale=[0.5, 0.5])
    assert sample_background(landscape, rng(0), 80, 40)[1]["crop"][2:] == [100, 50]
    assert sample_background(landscape, rng(0), 30, 60)[1]["crop"][2:] == [50, 100]  # portrait output
    x, y, w, h = sample_background(photos_only(folder, crop_scale=[1.0, 1.0]), rng(0), 60, 60)[1]["crop"]
    assert (y, w, h) == (0, 100, 100) and 0 <= x <= 200


def test_colour_photos_become_gray(tmp_path):
    folder = tmp_path / "red"
    folder.mkdir()
    cv2.imwrite(str(folder / "red.png"), np.full((40, 40, 3), (0, 0, 255), np.uint8))  # BGR red
    cfg = photos_only(folder, brightness=0, contrast=1, flip=False)
    image, _ = sample_background(cfg, rng(0), 32, 24)
    assert np.all(image == 76)  # 0.299 * 255


def test_photos_are_decoded_once_and_read_only(photo_folder):
    path = str(photo_folder / "b_gray.jpg")
    first = load_gray_photo(path)
    assert load_gray_photo(path) is first
    assert first.ndim == 2 and not first.flags.writeable


def test_enlarging_and_shrinking_and_flips(photo_folder):
    cfg = photos_only(photo_folder, crop_scale=[1.0, 1.0])
    big, _ = sample_background(cfg, rng(0), 400, 300)
    small, _ = sample_background(cfg, rng(0), 16, 12)
    assert big.shape == (300, 400) and small.shape == (12, 16)
    flips = {(r["hflip"], r["vflip"]) for r in (sample_background(cfg, rng(s), 16, 12)[1] for s in range(40))}
    assert flips == {(False, False), (True, False), (False, True), (True, True)}
    no_flip = photos_only(photo_folder, flip=False)
    assert all(not (r["hflip"] or r["vflip"])
               for r in (sample_background(no_flip, rng(s), 16, 12)[1] for s in range(20)))


def test_flip_is_a_mirror_of_the_same_crop(tmp_path):
    folder = tmp_path / "ramp"
    folder.mkdir()
    cv2.imwrite(str(folder / "ramp.png"), np.tile(np.arange(0, 250, 2, dtype=np.uint8), (100, 1)))
    cfg = photos_only(folder, brightness=0, contrast=1)
    for seed in range(20):
        image, record = sample_background(cfg, rng(seed), 40, 30)
        increasing = image[0, -1] > image[0, 0]
        assert increasing != record["hflip"]


@pytest.mark.parametrize("atlas", sorted(ATLAS_FLAT_REGIONS))
def test_atlas_crops_stay_in_flat_regions(tmp_path, atlas):
    source = bundled_dir("backgrounds") / atlas
    assert source.is_file(), "every atlas in the table ships with the tool"
    folder = tmp_path / "atlas"
    folder.mkdir()
    shutil.copy(source, folder / atlas)
    cfg = photos_only(folder, crop_scale=[0.05, 1.0])
    regions = ATLAS_FLAT_REGIONS[atlas]
    used = set()
    for seed in range(60):
        _, record = sample_background(cfg, rng(seed), 40, 30)
        photo_h, photo_w = load_gray_photo(record["file"]).shape
        x0, y0, x1, y1 = regions[record["region"]]
        x, y, w, h = record["crop"]
        assert x >= x0 * photo_w and y >= y0 * photo_h
        assert x + w <= x1 * photo_w and y + h <= y1 * photo_h
        used.add(record["region"])
    assert len(used) > 1


def test_atlas_regions_are_valid_rectangles():
    for regions in ATLAS_FLAT_REGIONS.values():
        for x0, y0, x1, y1 in regions:
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


def test_bundled_photos_are_listed_sorted():
    cfg = BackgroundConfig(materials={})
    files = cfg.photos[0].files
    assert len(files) >= 7 and list(files) == sorted(files)
    assert all(Path(f).suffix.lower() in PHOTO_EXTENSIONS for f in files)
    image, record = sample_background(cfg, rng(0), 80, 60)
    assert image.shape == (60, 80) and record["kind"] == "photo"


# --------------------------------------------------------------------------- recipe section


def test_default_section_mixes_bundled_photos_and_all_materials():
    cfg = BackgroundConfig.model_validate({})
    assert [p.folder for p in cfg.photos] == ["bundled"] and cfg.photos[0].weight == 1
    assert sorted(cfg.materials) == sorted(MATERIAL_NAMES)
    assert math.isclose(sum(cfg.materials.values()), 1.0)
    kinds = {sample_background(cfg, rng(s), 32, 24)[1]["kind"] for s in range(30)}
    assert kinds == {"photo", "material"}


def test_config_pickles_with_its_photo_list(photo_folder):
    cfg = BackgroundConfig(photos=[{"folder": str(photo_folder), "weight": 3}], materials={"cardboard": 1})
    clone = pickle.loads(pickle.dumps(cfg))
    assert clone == cfg and clone.photos[0].files == cfg.photos[0].files
    assert np.array_equal(sample_background(clone, rng(4), 30, 20)[0], sample_background(cfg, rng(4), 30, 20)[0])


def test_relative_folder_resolves_against_the_recipe(photo_folder):
    cfg = BackgroundConfig.model_validate({"photos": [{"folder": "photos"}], "materials": {}},
                                          context={"base_dir": str(photo_folder.parent)})
    assert Path(cfg.photos[0].files[0]).parent == photo_folder.resolve()


def test_missing_folder_is_an_error_naming_folder_and_extensions(tmp_path):
    with pytest.raises(ValidationError) as error:
        BackgroundConfig(photos=[{"folder": str(tmp_path / "nowhere")}])
    assert "nowhere" in str(error.value) and ".jpg" in str(error.value)


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no photos here")
    with pytest.raises(ValidationError) as error:
        BackgroundConfig(photos=[{"folder": str(tmp_path)}])
    message = str(error.value)
    assert str(tmp_path) in message and ".png" in message and ".tif" in message


def test_unknown_material_lists_allowed_names():
    with pytest.raises(ValidationError) as error:
        BackgroundConfig(materials={"marble": 1})
    assert "brushed_metal" in str(error.value) and "glass" in str(error.value)


@pytest.mark.parametrize("section", [
    {"photos": [], "materials": {}},
    {"photos": [{"folder": "bundled", "weight": 0}], "materials": {"glass": 0}},
])
def test_no_source_is_an_error(section):
    with pytest.raises(ValidationError, match="at least one photo folder or material"):
        BackgroundConfig.model_validate(section)


@pytest.mark.parametrize("field, value", [
    ("crop_scale", [0.9, 0.5]), ("crop_scale", [0.0, 1.0]), ("contrast", [-1, 1]), ("extra", 1),
])
def test_bad_fields_are_rejected(field, value):
    with pytest.raises(ValidationError):
        BackgroundConfig.model_validate({field: value})


def test_materials_only_recipe_draws_by_weight():
    cfg = BackgroundConfig(photos=[], materials={"cardboard": 1, "glass": 0})
    names = {sample_background(cfg, rng(s), 24, 16)[1]["name"] for s in range(10)}
    assert names == {"cardboard"}


# --------------------------------------------------------------------------- brightness / contrast


def test_brightness_shifts_the_mean():
    base = BackgroundConfig(photos=[], materials={"plastic_textured": 1}, brightness=0, contrast=1)
    brighter = base.model_copy(update={"brightness": (25.0, 25.0)})
    a, record_a = sample_background(base, rng(7), 64, 48)
    b, record_b = sample_background(brighter, rng(7), 64, 48)
    assert record_b["brightness"] == 25.0 and record_a["brightness"] == 0.0
    assert b.mean() - a.mean() == pytest.approx(25, abs=1.0)


def test_contrast_scales_deviations_about_the_mean():
    base = BackgroundConfig(photos=[], materials={"blasted_metal": 1}, brightness=0, contrast=1)
    stretched = base.model_copy(update={"contrast": (1.5, 1.5)})
    a, _ = sample_background(base, rng(8), 64, 48)
    b, _ = sample_background(stretched, rng(8), 64, 48)
    assert b.mean() == pytest.approx(a.mean(), abs=1.5)
    assert b.std() == pytest.approx(1.5 * a.std(), rel=0.05)


def test_apply_tone_clips_and_keeps_the_input():
    image = np.array([[0, 100, 200]], np.uint8)
    out = apply_tone(image, brightness=100, contrast=1.0)
    assert out.tolist() == [[100, 200, 255]] and image.tolist() == [[0, 100, 200]]
    flat = apply_tone(image, brightness=0, contrast=0.0)
    assert np.all(flat == 100)
