"""TFRecord shards of `tf.train.Example`s, written without TensorFlow.

Generation workers (local processes or Dask) should not need TensorFlow, and
shards must be byte-identical across runs. So the few protobuf messages of
`tf.train.Example` are encoded here by hand, with features in name order (what
protobuf's deterministic serialisation gives for our names), and framed as
TFRecord: uint64 length, masked CRC-32C of the length, data, masked CRC-32C of
the data. The schema of the features is in docs/formats.md; tests parse these
records with TensorFlow's own `tf.io.parse_single_example`.
"""
from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Iterator

import google_crc32c

from ..core.groundtruth import parse_ground_truth
from .format import CorruptRecord

PAGE_SCHEMA = "synthtext-industrial/tfrecord-page/1"
CROP_SCHEMA = "synthtext-industrial/tfrecord-crop/1"


# ----------------------------------------------------------------------------- protobuf wire format

def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 is sent as its 64-bit two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


class floats(list):
    """A list stored as a FloatList even when it is empty (an empty plain list is stored as an Int64List)."""


def _feature(values: list) -> bytes:
    """One Feature; its type follows the values: bytes/str -> BytesList, float -> FloatList, int -> Int64List."""
    if isinstance(values, floats) or (values and isinstance(values[0], float)):
        packed = struct.pack(f"<{len(values)}f", *values)
        return _field(2, _field(1, packed) if values else b"")
    if values and isinstance(values[0], (bytes, str)):
        return _field(1, b"".join(_field(1, v.encode("utf-8") if isinstance(v, str) else bytes(v)) for v in values))
    return _field(3, _field(1, b"".join(_varint(int(v)) for v in values)) if values else b"")


def encode_example(features: dict[str, list]) -> bytes:
    """Serialise {name: list of bytes/str | floats | ints} as a tf.train.Example, names in sorted order."""
    entries = b"".join(_field(1, _field(1, name.encode("utf-8")) + _field(2, _feature(values)))
                       for name, values in sorted(features.items()))
    return _field(1, entries)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise CorruptRecord("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, payload) for each field of a message."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise CorruptRecord("field runs past the end of its message")
            yield number, wire, data[pos:pos + length]
            pos += length
        elif wire == 0:
            value, pos = _read_varint(data, pos)
            yield number, wire, value
        elif wire == 5:
            yield number, wire, data[pos:pos + 4]
            pos += 4
        elif wire == 1:
            yield number, wire, data[pos:pos + 8]
            pos += 8
        else:
            raise CorruptRecord(f"unknown protobuf wire type {wire}")


def _decode_list(kind: int, payload: bytes) -> list:
    values: list = []
    for number, wire, item in _fields(payload):
        if number != 1:
            continue
        if kind == 1:
            values.append(item)
        elif kind == 2:
            values.extend(struct.unpack(f"<{len(item) // 4}f", item) if wire == 2 else struct.unpack("<f", item))
        else:
            if wire == 0:
                values.append(item - (1 << 64) if item >= 1 << 63 else item)
                continue
            pos = 0
            while pos < len(item):
                v, pos = _read_varint(item, pos)
                values.append(v - (1 << 64) if v >= 1 << 63 else v)
    return values


def decode_example(data: bytes) -> dict[str, list]:
    """Parse a serialised tf.train.Example into {name: list of bytes | float | int}."""
    features: dict[str, list] = {}
    for number, _, features_msg in _fields(data):
        if number != 1:
            continue
        for entry_number, _, entry in _fields(features_msg):
            if entry_number != 1:
                continue
            name, values = None, []
            for part_number, _, part in _fields(entry):
                if part_number == 1:
                    name = part.decode("utf-8")
                elif part_number == 2:
                    for kind, _, payload in _fields(part):
                        values = _decode_list(kind, payload)
            if name is None:
                raise CorruptRecord("feature without a name")
            features[name] = values
    return features


# ----------------------------------------------------------------------------- TFRecord framing

def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", _masked_crc(length)) + record + struct.pack("<I", _masked_crc(record))


def iter_records(path: Path) -> Iterator[bytes]:
    """The records of one TFRecord file, checking every checksum; raises CorruptRecord naming the record."""
    with open(path, "rb") as fh:
        number = 0
        while True:
            number += 1
            header = fh.read(12)
            if not header:
                return
            if len(header) < 12:
                raise CorruptRecord("truncated header", path, number)
            length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
            if _masked_crc(length_bytes) != length_crc:
                raise CorruptRecord("length checksum mismatch", path, number)
            (length,) = struct.unpack("<Q", length_bytes)
            data = fh.read(length)
            footer = fh.read(4)
            if len(data) < length or len(footer) < 4:
                raise CorruptRecord("truncated data", path, number)
            if _masked_crc(data) != struct.unpack("<I", footer)[0]:
                raise CorruptRecord("data checksum mismatch", path, number)
            yield data


class TFRecordShardWriter:
    """Writes one .tfrecord file as `<final>.tmp`, renamed to `<final>` by `finish()`."""

    def __init__(self, final_path: Path):
        self.final_path = Path(final_path)
        self.tmp_path = self.final_path.with_name(self.final_path.name + ".tmp")
        self.final_path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.tmp_path, "wb")
        self.count = 0

    def add(self, example: bytes) -> int:
        self._file.write(frame(example))
        self.count += 1
        return self.count

    def finish(self) -> Path:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp_path, self.final_path)
        return self.final_path

    def abort(self) -> None:
        try:
            self._file.close()  # flushes: fails again on a full disk
        except OSError:
            pass
        finally:
            self.tmp_path.unlink(missing_ok=True)


