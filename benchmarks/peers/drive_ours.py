"""synthtext-industrial, timed like the peers: render_record(..., with_crops=True) over N pages, i.e. rendering the
full 1600x1200 page with its effects, JPEG q95-encoding it, cutting the upright line crops and PNG-encoding them.
Outputs counted: line crops; pages are reported too. Run with the project's own venv.
"""
import os
import struct
import sys

import cv2

from peer_common import REPO, Tally, parse_args

sys.path.insert(0, REPO)
import synthtext_industrial  # noqa: E402
from synthtext_industrial.generate.writer import render_record  # noqa: E402
from synthtext_industrial.recipe import load_recipe  # noqa: E402

cv2.setNumThreads(1)
args = parse_args(__doc__)
recipe = load_recipe(os.path.join(REPO, "recipes", f"{args.config}.yaml"))
render_record(recipe, args.seed, 1_000_000, with_crops=True)  # warm-up (fonts, photos, effect pipelines), untimed
tally = Tally()
page_sample = None
for index in range(args.n):
    record = render_record(recipe, args.seed, index, with_crops=True)
    page_sample = page_sample or record.image
    for crop in record.crops:
        png, text = (crop.image, crop.text) if hasattr(crop, "image") else crop  # Crop record or (png, text) pair
        width, height = struct.unpack(">II", png[16:24])  # from the PNG header
        tally.add(png, height, width, text)
tally.report(args.samples, pages=args.n, version=synthtext_industrial.__version__)
if args.samples:
    with open(os.path.join(args.samples, "page.jpg"), "wb") as f:
        f.write(page_sample)
