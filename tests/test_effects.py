"""Tests for the post-effects: each effect does what it should, runs deterministically from the rng,
works inside a user's albumentations pipeline, validates its arguments and records what it applied."""
import json

import albumentations as A
import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from synthtext_industrial.stages.effects import (CameraNoise, EffectsConfig, Highlight, PartialBlur, Vignetting,
                                                 apply_effects, build_effects)

EXAMPLE_YAML = """
effects:
  highlights:   {p: 0.3, count: [1, 3], intensity: [60, 200], size: [0.05, 0.35], streak_p: 0.3}
  partial_blur: {p: 0.3, kinds: {gaussian: 1, defocus: 1, motion: 1}, sigma: [1, 4], area: [0.1, 0.5]}
  noise:        {p: 0.8, gaussian_sigma: [2, 8], shot: [0, 0.5], salt_pepper: [0, 0.002]}
  tone:         {p: 0.5, brightness: [-0.15, 0.15], contrast: [-0.2, 0.2], gamma: [0.8, 1.25]}
  vignetting:   {p: 0.3, strength: [0.1, 0.4]}
  jpeg:         {p: 0.2, quality: [40, 90]}
"""

ALL_ON = {
    "highlights": {"p": 1},
    "partial_blur": {"p": 1},
    "noise": {"p": 1},
    "tone": {"p": 1},
    "vignetting": {"p": 1},
    "jpeg": {"p": 1},
}
ALL_OFF = {name: {"p": 0} for name in ALL_ON}


def textured(height=240, width=320, seed=0) -> np.ndarray:
    """A mid-gray image with strong pixel texture (so blur and noise are measurable)."""
    return np.random.default_rng(seed).integers(60, 180, (height, width), dtype=np.uint8)


def run(transform, image, seed=0):
    """Apply one transform (forced) with a fixed seed; return the output and the sampled params."""
    transform.set_random_seed(seed)
    out = transform(image=image, force_apply=True)["image"]
    return out, transform.params


# ---------------------------------------------------------------------------------------------
# Each effect changes the image as intended
# ---------------------------------------------------------------------------------------------


