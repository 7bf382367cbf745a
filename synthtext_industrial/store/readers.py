"""Training readers for a dataset folder: a random-access sequence over LMDB, and a tf.data pipeline over either format.

Both stream from the shards (nothing is loaded into memory) and check what they
read: an LMDB record whose sha256 does not match, or an image that does not
decode, raises CorruptRecord naming the shard and record (TensorFlow checks
TFRecord CRCs itself). We never hand back a blank stand-in, as
deep-text-recognition-benchmark does, which silently teaches a model that empty
pictures have labels. LMDB environments are lmdb_store's per-process readers,
opened on first use in the process that reads (an environment must not cross a
fork: PyTorch DataLoader workers). TensorFlow is imported only by `tf_dataset` and the two feature
specs, so the package works without it.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.groundtruth import GroundTruthError, parse_ground_truth
from . import lmdb_store
from .format import CROP_FORMAT, KINDS, CorruptRecord, DatasetError, load_manifest
from .shards import decode_gray

AUTOTUNE = -1  # the value of tf.data.AUTOTUNE, so that defaults need no TensorFlow import


@dataclass(frozen=True)
class Feature:
    """One feature of our tf.train.Examples: `per` record (one value) or per line / per character (a list)."""

    per: str  # "record" | "line" | "char"
    shape: tuple[int, ...]  # shape of one value
    dtype: str  # "string" | "int64" | "float32"
    meaning: str


PAGE_FEATURES = {  # schema synthtext-industrial/tfrecord-page/1
    "schema": Feature("record", (), "string", "always synthtext-industrial/tfrecord-page/1"),
    "image/encoded": Feature("record", (), "string", "the 8-bit grayscale page, encoded as image/format says"),
    "image/format": Feature("record", (), "string", "jpeg or png"),
    "image/height": Feature("record", (), "int64", "page height in pixels"),
    "image/width": Feature("record", (), "int64", "page width in pixels"),
    "image/source_id": Feature("record", (), "string", "seed:index, the sample's identity"),
    "image/object/bbox/xmin": Feature("line", (), "float32", "axis-aligned box of the line quad / width, in [0, 1]"),
    "image/object/bbox/ymin": Feature("line", (), "float32", "... / height, in [0, 1]"),
    "image/object/bbox/xmax": Feature("line", (), "float32", "... / width, in [0, 1]"),
    "image/object/bbox/ymax": Feature("line", (), "float32", "... / height, in [0, 1]"),
    "image/object/class/label": Feature("line", (), "int64", "always 1 (TF Object Detection API convention)"),
    "image/object/class/text": Feature("line", (), "string", "always 'text'"),
    "image/object/text": Feature("line", (), "string", "the line's text, spaces included"),
    "image/object/quad": Feature("line", (4, 2), "float32", "the line quad in pixels: TL, TR, BR, BL as read"),
    "image/object/char/quad": Feature("char", (4, 2), "float32", "each non-space character's quad, lines in order"),
    "image/object/char/text": Feature("char", (), "string", "each non-space character"),
    "image/object/char/line": Feature("char", (), "int64", "0-based line of each character (ascending)"),
    "image/ground_truth": Feature("record", (), "string", "the page's gt/1 JSON (docs/ground-truth.md), verbatim"),
}
CROP_FEATURES = {  # schema synthtext-industrial/tfrecord-crop/1
    "schema": Feature("record", (), "string", "always synthtext-industrial/tfrecord-crop/1"),
    "image/encoded": Feature("record", (), "string", "the upright 8-bit grayscale line crop, PNG"),
    "image/format": Feature("record", (), "string", "png"),
    "image/height": Feature("record", (), "int64", "crop height in pixels"),
    "image/width": Feature("record", (), "int64", "crop width in pixels"),
    "image/source_id": Feature("record", (), "string", "seed:index:line of the page line it was cut from"),
    "image/text": Feature("record", (), "string", "the line's text"),
}


def feature_spec(kind: str = "images") -> dict:
    """The tf.io feature spec for `tf.io.parse_single_example` on one TFRecord record of `kind`.

    Per-record features parse to scalars, per-line and per-character ones to
    dense lists ([L], [L, 4, 2], [C], [C, 4, 2]); empty lists are allowed.
    """
    import tensorflow as tf

    table = PAGE_FEATURES if _check_kind(kind) == "images" else CROP_FEATURES
    spec = {}
    for name, feature in table.items():
        dtype = tf.as_dtype(feature.dtype)
        if feature.per == "record":
            spec[name] = tf.io.FixedLenFeature(feature.shape, dtype)
        else:
            spec[name] = tf.io.FixedLenSequenceFeature(feature.shape, dtype, allow_missing=True)
    return spec


def __getattr__(name: str):
    """PAGE_FEATURE_SPEC and CROP_FEATURE_SPEC: `feature_spec` as constants, built (importing TF) on first use."""
    if name in ("PAGE_FEATURE_SPEC", "CROP_FEATURE_SPEC"):
        return feature_spec("images" if name == "PAGE_FEATURE_SPEC" else "crops")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
    return kind


def _shards(out: Path, kind: str) -> tuple[dict, list[dict]]:
    """(manifest, entries of `kind` in sample order); DatasetError if the folder has none."""
    manifest = load_manifest(out)
    entries = sorted((e for e in manifest["shards"] if e["kind"] == _check_kind(kind)), key=lambda e: e["start"])
    if not entries:
        hint = " (generated without crops)" if kind == "crops" and not manifest.get("crops") else ""
        raise DatasetError(f"{out}: no {kind} shards in the manifest{hint}")
    return manifest, entries


def _page_fields(gt_json: bytes, path: Path, number: int) -> dict:
    """texts, line_quads [L,4,2], char_quads (per line [Ci,4,2]), char_texts, index, source_id from gt/1 JSON."""
    try:
        gt = parse_ground_truth(gt_json)
    except GroundTruthError as exc:
        raise CorruptRecord(str(exc), path, number) from None
    lines = gt["lines"]
    return {
        "texts": [line["text"] for line in lines],
        "line_quads": np.array([line["quad"] for line in lines], np.float32).reshape(-1, 4, 2),
        "char_quads": [np.array([c["quad"] for c in line["chars"]], np.float32).reshape(-1, 4, 2)
                       for line in lines],
        "char_texts": [[c["char"] for c in line["chars"]] for line in lines],
        "index": int(gt["index"]),
        "source_id": f"{gt['seed']}:{gt['index']}",
    }


def _checked_record(txn, path: Path, kind: str, number: int) -> tuple[str, bytes | memoryview, bytes | str]:
    """(text, image, gt JSON or source id) of record `number` (1-based), its sha256 checked.

    Raises CorruptRecord naming the shard and record. The image is a view into
    the map when `txn` was begun with buffers=True (valid until it ends).
    """
    extra = "gt" if kind == "images" else "source"
    image, label, value, digest = (txn.get(key) for key in (
        lmdb_store.image_key(number), lmdb_store.label_key(number), lmdb_store.record_key(extra, number),
        lmdb_store.record_key("sha256", number)))
    if image is None or label is None or value is None:
        raise CorruptRecord(f"missing image, label or {extra}", path, number)
    if bytes(digest or b"") != lmdb_store.record_digest([image, label, value]):
        raise CorruptRecord(f"checksum mismatch (its image, label or {extra} changed since it was written)",
                            path, number)
    try:
        return str(label, "utf-8"), image, bytes(value) if kind == "images" else str(value, "utf-8")
    except UnicodeDecodeError:
        raise CorruptRecord("label or source is not UTF-8", path, number) from None


class LmdbDataset:
    """Random-access sequence over the LMDB shards of a dataset folder (a PyTorch map-style dataset).

    Pages: dict(image=HxW uint8, texts=[str], line_quads=float32 [L,4,2],
    char_quads=[float32 [Ci,4,2] per line], char_texts=[[str] per line],
    index=sample index, source_id="seed:index"). Crops: dict(image, text,
    source_id="seed:index:line"). It holds no open environment, so it pickles
    to DataLoader workers; each process opens the shards it reads on first use.
    """

    def __init__(self, out: str | Path, kind: str = "images"):
        self.out, self.kind = Path(out), kind
        manifest, entries = _shards(self.out, kind)
        if manifest["format"] != "lmdb":
            raise DatasetError(f"{self.out} holds {manifest['format']} shards; read them with "
                               f"synthtext_industrial.data.tf_dataset")
        self.paths = [self.out / e["path"] for e in entries]
        self.ends = np.cumsum([e["records"] for e in entries]).tolist()  # global index where each shard ends

    def __len__(self) -> int:
        return self.ends[-1]

    def __getitem__(self, index: int) -> dict:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} {self.kind}")
        index %= n
        shard = bisect.bisect_right(self.ends, index)
        number = index - (self.ends[shard - 1] if shard else 0) + 1
        path = self.paths[shard]
        with lmdb_store.reader(path).begin(buffers=True) as txn:  # hash and decode straight from the map, no copy
            text, encoded, extra = _checked_record(txn, path, self.kind, number)
            image = decode_gray(encoded)
        if image is None:
            raise CorruptRecord("image does not decode to 8-bit grayscale", path, number)
        if self.kind == "crops":
            return {"image": image, "text": text, "source_id": extra}
        return {"image": image, **_page_fields(extra, path, number)}


def _stack_padded(images: list[np.ndarray]) -> np.ndarray:
    """[B, H, W] uint8: images of one size stacked; of several sizes, padded with 0 at the bottom and right."""
    if len({image.shape for image in images}) == 1:
        return np.stack(images)
    height, width = max(i.shape[0] for i in images), max(i.shape[1] for i in images)
    out = np.zeros((len(images), height, width), np.uint8)
    for k, image in enumerate(images):
        out[k, :image.shape[0], :image.shape[1]] = image
    return out


def collate_fn(batch: list[dict]) -> dict:
    """Turn a list of LmdbDataset items into one batch: `DataLoader(ds, batch_size=B, collate_fn=collate_fn)`.

    PyTorch's default collate cannot batch pages (their lines and characters vary in number) nor crops
    (their sizes vary). This returns NumPy arrays and lists (no torch import; `torch.from_numpy` where a
    tensor is needed): image uint8 [B, H, W] (padded with 0 to the largest when sizes differ), image_shape
    int64 [B, 2] (each item's own height and width), source_id [str]. Crops add text [str]. Pages add
    index int64 [B], texts [[str] per page], and the lines and characters of the whole batch packed:
    line_quads float32 [N, 4, 2] with line_page int64 [N] (the page of each line), char_quads float32
    [M, 4, 2] and char_texts [str] with char_line int64 [M] (the batch line of each character).
    """
    if not batch:
        raise ValueError("collate_fn needs at least one item")
    out = {"image": _stack_padded([item["image"] for item in batch]),
           "image_shape": np.array([item["image"].shape[:2] for item in batch], np.int64).reshape(-1, 2),
           "source_id": [item["source_id"] for item in batch]}
    if "text" in batch[0]:
        return {**out, "text": [item["text"] for item in batch]}
    lines_per_page = [len(item["texts"]) for item in batch]
    chars_per_line = [len(chars) for item in batch for chars in item["char_texts"]]
    return {
        **out,
        "index": np.array([item["index"] for item in batch], np.int64),
        "texts": [list(item["texts"]) for item in batch],
        "line_quads": np.concatenate([item["line_quads"] for item in batch]).reshape(-1, 4, 2),
        "line_page": np.repeat(np.arange(len(batch), dtype=np.int64), lines_per_page),
        "char_quads": np.concatenate([q for item in batch for q in item["char_quads"]]
                                     + [np.zeros((0, 4, 2), np.float32)]),
        "char_texts": [c for item in batch for chars in item["char_texts"] for c in chars],
        "char_line": np.repeat(np.arange(len(chars_per_line), dtype=np.int64), chars_per_line),
    }


def dtrb_character(charset: str) -> str:
    """deep-text-recognition-benchmark's `--character` for a charset, spaces kept.

    Without `--sensitive` DTRB lowercases every label, and both its filter and its label clean-up read
    `--character` as a regular-expression class `[^...]`: so the letters go in lower case, `-` goes last
    (elsewhere it makes a range) and `\\`, `]`, `[` and `^` are escaped.
    """
    chars = sorted(set("".join(c.lower() for c in charset)))
    body = "".join("\\" + c if c in "\\[]^" else c for c in chars if c != "-")
    return body + ("-" if "-" in chars else "")


def dtrb_options(*folders: str | Path) -> dict:
    """`--character` and `--batch_max_length` for DTRB training on these datasets (train and valid together)."""
    manifests = [load_manifest(folder) for folder in folders]
    return {"character": dtrb_character("".join(m["charset"] for m in manifests)),
            "batch_max_length": max(m.get("counts", {}).get("max_line_length", 0) for m in manifests)}


def ragged_batch(dataset, batch_size: int, drop_remainder: bool = False):
    """Batch `tf_dataset` pages (or crops): what varies from item to item becomes a tf.RaggedTensor.

    A page's lines and characters vary in number, so `Dataset.batch` refuses them; this is
    `Dataset.ragged_batch`. Pages of one folder: image uint8 [B, H, W, 1] (dense: the folder's canvas size),
    texts [B, (L)], line_quads [B, (L), 4, 2], char_quads [B, (L), (C), 4, 2], char_texts [B, (L), (C)],
    source_id [B]; (L) and (C) are ragged. Crops: image [B, (H), (W), 1], text and source_id [B].
    `.to_tensor()` pads a ragged tensor; `.flat_values` packs it.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return dataset.ragged_batch(batch_size, drop_remainder=drop_remainder)


# ----------------------------------------------------------------------------- tf.data

LMDB_CHUNK = {"images": 8, "crops": 64}  # records per Python call from tf.data: the call, not LMDB, is the cost


def _lmdb_page_chunk(path: bytes, start: np.int64, count: np.int64) -> tuple:
    """Pages start..start+count-1 of one LMDB shard as flat arrays with per-page row lengths: (encoded images,
    source ids, lines per page, texts, line quads, chars per page, char quads, char texts, char line)."""
    path, start, count = Path(path.decode()), int(start), int(count)
    pages = []
    with lmdb_store.reader(path).begin() as txn:
        for number in range(start, start + count):
            _, image, gt = _checked_record(txn, path, "images", number)
            pages.append((image, _page_fields(gt, path, number)))
    fields = [f for _, f in pages]
    lengths = [[len(chars) for chars in f["char_texts"]] for f in fields]
    return (np.array([image for image, _ in pages], dtype=object),
            np.array([f["source_id"].encode() for f in fields], dtype=object),
            np.array([len(f["texts"]) for f in fields], np.int64),
            np.array([t.encode("utf-8") for f in fields for t in f["texts"]], dtype=object).reshape(-1),
            np.concatenate([f["line_quads"] for f in fields]).reshape(-1, 4, 2),
            np.array([sum(n) for n in lengths], np.int64),
            np.concatenate([q for f in fields for q in f["char_quads"]] + [np.zeros((0, 4, 2), np.float32)]),
            np.array([c.encode("utf-8") for f in fields for line in f["char_texts"] for c in line],
                     dtype=object).reshape(-1),
            np.concatenate([np.repeat(np.arange(len(n), dtype=np.int64), n) for n in lengths]))


def _lmdb_crop_chunk(path: bytes, start: np.int64, count: np.int64) -> tuple:
    """Crops start..start+count-1 of one LMDB shard as (encoded images, texts, source ids)."""
    path, start, count = Path(path.decode()), int(start), int(count)
    with lmdb_store.reader(path).begin() as txn:
        records = [_checked_record(txn, path, "crops", number) for number in range(start, start + count)]
    return (np.array([image for _, image, _ in records], dtype=object),
            np.array([text.encode("utf-8") for text, _, _ in records], dtype=object),
            np.array([source.encode("utf-8") for _, _, source in records], dtype=object))


def tf_dataset(out: str | Path, kind: str = "images", shuffle_shards: bool = False, seed: int | None = None,
               cycle_length: int | None = None, num_parallel_calls: int | None = AUTOTUNE, deterministic: bool = True,
               decode: bool = True):
    """A tf.data.Dataset of dicts streamed from the folder's LMDB or TFRecord shards.

    Pages: image uint8 [H,W,1] (static: the canvas size), texts string [L], line_quads float32 [L,4,2],
    char_quads float32 ragged [L,None,4,2], char_texts string ragged [L,None],
    source_id. Crops: image, text, source_id. With decode=False, image is the
    encoded bytes. Shards are read `cycle_length` at a time (default: as many as
    there are cores, at most the shard count) and their records interleaved one
    by one; shuffle_shards permutes the shard order (repeatably when seeded).
    Records are not shuffled: add `.shuffle(buffer)` for that. Reading and
    decoding run in parallel (`num_parallel_calls`); None runs them in order,
    which is about 3% faster on a single core. `ragged_batch` batches pages.
    """
    import tensorflow as tf

    out = Path(out)
    manifest, entries = _shards(out, kind)
    files = tf.data.Dataset.from_tensor_slices(([str(out / e["path"]) for e in entries],
                                                np.array([e["records"] for e in entries], np.int64)))
    if shuffle_shards:
        files = files.shuffle(len(entries), seed=seed)
    cycle_length = cycle_length or min(len(entries), len(os.sched_getaffinity(0)))
    image_format = CROP_FORMAT if kind == "crops" else manifest["canvas"]["encoding"]
    # pages have the canvas size: a static shape lets them batch densely (ragged_batch, Keras)
    shape = [manifest["canvas"]["height"], manifest["canvas"]["width"], 1] if kind == "images" else [None, None, 1]

    def image(encoded):
        if not decode:
            return encoded
        if image_format == "jpeg":  # libjpeg's default IDCT, as OpenCV uses: pixels equal LmdbDataset's
            return tf.ensure_shape(tf.io.decode_jpeg(encoded, channels=1, dct_method="INTEGER_ACCURATE"), shape)
        return tf.ensure_shape(tf.io.decode_png(encoded, channels=1), shape)

    def page(encoded, texts, line_quads, char_quads, char_texts, char_line, source_id):
        # char_line is ascending and < len(texts) by construction (our writers; TFRecord CRCs, LMDB sha256):
        # skipping the validation ops saves a third of the per-page overhead
        lines = tf.shape(texts, out_type=tf.int64)[0]
        return {"image": image(encoded), "texts": texts, "line_quads": line_quads,
                "char_quads": tf.RaggedTensor.from_value_rowids(char_quads, char_line, nrows=lines, validate=False),
                "char_texts": tf.RaggedTensor.from_value_rowids(char_texts, char_line, nrows=lines, validate=False),
                "source_id": source_id}

    if manifest["format"] == "tfrecord":
        spec = feature_spec(kind)

        def read_shard(path, count):
            return tf.data.TFRecordDataset(path)

        def parse(serialized):
            f = tf.io.parse_single_example(serialized, spec)
            if kind == "crops":
                return {"image": image(f["image/encoded"]), "text": f["image/text"], "source_id": f["image/source_id"]}
            return page(f["image/encoded"], f["image/object/text"], f["image/object/quad"],
                        f["image/object/char/quad"], f["image/object/char/text"], f["image/object/char/line"],
                        f["image/source_id"])
    else:
        # Records come CHUNK at a time through one Python call and are unbatched in TensorFlow: a call per
        # record cost more than decoding a crop. Not from_generator: creating a generator dataset makes
        # TensorFlow set glibc's M_TRIM_THRESHOLD for the whole process, after which page-sized allocations
        # keep faulting in fresh memory.
        chunk = LMDB_CHUNK[kind]

        def read_chunk(path, start, count):
            if kind == "crops":
                images, texts, sources = tf.numpy_function(_lmdb_crop_chunk, [path, start, count],
                                                           [tf.string] * 3, stateful=False)
                return tuple(tf.ensure_shape(v, [None]) for v in (images, texts, sources))
            values = tf.numpy_function(_lmdb_page_chunk, [path, start, count],
                                       [tf.string, tf.string, tf.int64, tf.string, tf.float32, tf.int64,
                                        tf.float32, tf.string, tf.int64], stateful=False)
            images, sources, line_counts, texts, line_quads, char_counts, char_quads, char_texts, char_line = (
                tf.ensure_shape(v, shape) for v, shape in zip(values, [
                    [None], [None], [None], [None], [None, 4, 2], [None], [None, 4, 2], [None], [None]]))

            def per_page(flat, counts):
                return tf.RaggedTensor.from_row_lengths(flat, counts, validate=False)

            return (images, per_page(texts, line_counts), per_page(line_quads, line_counts),
                    per_page(char_quads, char_counts), per_page(char_texts, char_counts),
                    per_page(char_line, char_counts), sources)

        def read_shard(path, count):
            starts = tf.data.Dataset.range(1, count + 1, chunk)
            size = tf.constant(chunk, tf.int64)
            return starts.map(lambda start: read_chunk(path, start, tf.minimum(size, count + 1 - start))).unbatch()

        def parse(*values):
            if kind == "crops":
                return {"image": image(values[0]), "text": values[1], "source_id": values[2]}
            return page(*values)

    parallel = {} if num_parallel_calls is None else {"num_parallel_calls": num_parallel_calls,
                                                      "deterministic": deterministic}
    records = files.interleave(read_shard, cycle_length=cycle_length, **parallel)
    return records.map(parse, **parallel).prefetch(AUTOTUNE)
