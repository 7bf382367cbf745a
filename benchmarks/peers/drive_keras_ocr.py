"""keras-ocr's scene generator (`data_generation.get_image_generator`) at 1600x1200, timed per page, each page
JPEG q95-encoded in memory (as our pages are), fonts and backgrounds from this repository instead of its downloads.

keras_ocr/__init__.py imports the TensorFlow detector and recognizer, which page generation does not use, so the
package is registered without running __init__ and only data_generation (and its `tools`) are imported.
Settings follow keras-ocr's own data-generation example: its sentence text generator, font size 60-120,
margin 50, rotation X/Y +-0.05 deg and Z +-15 deg. Outputs counted: pages; `lines` is the text lines drawn.
keras-ocr leaves a page without text when its background has no uniform area big enough; such pages are cheaper,
so `text_page_seconds` also times the pages that did get text (JPEG encode included).
"""
import importlib.util
import os
import string
import sys
import time
import types

os.environ.setdefault("MPLBACKEND", "Agg")
import cv2  # noqa: E402

from peer_common import FONT, REPO, Tally, background_files, parse_args, seed_everything, version  # noqa: E402

args = parse_args(__doc__)
seed_everything(args.seed)
package = types.ModuleType("keras_ocr")
package.__path__ = list(importlib.util.find_spec("keras_ocr").submodule_search_locations)
sys.modules["keras_ocr"] = package
from keras_ocr import data_generation  # noqa: E402

ALPHABET = string.digits + string.ascii_letters + "!?. "
fonts = [FONT, os.path.join(REPO, "fonts", "liberation", "LiberationSans-Bold.ttf")]
pages = data_generation.get_image_generator(
    height=1200, width=1600, font_groups={ALPHABET: fonts},
    text_generator=data_generation.get_text_generator(alphabet=ALPHABET),
    font_size=(60, 120), backgrounds=background_files(), margin=50,
    rotationX=(-0.05, 0.05), rotationY=(-0.05, 0.05), rotationZ=(-15, 15))

next(pages)  # warm-up, untimed
tally = Tally(keep=2)
lines = empty_pages = 0
text_page_seconds = 0.0
for _ in range(args.n):
    started = time.perf_counter()
    image, page_lines = next(pages)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    lines += len(page_lines)
    empty_pages += not page_lines
    text_page_seconds += (time.perf_counter() - started) if page_lines else 0.0
    text = " | ".join("".join(char for _, char in line) for line in page_lines)
    tally.add(jpeg.tobytes(), image.shape[0], image.shape[1], text, ext="jpg")
tally.report(args.samples, pages=tally.count, lines=lines, empty_pages=empty_pages,
             text_page_seconds=text_page_seconds, version=version("keras-ocr"))