def test_highlight_brightens_a_local_area_and_can_clip_to_white():
    image = np.full((300, 400), 100, np.uint8)
    out, params = run(Highlight(count_range=(1, 1), intensity_range=(200, 200), size_range=(0.2, 0.2),
                                streak_p=0, p=1), image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.all(out >= image)  # light is only added
    assert out.max() == 255  # the core clips to white
    spec = params["highlights"][0]
    assert spec["kind"] == "blob"
    assert out[int(spec["cy"]), int(np.clip(spec["cx"], 0, 399))] > 200
    changed = np.mean(out != image)
    assert 0 < changed < 0.5  # a local area, not the whole image


def test_highlight_streak_is_long():
    image = np.full((300, 400), 80, np.uint8)
    out, params = run(Highlight(count_range=(1, 1), intensity_range=(150, 150), streak_p=1, p=1), image)
    spec = params["highlights"][0]
    assert spec["kind"] == "streak" and spec["length"] > 5 * spec["width"]
    assert np.all(out >= image) and np.any(out > image)


def test_partial_blur_lowers_local_variance_only_inside_its_area():
    image = textured()
    for kind in ("gaussian", "defocus", "motion"):
        out, params = run(PartialBlur(kind_weights={kind: 1}, sigma_range=(3, 3), area_range=(0.3, 0.3), p=1),
                          image, seed=3)
        assert params["kind"] == kind
        height, width = image.shape
        ys, xs = np.mgrid[0:height, 0:width]
        angle = np.radians(params["angle"])
        u = (xs - params["cx"]) * np.cos(angle) + (ys - params["cy"]) * np.sin(angle)
        v = (ys - params["cy"]) * np.cos(angle) - (xs - params["cx"]) * np.sin(angle)
        radius = np.sqrt((u / params["semi_major"]) ** 2 + (v / params["semi_minor"]) ** 2)
        inside = radius < 1 - params["feather"] / 2
        outside = radius > 1 + params["feather"] / 2 + 0.01
        assert inside.sum() > 1000, "the sampled area should overlap the image"
        np.testing.assert_array_equal(out[outside], image[outside])
        assert out[inside].astype(float).std() < 0.6 * image[inside].astype(float).std()


def test_camera_noise_std_matches_sigma():
    image = np.full((300, 300), 128, np.uint8)
    out, _ = run(CameraNoise(gaussian_sigma_range=(5, 5), shot_gain_range=(0, 0), salt_pepper_range=(0, 0), p=1),
                 image)
    diff = out.astype(float) - image
    assert abs(diff.std() - 5) < 0.2 and abs(diff.mean()) < 0.1


def test_shot_noise_grows_with_intensity():
    dark, bright = np.full((200, 200), 20, np.uint8), np.full((200, 200), 200, np.uint8)
    noise = CameraNoise(gaussian_sigma_range=(0, 0), shot_gain_range=(0.5, 0.5), salt_pepper_range=(0, 0), p=1)
    dark_std = (run(noise, dark)[0].astype(float) - dark).std()
    bright_std = (run(noise, bright)[0].astype(float) - bright).std()
    assert abs(dark_std - np.sqrt(0.5 * 20)) < 0.3  # variance = gain * intensity
    assert abs(bright_std - np.sqrt(0.5 * 200)) < 0.5


def test_salt_and_pepper_amount():
    image = np.full((200, 250), 128, np.uint8)
    out, _ = run(CameraNoise(gaussian_sigma_range=(0, 0), shot_gain_range=(0, 0), salt_pepper_range=(0.01, 0.01),
                             p=1), image)
    salt, pepper = np.mean(out == 255), np.mean(out == 0)
    assert 0.004 < salt < 0.0055 and 0.004 < pepper < 0.0055  # 1% in all, minus repeated positions
    assert np.all((out == 0) | (out == 255) | (out == 128))


def test_vignetting_darkens_corners_more_than_centre():
    image = np.full((240, 320), 200, np.uint8)
    out, params = run(Vignetting(strength_range=(0.3, 0.3), p=1), image)
    assert out[120, 160] >= 199
    for corner in (out[0, 0], out[0, -1], out[-1, 0], out[-1, -1]):
        assert abs(int(corner) - 200 * 0.7) <= 2
    assert out[120, 0] < out[120, 80] < out[120, 160]


def test_effects_do_not_modify_the_input_and_accept_channels():
    image = textured(120, 160)
    before = image.copy()
    transforms = [Highlight(p=1), PartialBlur(p=1), CameraNoise(p=1), Vignetting(p=1)]
    for transform in transforms:
        run(transform, image)
        np.testing.assert_array_equal(image, before)
        for shaped in (image[..., None], np.repeat(image[..., None], 3, axis=2)):
            out, _ = run(transform, shaped)
            assert out.shape == shaped.shape and out.dtype == np.uint8


def test_tiny_images_and_areas_off_the_edge_work():
    image = textured(12, 16)
    for seed in range(10):
        out, _ = apply_effects(build_effects(EffectsConfig.model_validate(ALL_ON)), image,
                               np.random.default_rng(seed))
        assert out.shape == image.shape


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------


def test_same_rng_state_gives_identical_bytes_whatever_ran_before():
    cfg = EffectsConfig.model_validate(ALL_ON)
    image = textured()
    pipeline = build_effects(cfg)
    first, record = apply_effects(pipeline, image, np.random.default_rng(42))
    for seed in range(3):  # use the pipeline for other images in between
        apply_effects(pipeline, textured(seed=seed + 1), np.random.default_rng(seed))
    again, record_again = apply_effects(pipeline, image, np.random.default_rng(42))
    fresh, record_fresh = apply_effects(build_effects(cfg), image, np.random.default_rng(42))
    assert first.tobytes() == again.tobytes() == fresh.tobytes()
    assert record == record_again == record_fresh


def test_different_rng_states_give_different_images():
    pipeline = build_effects(EffectsConfig.model_validate(ALL_ON))
    image = textured()
    a, _ = apply_effects(pipeline, image, np.random.default_rng(1))
    b, _ = apply_effects(pipeline, image, np.random.default_rng(2))
    assert a.tobytes() != b.tobytes()


def test_apply_effects_consumes_the_rng():
    pipeline = build_effects(EffectsConfig())
    rng = np.random.default_rng(7)
    apply_effects(pipeline, textured(60, 80), rng)
    assert rng.integers(2**32) != np.random.default_rng(7).integers(2**32)


def test_effects_are_drawn_independently():
    # Compose.set_random_seed gives every transform the same seed; apply_effects must not correlate them.
    cfg = EffectsConfig.model_validate({**ALL_OFF, "highlights": {"p": 0.5}, "vignetting": {"p": 0.5}})
    pipeline = build_effects(cfg)
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(40):
        _, record = apply_effects(pipeline, textured(30, 40), rng)
        outcomes.add(("Highlight" in record, "Vignetting" in record))
    assert outcomes == {(False, False), (False, True), (True, False), (True, True)}


# ---------------------------------------------------------------------------------------------
# In a user's albumentations pipeline
# ---------------------------------------------------------------------------------------------


def test_user_compose_keeps_bboxes_and_keypoints():
    image = np.repeat(textured(200, 300)[..., None], 3, axis=2)
    bboxes = [(10, 20, 110, 80), (150, 100, 290, 190)]
    keypoints = [(15.5, 25.0), (200.0, 150.0), (299.0, 199.0)]
    compose = A.Compose(
        [A.NoOp(), Highlight(p=1), PartialBlur(p=1), Vignetting(p=1), CameraNoise(p=1),
         A.RandomBrightnessContrast(p=1), A.ImageCompression(quality_range=(50, 60), p=1)],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
        keypoint_params=A.KeypointParams(format="xy"),
        seed=5,
    )
    result = compose(image=image, bboxes=bboxes, labels=["lot", "exp"], keypoints=keypoints)
    assert result["image"].shape == image.shape
    assert result["image"].tobytes() != image.tobytes()
    np.testing.assert_allclose(np.asarray(result["bboxes"]), np.asarray(bboxes))
    np.testing.assert_allclose(np.asarray(result["keypoints"]), np.asarray(keypoints))
    assert list(result["labels"]) == ["lot", "exp"]


def test_user_compose_seed_is_reproducible():
    image = textured(100, 120)

    def make():
        return A.Compose([Highlight(p=1), PartialBlur(p=1), CameraNoise(p=1), Vignetting(p=1)], seed=11)

    assert make()(image=image)["image"].tobytes() == make()(image=image)["image"].tobytes()


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: Highlight(count_range=(3, 1)),
    lambda: Highlight(intensity_range=(-5, 100)),
    lambda: Highlight(size_range=(0, 0.2)),
    lambda: Highlight(streak_p=1.5),
    lambda: PartialBlur(kind_weights={"box": 1.0}),
    lambda: PartialBlur(kind_weights={"gaussian": 0.0}),
    lambda: PartialBlur(sigma_range=(0, 2)),
    lambda: PartialBlur(area_range=(0.2, 1.5)),
    lambda: CameraNoise(gaussian_sigma_range=(-1, 2)),
    lambda: CameraNoise(salt_pepper_range=(0.1, 0.05)),
    lambda: Vignetting(strength_range=(0.5, 1.5)),
    lambda: Vignetting(p=2),
])
def test_init_schema_rejects_bad_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_non_uint8_images_are_rejected():
    with pytest.raises(TypeError, match="uint8"):
        run(Vignetting(p=1), np.zeros((10, 10), np.float32))


