"""Contact sheets: samples with their line and character boxes drawn, to check a recipe by eye."""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from .core.groundtruth import Sample

LINE_COLOUR = (40, 220, 40)  # BGR
CHAR_COLOUR = (0, 140, 255)
TEXT_COLOUR = (255, 255, 255)


def draw_boxes(sample: Sample, scale: float = 1.0, chars: bool = True) -> np.ndarray:
    """The sample's image in colour with its quads drawn, resized by `scale`."""
    image = sample.image
    if scale != 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px

    def poly(quad, colour, thickness):
        pts = np.round(np.asarray(quad) * scale * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], True, colour, thickness, cv2.LINE_AA, shift)

    for n, line in enumerate(sample.lines):
        if chars:
            for ch in line.chars:
                poly(ch.quad, CHAR_COLOUR, 1)
        poly(line.quad, LINE_COLOUR, 1 if scale < 0.5 else 2)
        x, y = np.asarray(line.quad[0]) * scale
        cv2.putText(canvas, str(n), (int(x), max(int(y) - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    LINE_COLOUR, 1, cv2.LINE_AA)
    return canvas


def contact_sheet(samples: Sequence[Sample], tile_width: int = 480, columns: int | None = None) -> np.ndarray:
    """A grid of samples with boxes, each captioned with its index and line texts."""
    if not samples:
        raise ValueError("no samples to show")
    columns = columns or math.ceil(math.sqrt(len(samples)))
    rows = math.ceil(len(samples) / columns)
    scale = tile_width / samples[0].width
    tile_h = int(round(samples[0].height * scale))
    caption_h = 16 * (1 + max(len(s.lines) for s in samples))
    sheet = np.full((rows * (tile_h + caption_h), columns * tile_width, 3), 32, np.uint8)
    for k, sample in enumerate(samples):
        r, c = divmod(k, columns)
        x, y = c * tile_width, r * (tile_h + caption_h)
        tile = draw_boxes(sample, scale)
        sheet[y:y + tile.shape[0], x:x + tile.shape[1]] = tile[:, :tile_width]
        captions = [f"#{sample.index}"] + [f"{n}: {line.text}" for n, line in enumerate(sample.lines)]
        for j, caption in enumerate(captions):
            cv2.putText(sheet, caption.encode("ascii", "replace").decode(), (x + 6, y + tile_h + 13 + 16 * j),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.42, TEXT_COLOUR, 1, cv2.LINE_AA)
        cv2.rectangle(sheet, (x, y), (x + tile_width - 1, y + tile_h + caption_h - 1), (80, 80, 80), 1)
    return sheet
