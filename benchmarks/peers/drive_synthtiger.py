"""SynthTIGER line crops through `synthtiger.generator` (its own per-sample seeding and retry), with the minimal
default-like template in synthtiger_template.py; each crop PNG-encoded in memory.
--config default: with the default config's visibility check; --config no-check: without it.

The resources the template needs (corpus, fonts with their charset files, gray colour map) are written to a
scratch folder first, untimed: fonts and backgrounds come from this repository, the corpus from peer_common.
"""
import os
import shutil
import tempfile

import cv2
import numpy as np
from fontTools.ttLib import TTFont

from peer_common import REPO, Tally, background_files, code_lines, parse_args, png_bytes, seed_everything, version

FONTS = ["dejavu/DejaVuSansMono.ttf", "dejavu/DejaVuSansMono-Bold.ttf", "liberation/LiberationMono-Regular.ttf",
         "b612/B612Mono-Regular.otf", "ocr-b/OCRB.otf", "dinish/DINish-Regular.otf",
         "barlow/BarlowCondensed-SemiBold.otf", "liberation/LiberationSans-Bold.ttf"]


def write_resources(root, seed):
    """Corpus, fonts (linked, each with the <name>.txt charset file SynthTIGER's BaseFont reads) and a gray map."""
    corpus = os.path.join(root, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(code_lines(2000, seed)) + "\n")
    font_dir = os.path.join(root, "font")
    os.makedirs(font_dir)
    for rel in FONTS:
        source = os.path.join(REPO, "fonts", rel)
        link = os.path.join(font_dir, os.path.basename(rel))
        os.symlink(source, link)
        with TTFont(source) as font:
            chars = "".join(sorted(chr(c) for c in font.getBestCmap() if c >= 32))
        with open(os.path.splitext(link)[0] + ".txt", "w", encoding="utf-8") as f:
            f.write(chars)
    colormap = os.path.join(root, "gray_colormap.txt")  # "<mean> <std>" per cluster, k clusters per line
    with open(colormap, "w", encoding="utf-8") as f:
        for dark in range(10, 100, 20):
            for light in range(150, 250, 25):
                f.write(f"{dark} 6 {light} 8\n")
                f.write(f"{dark} 6 {(dark + light) // 2} 8 {light} 8\n")
    return corpus, font_dir, colormap


args = parse_args(__doc__)
seed_everything(args.seed)
import synthtiger  # noqa: E402
from synthtiger_template import make_config  # noqa: E402

scratch = tempfile.mkdtemp(prefix="synthtiger-resources-")
corpus, font_dir, colormap = write_resources(scratch, args.seed)
fonts = sorted(os.path.join(font_dir, f) for f in os.listdir(font_dir) if f.endswith((".ttf", ".otf")))
config = make_config(corpus, fonts, colormap, background_files(), visibility_check=args.config != "no-check")

template = os.path.join(os.path.dirname(os.path.abspath(__file__)), "synthtiger_template.py")
outputs = synthtiger.generator(template, "CodeLine", config, count=args.n + 1, worker=0, seed=args.seed, retry=True)
tally = None
for _, data in outputs:
    if tally is None:  # the first sample loads the template and warms caches: untimed
        tally = Tally()
        continue
    pixels = cv2.cvtColor(np.clip(data["image"][..., :3], 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    tally.add(png_bytes(pixels), pixels.shape[0], pixels.shape[1], data["label"])
tally.report(args.samples, pages=0, version=version("synthtiger"))
shutil.rmtree(scratch)