def test_config_defaults_example_and_errors():
    assert EffectsConfig.model_validate({}) == EffectsConfig()
    cfg = EffectsConfig.model_validate(yaml.safe_load(EXAMPLE_YAML)["effects"])
    assert cfg.noise.p == 0.8 and cfg.partial_blur.kinds == {"gaussian": 1, "defocus": 1, "motion": 1}
    assert cfg.jpeg.quality == (40, 90)
    assert EffectsConfig.model_validate({"noise": {"gaussian_sigma": 3}}).noise.gaussian_sigma == (3, 3)
    for bad in (
        {"noise": {"p": 1.5}},
        {"noise": {"gaussian_sigma": [8, 2]}},
        {"partial_blur": {"kinds": {"box": 1}}},
        {"partial_blur": {"kinds": {"gaussian": 0}}},
        {"jpeg": {"quality": [0, 90]}},
        {"vignetting": {"strength": [0.1, 1.5]}},
        {"highlight": {}},
    ):
        with pytest.raises(ValidationError):
            EffectsConfig.model_validate(bad)


# ---------------------------------------------------------------------------------------------
# Record of applied effects
# ---------------------------------------------------------------------------------------------


def test_record_lists_applied_effects_with_parameters():
    image = textured()
    out, record = apply_effects(build_effects(EffectsConfig.model_validate(ALL_ON)), image,
                                np.random.default_rng(0))
    assert list(record) == ["Highlight", "PartialBlur", "Vignetting", "CameraNoise",
                            "RandomBrightnessContrast", "RandomGamma", "ImageCompression"]
    assert record["PartialBlur"]["kind"] in ("gaussian", "defocus", "motion")
    assert 40 <= record["ImageCompression"]["quality"] <= 90
    assert "shape" not in record["CameraNoise"] and "seed" in record["CameraNoise"]
    json.dumps(record)  # plain values, ready for the provenance file
    assert out.tobytes() != image.tobytes()


