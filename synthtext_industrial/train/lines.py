"""Streams of (line image, text) for the recognizer, straight from dataset shards.

A dataset with crops is read from its crops shards; one without is rectified on
the fly from the line quads of its page shards (LMDB or TFRecord), with the same
`line_crop` that writes crops. Several datasets mix with weights, like DTRB's
`batch_ratio`. Nothing is loaded into memory beyond the shuffle buffer.

Besides datasets written by `generate`, a *line folder* can be trained on: a folder holding `LINES_FILE`
(`path<TAB>text` lines, paths relative to it or absolute) and no manifest.json. `adapt` writes one per round
for its pseudo-labelled real lines; the images are read with OpenCV in grayscale, as `predict` reads them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from .text import Charset

CROP_MARGIN = 0.15  # the margin generate uses for crops (synthtext_industrial.crops.line_crop default)


LINES_FILE = "lines.tsv"  # a line folder's `path<TAB>text` list


def is_line_folder(out: str | Path) -> bool:
    """A folder of labelled line images (LINES_FILE, no manifest.json) rather than a generated dataset."""
    return (Path(out) / LINES_FILE).is_file() and not (Path(out) / "manifest.json").exists()


def manifest(out: str | Path) -> dict:
    """A dataset's manifest.json; for a line folder, the fields training reads (charset, counts), derived from
    its LINES_FILE, with `"kind": "lines"` and no recipe."""
    from ..store.format import load_manifest

    if is_line_folder(out):
        rows = read_labels_tsv(Path(out) / LINES_FILE)
        texts = [text for _, text in rows]
        return {"kind": "lines", "recipe_sha256": None, "seed": None, "n": len(rows), "crops": True,
                "charset": "".join(sorted(set("".join(texts)))),
                "counts": {"images": len(rows), "lines": len(rows), "crops": len(rows),
                           "max_line_length": max([0] + [len(t) for t in texts])}}
    return load_manifest(out)


def dataset_charset(outs: Sequence[str | Path]) -> str:
    """Union of the charsets in the datasets' manifests, sorted."""
    return "".join(sorted(set("".join(manifest(o)["charset"] for o in outs)) - {"\n"}))


def max_line_length(outs: Sequence[str | Path]) -> int:
    return max(manifest(o)["counts"].get("max_line_length", 0) for o in outs)


def raw_lines(out: str | Path, shuffle_shards: bool = False, seed: int | None = None):
    """tf.data.Dataset of {"image": [h, w, 1] uint8, "text": string} for every line of a dataset."""
    import tensorflow as tf

    from ..store.readers import tf_dataset

    if is_line_folder(out):
        return _line_folder_lines(out, shuffle_shards, seed)
    if manifest(out).get("crops"):
        crops = tf_dataset(out, kind="crops", shuffle_shards=shuffle_shards, seed=seed)
        return crops.map(lambda e: {"image": e["image"], "text": e["text"]}, num_parallel_calls=tf.data.AUTOTUNE)
    pages = tf_dataset(out, kind="images", shuffle_shards=shuffle_shards, seed=seed)

    def cut(page):
        def crop_all(image, quads):
            from ..crops import line_crop

            crops = [line_crop(image[..., 0], quad, CROP_MARGIN) for quad in quads]
            height = max([c.shape[0] for c in crops] + [1])
            width = max([c.shape[1] for c in crops] + [1])
            batch = np.zeros((len(crops), height, width, 1), np.uint8)
            sizes = np.zeros((len(crops), 2), np.int32)
            for k, c in enumerate(crops):
                batch[k, : c.shape[0], : c.shape[1], 0] = c
                sizes[k] = c.shape
            return batch, sizes

        batch, sizes = tf.numpy_function(crop_all, [page["image"], page["line_quads"]], [tf.uint8, tf.int32])
        batch.set_shape([None, None, None, 1])
        sizes.set_shape([None, 2])
        return tf.data.Dataset.from_tensor_slices({"image": batch, "size": sizes, "text": page["texts"]})

    def unpad(line):
        return {"image": line["image"][: line["size"][0], : line["size"][1]], "text": line["text"]}

    return pages.flat_map(cut).map(unpad, num_parallel_calls=tf.data.AUTOTUNE)


