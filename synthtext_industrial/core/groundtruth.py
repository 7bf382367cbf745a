"""Ground truth of one rendered sample, as small typed records.

Coordinates are pixels with (0, 0) at the top-left corner of the top-left
pixel, so pixel (row r, column c) covers [c, c+1) x [r, r+1) and its centre is
(c + 0.5, r + 0.5). A quad is 4x2 float32, clockwise from the top-left corner
of the text as read (top-left, top-right, bottom-right, bottom-left).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GT_SCHEMA = "synthtext-industrial/gt/1"


class GroundTruthError(ValueError):
    """Ground truth that is not `synthtext-industrial/gt/1` JSON; the message says what is wrong."""


def _is_quad(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 4 and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    for v in p) for p in value)


def _check(data: Any) -> None:
    if not isinstance(data, dict):
        raise GroundTruthError(f"ground truth is not gt/1 JSON (a {type(data).__name__}, not an object)")
    if data.get("schema") != GT_SCHEMA:
        raise GroundTruthError(f"ground-truth schema {data.get('schema')!r}; this version reads {GT_SCHEMA}")
    for key in ("width", "height", "seed", "index"):
        if not isinstance(data.get(key), int) or isinstance(data.get(key), bool):
            raise GroundTruthError(f"ground truth is not gt/1 JSON ({key!r} is not a whole number)")
    if not isinstance(data.get("lines"), list):
        raise GroundTruthError("ground truth is not gt/1 JSON ('lines' is not a list)")
    for n, line in enumerate(data["lines"]):
        ok = isinstance(line, dict) and isinstance(line.get("text"), str) and _is_quad(line.get("quad")) \
            and isinstance(line.get("chars"), list) and isinstance(line.get("fields", []), list) \
            and all(isinstance(c, dict) and isinstance(c.get("char"), str) and _is_quad(c.get("quad"))
                    for c in line["chars"]) \
            and all(isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("start"), int)
                    and isinstance(f.get("end"), int) for f in line.get("fields", []))
        if not ok:
            raise GroundTruthError(f"ground truth is not gt/1 JSON (line {n} lacks text, quad, chars or fields of "
                                   f"the schema's form)")


def parse_ground_truth(raw: bytes | str | dict) -> dict[str, Any]:
    """The one reader of a page's ground truth (JSON bytes or text, or the parsed dict), checked against gt/1.

    Returns the plain JSON data (quads as lists, exactly as stored: readers that build arrays from it get the
    stored values); `Sample.from_dict` turns it into records. GroundTruthError says what is wrong.
    """
    if isinstance(raw, (bytes, bytearray, memoryview, str)):
        try:
            data = json.loads(bytes(raw) if isinstance(raw, memoryview) else raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GroundTruthError(f"ground truth is not gt/1 JSON ({exc})") from None
    else:
        data = raw
    _check(data)
    return data


def _quad_list(quad: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 3), round(float(y), 3)] for x, y in np.asarray(quad, dtype=np.float64)]


@dataclass(frozen=True)
class Char:
    char: str
    quad: np.ndarray  # 4x2 float32

    def to_dict(self) -> dict[str, Any]:
        return {"char": self.char, "quad": _quad_list(self.quad)}


@dataclass(frozen=True)
class Field:
    """A named span of a line's text: text[start:end]."""

    name: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Line:
    text: str
    quad: np.ndarray  # 4x2 float32
    chars: list[Char]  # one per non-space character, in reading order
    fields: list[Field] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "quad": _quad_list(self.quad),
            "chars": [c.to_dict() for c in self.chars],
            "fields": [f.to_dict() for f in self.fields],
        }


@dataclass
class Sample:
    """One rendered page: the image, the footprint of its marks and its text ground truth.

    `mask` is the footprint of the marks (ink, etch or relief) after geometry and
    before photometric effects. `records` holds every parameter drawn for this
    sample (the provenance); it is not part of the serialised ground truth.
    """

    image: np.ndarray  # HxW uint8
    mask: np.ndarray | None  # HxW uint8; None for a sample read back from a dataset
    lines: list[Line]
    seed: int
    index: int
    records: dict[str, Any] = field(default_factory=dict)
    char_masks: list[list[tuple[int, int, np.ndarray]]] | None = None  # debug: per line, per char (x0, y0, mask crop)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @classmethod
    def from_dict(cls, data: dict[str, Any] | bytes | str, image: np.ndarray) -> "Sample":
        """Rebuild a sample from its serialised ground truth (parse_ground_truth's input or output) and decoded
        image (no mask, no provenance); GroundTruthError if it is not gt/1."""
        data = parse_ground_truth(data)
        lines = [Line(text=line["text"], quad=np.asarray(line["quad"], np.float32),
                      chars=[Char(c["char"], np.asarray(c["quad"], np.float32)) for c in line["chars"]],
                      fields=[Field(f["name"], f["start"], f["end"]) for f in line.get("fields", [])])
                 for line in data["lines"]]
        return cls(image=image, mask=None, lines=lines, seed=data["seed"], index=data["index"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": GT_SCHEMA,
            "width": self.width,
            "height": self.height,
            "seed": self.seed,
            "index": self.index,
            "lines": [line.to_dict() for line in self.lines],
        }