def test_record_is_empty_when_everything_is_disabled():
    image = textured()
    out, record = apply_effects(build_effects(EffectsConfig.model_validate(ALL_OFF)), image,
                                np.random.default_rng(0))
    assert record == {}
    np.testing.assert_array_equal(out, image)


def test_recorded_parameters_replay_the_effect():
    image = textured()
    out, record = apply_effects(build_effects(EffectsConfig.model_validate({**ALL_OFF, "noise": {"p": 1}})),
                                image, np.random.default_rng(3))
    replay = CameraNoise(p=1).apply(image, **record["CameraNoise"])
    np.testing.assert_array_equal(out, replay)


def test_camera_noise_kept_for_the_next_image_is_the_noise_it_would_draw():
    """The renderer puts the text-free page through the same noise right after the page; the kept unit noise
    must give exactly what drawing it again gives, for any image, and never leak into another seed."""
    from concurrent.futures import ThreadPoolExecutor

    from synthtext_industrial.stages.effects import apply_camera_noise

    rng = np.random.default_rng(0)
    page, plain = (rng.integers(0, 256, (130, 170), dtype=np.uint8) for _ in range(2))

    def fresh(image, seed):  # in a new thread: nothing kept from earlier draws
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(apply_camera_noise, image, 4.0, 0.3, 0.01, seed).result()

    first = apply_camera_noise(page, 4.0, 0.3, 0.01, 7)
    again = apply_camera_noise(plain, 4.0, 0.3, 0.01, 7)  # reuses the kept noise
    other = apply_camera_noise(plain, 4.0, 0.3, 0.01, 8)
    assert np.array_equal(first, fresh(page, 7))
    assert np.array_equal(again, fresh(plain, 7))
    assert np.array_equal(other, fresh(plain, 8)) and not np.array_equal(other, again)
    more_salt = apply_camera_noise(page, 4.0, 0.3, 0.02, 8)  # same seed, more salt-and-pepper pixels
    with ThreadPoolExecutor(1) as pool:
        assert np.array_equal(more_salt, pool.submit(apply_camera_noise, page, 4.0, 0.3, 0.02, 8).result())


# ---------------------------------------------------------------------------------------------
# Weighted choices do not depend on the order a mapping was written in
# ---------------------------------------------------------------------------------------------


def blur_kinds(transform, seeds=range(40)) -> list[str]:
    return [run(transform, textured(60, 80), seed)[1]["kind"] for seed in seeds]


def test_partial_blur_kind_survives_an_albumentations_yaml_round_trip(tmp_path):
    """A.save writes YAML with sorted keys; the reloaded pipeline must blur as the original did."""
    weights = {"motion": 5.0, "gaussian": 1.0, "defocus": 3.0}  # deliberately not in sorted order
    original = A.Compose([PartialBlur(kind_weights=weights, p=1)], seed=3)
    A.save(original, str(tmp_path / "pipeline.yaml"), data_format="yaml")
    loaded = A.load(str(tmp_path / "pipeline.yaml"), data_format="yaml")
    saved = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())
    assert list(saved["transform"]["transforms"][0]["kind_weights"]) == ["defocus", "gaussian", "motion"]
    assert list(loaded.transforms[0].kind_weights) != list(weights)  # the round trip did reorder them
    kinds = blur_kinds(original.transforms[0])
    assert kinds == blur_kinds(loaded.transforms[0]) and len(set(kinds)) == 3
    image = textured(120, 160)
    for seed in range(5):
        original.set_random_seed(seed)
        loaded.set_random_seed(seed)
        assert original(image=image)["image"].tobytes() == loaded(image=image)["image"].tobytes()


def test_partial_blur_kind_does_not_depend_on_key_order():
    orders = [{"gaussian": 1.0, "defocus": 2.0, "motion": 4.0}, {"motion": 4.0, "defocus": 2.0, "gaussian": 1.0},
              {"defocus": 2.0, "motion": 4.0, "gaussian": 1.0}]
    drawn = [blur_kinds(PartialBlur(kind_weights=w, p=1)) for w in orders]
    assert drawn[0] == drawn[1] == drawn[2]
    # and the weights still count: motion (4/7) is drawn most, gaussian (1/7) least
    many = blur_kinds(PartialBlur(kind_weights=orders[1], p=1), range(700))
    assert many.count("motion") > many.count("defocus") > many.count("gaussian") > 0