def _line_folder_lines(out: str | Path, shuffle: bool, seed: int | None):
    """raw_lines of a line folder: its LINES_FILE in order (or shuffled whole, repeatably when seeded)."""
    import tensorflow as tf

    rows = read_labels_tsv(Path(out) / LINES_FILE)
    if not rows:
        raise ValueError(f"{Path(out) / LINES_FILE} lists no lines")
    paths = tf.data.Dataset.from_tensor_slices(([str(p) for p, _ in rows], [t for _, t in rows]))
    if shuffle:
        paths = paths.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)

    def read(path):
        import cv2

        image = cv2.imread(path.decode("utf-8"), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"{Path(out) / LINES_FILE}: cannot read image {path.decode('utf-8')}")
        return image[..., None]

    def load(path, text):
        image = tf.numpy_function(read, [path], tf.uint8, stateful=False)
        image.set_shape([None, None, 1])
        return {"image": image, "text": text}

    return paths.map(load, num_parallel_calls=tf.data.AUTOTUNE)


def encode_texts(charset: Charset):
    """A tf function: string text -> (int32 labels, int32 length), labels as indices into the charset."""
    import tensorflow as tf

    keys = tf.constant([ord(c) for c in charset.chars], tf.int32)
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, tf.range(len(charset.chars))), -1)

    def encode(text):
        labels = table.lookup(tf.strings.unicode_decode(text, "UTF-8"))
        tf.debugging.assert_non_negative(labels, message="a label has a character outside the charset")
        return labels, tf.shape(labels)[0]

    return encode


def mix_streams(streams: list, weights: Sequence[float] | None, shuffle: int, seed: int, repeat: bool):
    """One tf.data stream from one per dataset: each shuffled, and with several, each repeated and sampled by
    `weights` (default: equal), like DTRB's batch_ratio."""
    import tensorflow as tf

    if shuffle:
        streams = [s.shuffle(shuffle, seed=seed + k) for k, s in enumerate(streams)]
    if len(streams) > 1:
        streams = [s.repeat() for s in streams]
        return tf.data.Dataset.sample_from_datasets(streams, weights=list(weights) if weights else None, seed=seed)
    return streams[0].repeat() if repeat else streams[0]


def training_batches(outs: Sequence[str | Path], charset: Charset, height: int, width: int, batch_size: int,
                     weights: Sequence[float] | None = None, shuffle: int = 2048, seed: int = 0,
                     repeat: bool = True, augment: bool = False, keep_ratio: bool = False):
    """Batches of {"image": [B, height, width, 1] float32 0-255, "labels": [B, L] int32 (padded), "length": [B]},
    each line resized by portable.preprocess (`keep_ratio`: scaled and padded, not stretched).

    With several datasets, each is repeated and they are sampled by `weights` (default: equal).
    """
    import tensorflow as tf

    streams = [raw_lines(out, shuffle_shards=shuffle > 0, seed=seed + k) for k, out in enumerate(outs)]
    lines = mix_streams(streams, weights, shuffle, seed, repeat)
    encode = encode_texts(charset)

    def resize(image):  # the very function predict, evaluate and every export use: no train/serve skew
        from ..core.portable import preprocess

        return preprocess(image, height, width, keep_ratio)

    def prepare(line):
        image = tf.numpy_function(resize, [line["image"]], tf.float32, stateful=False)
        image.set_shape([height, width, 1])
        labels, length = encode(line["text"])
        return {"image": image, "labels": labels, "length": length, "text": line["text"]}

    batches = lines.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:  # each line's augmentation is seeded by (seed, its position in the stream)
        batches = batches.enumerate().map(_augment(seed), num_parallel_calls=tf.data.AUTOTUNE)
    return batches.padded_batch(batch_size, padded_shapes={"image": [height, width, 1], "labels": [None],
                                                           "length": [], "text": []}, drop_remainder=False) \
        .prefetch(tf.data.AUTOTUNE)


def _augment(seed: int):
    """Online photometric augmentation with the package's own effects (albumentations), seeded per line."""
    import tensorflow as tf

    import threading

    local = threading.local()  # tf.data calls this from several threads; a pipeline holds its random state

    def apply(image, image_seed):
        from ..stages.effects import EffectsConfig, apply_effects, build_effects

        if not hasattr(local, "pipeline"):
            local.pipeline = build_effects(EffectsConfig())
        pipeline = local.pipeline
        pixels = np.clip(image[..., 0], 0, 255).astype(np.uint8)
        out, _ = apply_effects(pipeline, pixels, np.random.default_rng([seed, int(image_seed)]))
        return out.astype(np.float32)[..., None]

    def augment(position, example):
        image = tf.numpy_function(apply, [example["image"], position], tf.float32)
        image.set_shape(example["image"].shape)
        return {**example, "image": image}

    return augment


def read_labels_tsv(path: str | Path) -> list[tuple[Path, str]]:
    """Lines `path<TAB>text`, paths relative to the labels file."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(f"{path}:{number}: expected `path<TAB>text`, got {line!r}")
        image, text = line.split("\t", 1)
        rows.append((path.parent / image, text))
    return rows


def dump_json(path: Path, data) -> None:
    Path(path).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