def file_hash(path: Path) -> tuple[str, int]:
    """sha256 of the file's bytes and its record count (TFRecord shards are byte-deterministic)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    count = sum(1 for _ in iter_records(path))
    return digest.hexdigest(), count


# ----------------------------------------------------------------------------- our Examples

def page_example(image: bytes, image_format: str, gt_json: bytes) -> bytes:
    """One full page as a tf.train.Example (schema synthtext-industrial/tfrecord-page/1, docs/formats.md).

    `gt_json` is the page's `Sample.to_dict()` JSON; it is stored verbatim too, as in LMDB.
    """
    gt = parse_ground_truth(gt_json)
    width, height = gt["width"], gt["height"]
    xmin, ymin, xmax, ymax = floats(), floats(), floats(), floats()
    quads, char_quads, char_line = floats(), floats(), []
    texts, char_texts = [], []
    for number, line in enumerate(gt["lines"]):
        xs = [p[0] for p in line["quad"]]
        ys = [p[1] for p in line["quad"]]
        xmin.append(min(max(min(xs) / width, 0.0), 1.0))
        ymin.append(min(max(min(ys) / height, 0.0), 1.0))
        xmax.append(min(max(max(xs) / width, 0.0), 1.0))
        ymax.append(min(max(max(ys) / height, 0.0), 1.0))
        quads.extend(float(v) for p in line["quad"] for v in p)
        texts.append(line["text"])
        for char in line["chars"]:
            char_quads.extend(float(v) for p in char["quad"] for v in p)
            char_texts.append(char["char"])
            char_line.append(number)
    return encode_example({
        "schema": [PAGE_SCHEMA],
        "image/encoded": [image],
        "image/format": [image_format],
        "image/height": [height],
        "image/width": [width],
        "image/source_id": [f"{gt['seed']}:{gt['index']}"],
        "image/object/bbox/xmin": xmin,
        "image/object/bbox/ymin": ymin,
        "image/object/bbox/xmax": xmax,
        "image/object/bbox/ymax": ymax,
        "image/object/class/label": [1] * len(texts),
        "image/object/class/text": [b"text"] * len(texts),
        "image/object/text": texts,
        "image/object/quad": quads,
        "image/object/char/quad": char_quads,
        "image/object/char/text": char_texts,
        "image/object/char/line": char_line,
        "image/ground_truth": [gt_json],
    })


def crop_example(image: bytes, image_format: str, height: int, width: int, text: str, source_id: str) -> bytes:
    """One upright line crop (schema synthtext-industrial/tfrecord-crop/1)."""
    return encode_example({
        "schema": [CROP_SCHEMA],
        "image/encoded": [image],
        "image/format": [image_format],
        "image/height": [height],
        "image/width": [width],
        "image/source_id": [source_id],
        "image/text": [text],
    })
