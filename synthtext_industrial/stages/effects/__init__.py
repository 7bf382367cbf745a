"""Post-effects on the finished page, as albumentations transforms (usable in your own `A.Compose`).

- `functional.py`: each effect as a pure function of an image and drawn parameters;
- `transforms.py`: the albumentations transforms (`Highlight`, `PartialBlur`, `FrameBlur`, `CameraNoise`,
  `Vignetting`)
  that draw those parameters, with their bounds;
- `config.py`: the recipe's `effects` section;
- `pipeline.py`: the recipe's pipeline (`build_effects`), run on a page with a random stream (`apply_effects`,
  `legible_effects`).

A new effect: its function in functional.py, its transform in transforms.py, its recipe section in config.py,
and its place in `build_effects`.
"""
from .config import EffectsConfig
from .functional import apply_camera_noise, apply_frame_blur, apply_highlights, apply_partial_blur, apply_vignetting
from .pipeline import apply_effects, build_effects
from .transforms import CameraNoise, FrameBlur, Highlight, PartialBlur, Vignetting

__all__ = ["CameraNoise", "EffectsConfig", "FrameBlur", "Highlight", "PartialBlur", "Vignetting", "apply_camera_noise",
           "apply_effects", "apply_frame_blur", "apply_highlights", "apply_partial_blur", "apply_vignetting",
           "build_effects"]
