"""TRDG (TextRecognitionDataGenerator) line crops, timed in-process: GeneratorFromStrings, each crop PNG-encoded in memory.

--config plain:        white background, no skew, blur or distortion.
--config noise:        gaussian-noise background, random skew (+-5 deg), random blur (<=1), random distortion.
--config image:        like noise but on TRDG's own bundled photo backgrounds (trdg/images).
Text height is TRDG's default 32 px; font is DejaVu Sans Mono from this repository.
"""
import os

import cv2
import numpy as np

from peer_common import FONT, Tally, code_lines, parse_args, png_bytes, seed_everything, version

args = parse_args(__doc__)
seed_everything(args.seed)

import trdg  # noqa: E402  (prints a notice about handwriting support on import)
from trdg.generators import GeneratorFromStrings  # noqa: E402

EFFECTS = dict(skewing_angle=5, random_skew=True, blur=1, random_blur=True, distorsion_type=3)
CONFIGS = {
    "plain": dict(background_type=1),
    "noise": dict(background_type=0, **EFFECTS),
    "image": dict(background_type=3, image_dir=os.path.join(os.path.dirname(trdg.__file__), "images"), **EFFECTS),
}
lines = code_lines(args.n, args.seed)
generator = GeneratorFromStrings(lines, count=args.n, fonts=[FONT], size=32, **CONFIGS[args.config])

tally = Tally()
for image, text in generator:
    if image is None:  # TRDG drops a crop whose text is too close in brightness to its background
        tally.failed += 1
        continue
    pixels = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    tally.add(png_bytes(pixels), pixels.shape[0], pixels.shape[1], text)
tally.report(args.samples, pages=0, version=version("trdg"))
