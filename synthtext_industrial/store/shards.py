"""One place that knows both shard formats: where shards live, how records go in and come back out.

A dataset folder holds page shards (`lmdb/shard-NNNNN/` or
`tfrecord/shard-NNNNN-of-MMMMM.tfrecord`) and, optionally, line-crop shards in
`crops/` in the same format. Everything else (generation, verification,
inspection, readers) goes through these functions, so a third format would be
added here only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from . import lmdb_store, tfrecord_store
from .format import FORMATS, CorruptRecord


@dataclass(frozen=True)
class Crop:
    image: bytes
    text: str
    height: int
    width: int


@dataclass
class Record:
    """One rendered sample, encoded and ready to store."""

    index: int
    seed: int
    image: bytes
    image_format: str  # "jpeg" | "png"
    label: str  # line texts joined by "\n"
    gt: bytes  # Sample.to_dict() as compact UTF-8 JSON
    lines: int
    chars: int
    crops: list[Crop]


@dataclass(frozen=True)
class StoredRecord:
    """A record as read back from a shard (pages: gt is set; crops: source is `seed:index:line`)."""

    number: int  # 1-based position in its shard
    image: bytes
    text: str
    gt: bytes | None = None
    source: str | None = None


def shard_relpath(fmt: str, kind: str, number: int, total: int) -> str:
    """Path of a shard relative to the dataset folder."""
    if fmt == "lmdb":
        return f"{'lmdb' if kind == 'images' else 'crops'}/shard-{number:05d}"
    if fmt == "tfrecord":
        return f"{'tfrecord' if kind == 'images' else 'crops'}/shard-{number:05d}-of-{total:05d}.tfrecord"
    raise ValueError(f"unknown shard format {fmt!r}; allowed: {', '.join(FORMATS)}")


def shard_folders(fmt: str) -> list[str]:
    return ["lmdb", "crops"] if fmt == "lmdb" else ["tfrecord", "crops"]


class ShardSink:
    """Writes one shard of one kind; `finish()` gives it its final name, `abort()` removes the partial file."""

    def __init__(self, fmt: str, kind: str, path: Path):
        self.fmt, self.kind = fmt, kind
        self.writer = lmdb_store.ShardWriter(path) if fmt == "lmdb" else tfrecord_store.TFRecordShardWriter(path)

    def add(self, record: Record) -> None:
        if self.kind == "images":
            if self.fmt == "lmdb":
                self.writer.add(record.image, record.label, gt=record.gt)
            else:
                self.writer.add(tfrecord_store.page_example(record.image, record.image_format, record.gt))
            return
        for line, crop in enumerate(record.crops):
            source = f"{record.seed}:{record.index}:{line}"
            if self.fmt == "lmdb":
                self.writer.add(crop.image, crop.text, source=source.encode())
            else:
                self.writer.add(tfrecord_store.crop_example(crop.image, "png", crop.height, crop.width, crop.text,
                                                            source))

    def finish(self) -> Path:
        return self.writer.finish()

    def abort(self) -> None:
        self.writer.abort()


def shard_hash(fmt: str, path: Path) -> tuple[str, int]:
    """(content hash, record count): LMDB by (key, value) content, TFRecord by file bytes."""
    if fmt == "lmdb":
        return lmdb_store.content_hash(path)
    return tfrecord_store.file_hash(path)


def shard_bytes(fmt: str, path: Path) -> int:
    return lmdb_store.shard_bytes(path) if fmt == "lmdb" else Path(path).stat().st_size


def remove_shard(path: Path) -> None:
    import shutil

    lmdb_store.forget(path)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def iter_shard(fmt: str, kind: str, path: Path) -> Iterator[StoredRecord]:
    """Every record of a shard in order; raises CorruptRecord naming the shard and record on damage."""
    if fmt == "lmdb":
        yield from _iter_lmdb(kind, Path(path))
        return
    for number, data in enumerate(tfrecord_store.iter_records(path), start=1):
        try:
            features = tfrecord_store.decode_example(data)
            image = features["image/encoded"][0]
            if kind == "images":
                yield StoredRecord(number, image, "\n".join(t.decode("utf-8") for t in features["image/object/text"]),
                                   gt=features["image/ground_truth"][0])
            else:
                yield StoredRecord(number, image, features["image/text"][0].decode("utf-8"),
                                   source=features["image/source_id"][0].decode("utf-8"))
        except (KeyError, IndexError, UnicodeDecodeError, CorruptRecord) as exc:
            raise CorruptRecord(f"malformed Example ({exc!r})", path, number) from None


def _iter_lmdb(kind: str, path: Path) -> Iterator[StoredRecord]:
    extras = ["gt"] if kind == "images" else ["source"]
    with lmdb_store.borrowed_reader(path) as env, env.begin() as txn:
        raw_count = txn.get(lmdb_store.NUM_SAMPLES)
        if raw_count is None or not raw_count.isdigit():
            raise CorruptRecord("num-samples is missing or not a number", path)
        for i in range(1, int(raw_count) + 1):
            image, label = txn.get(lmdb_store.image_key(i)), txn.get(lmdb_store.label_key(i))
            values = {name: txn.get(lmdb_store.record_key(name, i)) for name in extras}
            stored_digest = txn.get(lmdb_store.record_key("sha256", i))
            if image is None or label is None or any(v is None for v in values.values()):
                raise CorruptRecord(f"missing image, label or {'/'.join(extras)}", path, i)
            ordered = [image, label] + [values[name] for name in sorted(values)]
            if stored_digest != lmdb_store.record_digest(ordered):
                raise CorruptRecord("checksum mismatch (its image, label or ground truth changed since it was "
                                    "written)", path, i)
            try:
                text = label.decode("utf-8")
                source = values["source"].decode("utf-8") if "source" in values else None
            except UnicodeDecodeError:
                raise CorruptRecord("label is not UTF-8", path, i) from None
            yield StoredRecord(i, image, text, gt=values.get("gt"), source=source)


def decode_gray(data: bytes) -> np.ndarray | None:
    """An encoded image as HxW uint8, or None if it does not decode to a grayscale image."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return image if image is not None and image.ndim == 2 and image.dtype == np.uint8 else None
