"""Training readers: items equal the render, damage is named not hidden, LMDB and TFRecord read the same."""
from __future__ import annotations

import json
import multiprocessing as mp
import pickle
import shutil

import cv2
import lmdb
import numpy as np
import pytest

from synthtext_industrial import line_crops, recipe_from_dict, render_sample
from synthtext_industrial.data import CROP_FEATURES, PAGE_FEATURES, LmdbDataset, tf_dataset
from synthtext_industrial.store.format import DatasetError
from synthtext_industrial.generate import generate
from synthtext_industrial.store.lmdb_store import borrowed_reader, record_digest
from synthtext_industrial.store.format import CorruptRecord

TINY = {"canvas": {"width": 320, "height": 240, "encoding": {"format": "jpeg", "quality": 95}},
        "typography": {"height_px": [16, 30]},
        "text": {"blocks": [{"lines": ["{X:6}"]}, {"lines": ["LOT {9:4}", "{A:3}"]}]}}
SEED, N = 3, 7


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The same 7 pages (and their crops) as LMDB and as TFRecord, in shards of 3, 3 and 1."""
    root = tmp_path_factory.mktemp("data")
    recipe = recipe_from_dict(TINY)
    for fmt in ("lmdb", "tfrecord"):
        generate(recipe, root / fmt, n=N, seed=SEED, fmt=fmt, shard_size=3, workers=1)
    return root


def stored_images(shard) -> list[bytes]:
    with borrowed_reader(shard) as env, env.begin() as txn:
        return [txn.get(b"image-%09d" % i) for i in range(1, int(txn.get(b"num-samples")) + 1)]


def test_pages_equal_the_render(folders):
    pages = LmdbDataset(folders / "lmdb")
    assert len(pages) == N
    stored = [b for k in range(3) for b in stored_images(folders / "lmdb" / "lmdb" / f"shard-{k:05d}")]
    recipe = recipe_from_dict(TINY)
    for i in range(N):
        item, sample = pages[i], render_sample(recipe, SEED, i)
        assert item["index"] == i and item["source_id"] == f"{SEED}:{i}"
        assert np.array_equal(item["image"], cv2.imdecode(np.frombuffer(stored[i], np.uint8), cv2.IMREAD_UNCHANGED))
        assert item["image"].shape == (240, 320) and item["image"].dtype == np.uint8
        assert np.abs(item["image"].astype(int) - sample.image).mean() < 3  # JPEG q95 of the render
        assert item["texts"] == [line.text for line in sample.lines]
        assert item["line_quads"].dtype == np.float32 and item["line_quads"].shape == (len(sample.lines), 4, 2)
        np.testing.assert_allclose(item["line_quads"], [line.quad for line in sample.lines], atol=1e-3)
        for quads, texts, line in zip(item["char_quads"], item["char_texts"], sample.lines, strict=True):
            assert texts == [c.char for c in line.chars] and quads.dtype == np.float32
            np.testing.assert_allclose(quads, np.reshape([c.quad for c in line.chars], (-1, 4, 2)), atol=1e-3)
    assert pages[-1]["index"] == N - 1 and pages[-N]["index"] == 0
    for bad in (N, -N - 1):
        with pytest.raises(IndexError):
            pages[bad]
    assert [item["index"] for item in pages] == list(range(N))  # iterable through the sequence protocol


def test_crops_equal_the_cut_lines(folders):
    crops = LmdbDataset(folders / "lmdb", kind="crops")
    recipe = recipe_from_dict(TINY)
    expected = [(f"{SEED}:{i}:{line}", crop, text) for i in range(N)
                for line, (crop, text) in enumerate(line_crops(render_sample(recipe, SEED, i)))]
    assert len(crops) == len(expected)
    for item, (source_id, crop, text) in zip(crops, expected):
        assert item["source_id"] == source_id and item["text"] == text
        assert item["image"].shape == crop.shape and np.abs(item["image"].astype(int) - crop).mean() < 3


def test_wrong_format_or_missing_kind_is_refused(folders, tmp_path):
    with pytest.raises(DatasetError, match="tf_dataset"):
        LmdbDataset(folders / "tfrecord")
    generate(recipe_from_dict(TINY), tmp_path / "pages", n=1, workers=1, with_crops=False)
    with pytest.raises(DatasetError, match="no crops shards"):
        LmdbDataset(tmp_path / "pages", kind="crops")
    with pytest.raises(ValueError, match="allowed"):
        LmdbDataset(tmp_path / "pages", kind="lines")


_INHERITED: LmdbDataset | None = None


def _texts_in_forked_worker(index: int) -> list[str]:
    return _INHERITED[index]["texts"]


def test_pickles_and_works_in_forked_workers(folders):
    global _INHERITED
    pages = LmdbDataset(folders / "lmdb")
    expected = [pages[i]["texts"] for i in range(N)]  # the parent now has every shard open
    clone = pickle.loads(pickle.dumps(pages))
    assert [clone[i]["texts"] for i in range(N)] == expected
    _INHERITED = pages  # what a DataLoader with fork workers does: the child inherits the object
    try:
        with mp.get_context("fork").Pool(2) as pool:
            assert pool.map(_texts_in_forked_worker, range(N)) == expected
    finally:
        _INHERITED = None


def _flip_a_byte_in_image(shard, number: int) -> None:
    data = shard / "data.mdb"
    raw = bytearray(data.read_bytes())
    with lmdb.open(str(shard), readonly=True, lock=False) as env, env.begin() as txn:
        image = txn.get(b"image-%09d" % number)
    middle = len(image) // 2  # past the JPEG header, which every page shares
    raw[bytes(raw).index(image[middle:middle + 40]) + 10] ^= 0x01
    data.write_bytes(bytes(raw))


def test_damaged_record_raises_naming_it(tmp_path):
    generate(recipe_from_dict(TINY), tmp_path / "ds", n=3, seed=1, shard_size=3, workers=1, with_crops=False)
    shard = tmp_path / "ds" / "lmdb" / "shard-00000"
    _flip_a_byte_in_image(shard, 2)
    pages = LmdbDataset(tmp_path / "ds")
    assert pages[0]["index"] == 0 and pages[2]["index"] == 2
    with pytest.raises(CorruptRecord, match=r"lmdb/shard-00000 record 2: checksum mismatch"):
        pages[1]


@pytest.mark.parametrize("damage, message", [
    ("truncated image", "image does not decode"),
    ("unknown gt schema", "ground-truth schema 'synthtext-industrial/gt/9'"),
])
def test_bad_content_with_a_valid_checksum_raises(tmp_path, damage, message):
    generate(recipe_from_dict(TINY), tmp_path / "ds", n=2, seed=1, workers=1, with_crops=False)
    shard = tmp_path / "ds" / "lmdb" / "shard-00000"
    with lmdb.open(str(shard), readonly=False, lock=False) as env, env.begin(write=True) as txn:
        image, label, gt = (txn.get(b"%s-%09d" % (name, 2)) for name in (b"image", b"label", b"gt"))
        if damage == "truncated image":
            image = image[:200]
        else:
            gt = gt.replace(b"/gt/1", b"/gt/9")
        txn.put(b"image-000000002", image)  # re-signed: only decoding or parsing can tell
        txn.put(b"gt-000000002", gt)
        txn.put(b"sha256-000000002", record_digest([image, label, gt]))
    with pytest.raises(CorruptRecord, match=f"shard-00000 record 2: {message}"):
        LmdbDataset(tmp_path / "ds")[1]


# ----------------------------------------------------------------------------- tf.data

def as_python(element: dict) -> dict:
    return {k: v.to_list() if hasattr(v, "to_list") else v.numpy() for k, v in element.items()}


def assert_same_elements(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            assert np.array_equal(np.asarray(x[key], dtype=object), np.asarray(y[key], dtype=object)) \
                if key in ("char_quads", "char_texts") else np.array_equal(x[key], y[key]), key


@pytest.mark.parametrize("kind", ["images", "crops"])
def test_tf_dataset_reads_lmdb_and_tfrecord_the_same(folders, kind):
    tf = pytest.importorskip("tensorflow")
    from_lmdb = [as_python(e) for e in tf_dataset(folders / "lmdb", kind, cycle_length=2)]
    from_tfrecord = [as_python(e) for e in tf_dataset(folders / "tfrecord", kind, cycle_length=2)]
    assert_same_elements(from_lmdb, from_tfrecord)
    reference = LmdbDataset(folders / "lmdb", kind)
    by_source = {e["source_id"].decode(): e for e in from_lmdb}
    assert len(by_source) == len(reference)
    for item in reference:
        element = by_source[item["source_id"]]
        assert element["image"].shape == item["image"].shape + (1,)
        assert np.array_equal(element["image"][..., 0], item["image"])  # TF's JPEG/PNG decoder = OpenCV's
        if kind == "crops":
            assert element["text"].decode() == item["text"]
            continue
        assert [t.decode() for t in element["texts"]] == item["texts"]
        assert np.array_equal(element["line_quads"], item["line_quads"])
        assert [[c.decode() for c in line] for line in element["char_texts"]] == item["char_texts"]
        for quads, expected in zip(element["char_quads"], item["char_quads"], strict=True):
            assert np.array_equal(np.reshape(quads, (-1, 4, 2)).astype(np.float32), expected)
    one = next(iter(tf_dataset(folders / "tfrecord", kind)))
    assert one["image"].dtype == tf.uint8 and one["image"].shape.rank == 3
    if kind == "images":
        assert isinstance(one["char_quads"], tf.RaggedTensor) and one["char_quads"].shape[2:] == [4, 2]


def test_tfrecord_schema_is_the_documented_feature_spec(folders):
    tf = pytest.importorskip("tensorflow")
    from synthtext_industrial import data

    for kind, table, spec in (("images", PAGE_FEATURES, data.PAGE_FEATURE_SPEC),
                              ("crops", CROP_FEATURES, data.CROP_FEATURE_SPEC)):
        path = sorted((folders / "tfrecord" / ("tfrecord" if kind == "images" else "crops")).glob("*.tfrecord"))[0]
        for raw in tf.data.TFRecordDataset(str(path)):
            assert set(tf.train.Example.FromString(raw.numpy()).features.feature) == set(table)  # all documented
            f = tf.io.parse_single_example(raw, spec)
            assert f["schema"].numpy().decode().endswith("tfrecord-page/1" if kind == "images" else "tfrecord-crop/1")
            image = tf.io.decode_image(f["image/encoded"], channels=1).numpy()
            assert image.shape[:2] == (f["image/height"].numpy(), f["image/width"].numpy())
            if kind == "crops":
                assert f["image/source_id"].numpy().decode().count(":") == 2 and f["image/text"].numpy()
                continue
            gt = json.loads(f["image/ground_truth"].numpy())
            lines = gt["lines"]
            assert [t.decode() for t in f["image/object/text"].numpy()] == [line["text"] for line in lines]
            quads = f["image/object/quad"].numpy()
            np.testing.assert_array_equal(quads, np.array([line["quad"] for line in lines], np.float32))
            np.testing.assert_allclose(f["image/object/bbox/xmin"].numpy(), quads[:, :, 0].min(1) / gt["width"],
                                       rtol=1e-6)
            np.testing.assert_allclose(f["image/object/bbox/ymax"].numpy(), quads[:, :, 1].max(1) / gt["height"],
                                       rtol=1e-6)
            chars = [(number, c) for number, line in enumerate(lines) for c in line["chars"]]
            assert f["image/object/char/line"].numpy().tolist() == [number for number, _ in chars]
            assert [t.decode() for t in f["image/object/char/text"].numpy()] == [c["char"] for _, c in chars]
            assert f["image/object/char/quad"].shape == (len(chars), 4, 2)
            assert f["image/source_id"].numpy().decode() == f"{gt['seed']}:{gt['index']}"


def test_shard_shuffle_is_repeatable_with_a_seed(folders):
    pytest.importorskip("tensorflow")

    def order(fmt: str, seed: int) -> list[bytes]:
        dataset = tf_dataset(folders / fmt, shuffle_shards=True, seed=seed, cycle_length=1, decode=False)
        return [e["source_id"].numpy() for e in dataset]

    orders = {seed: order("tfrecord", seed) for seed in range(4)}
    assert all(sorted(o) == sorted(orders[0]) and len(o) == N for o in orders.values())
    assert len({tuple(o) for o in orders.values()}) > 1  # the shard order does change with the seed
    assert order("tfrecord", 2) == orders[2] == order("lmdb", 2)


def test_tf_dataset_undecoded_and_damaged(tmp_path):
    tf = pytest.importorskip("tensorflow")
    generate(recipe_from_dict(TINY), tmp_path / "ds", n=3, seed=1, shard_size=3, workers=1, with_crops=False)
    shutil.copytree(tmp_path / "ds", tmp_path / "damaged")
    _flip_a_byte_in_image(tmp_path / "damaged" / "lmdb" / "shard-00000", 2)
    stored = stored_images(tmp_path / "ds" / "lmdb" / "shard-00000")
    assert [e["image"].numpy() for e in tf_dataset(tmp_path / "ds", decode=False)] == stored
    with pytest.raises(tf.errors.OpError, match=r"shard-00000 record 2: checksum mismatch"):
        list(tf_dataset(tmp_path / "damaged"))


# ----------------------------------------------------------------------------- batching

def test_collate_fn_batches_pages_with_their_varying_lines(folders):
    """What a PyTorch DataLoader calls with a list of items; NumPy only (torch need not be installed)."""
    from synthtext_industrial.data import collate_fn

    pages = LmdbDataset(folders / "lmdb")
    items = [pages[i] for i in range(N)]
    assert len({len(item["texts"]) for item in items}) > 1  # the pages really differ in line count
    batch = collate_fn(items)
    assert batch["image"].shape == (N, 240, 320) and batch["image"].dtype == np.uint8
    assert np.array_equal(batch["image"][4], items[4]["image"]) and batch["image_shape"].tolist() == [[240, 320]] * N
    assert batch["index"].tolist() == [item["index"] for item in items] and batch["texts"][2] == items[2]["texts"]
    # the packed lines and characters give back each page's own
    for k, item in enumerate(items):
        assert np.array_equal(batch["line_quads"][batch["line_page"] == k], item["line_quads"])
    lines = [(k, line) for k, item in enumerate(items) for line in range(len(item["texts"]))]
    for number, (k, line) in enumerate(lines):
        mine = batch["char_line"] == number
        assert np.array_equal(batch["char_quads"][mine], items[k]["char_quads"][line])
        assert [c for c, m in zip(batch["char_texts"], mine) if m] == items[k]["char_texts"][line]
    assert batch["line_quads"].dtype == batch["char_quads"].dtype == np.float32
    assert batch["line_page"].dtype == batch["char_line"].dtype == np.int64


def test_collate_fn_pads_crops_of_different_sizes(folders):
    from synthtext_industrial.data import collate_fn

    crops = LmdbDataset(folders / "lmdb", "crops")
    items = [crops[i] for i in range(6)]
    assert len({item["image"].shape for item in items}) > 1
    batch = collate_fn(items)
    height, width = max(i["image"].shape[0] for i in items), max(i["image"].shape[1] for i in items)
    assert batch["image"].shape == (6, height, width) and batch["text"] == [i["text"] for i in items]
    for k, item in enumerate(items):
        h, w = batch["image_shape"][k]
        assert (h, w) == item["image"].shape and np.array_equal(batch["image"][k, :h, :w], item["image"])
        assert not batch["image"][k, h:].any() and not batch["image"][k, :, w:].any()
    with pytest.raises(ValueError, match="at least one"):
        collate_fn([])


def test_collate_fn_in_a_torch_dataloader(folders):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from synthtext_industrial.data import collate_fn

    loader = DataLoader(LmdbDataset(folders / "lmdb"), batch_size=3, collate_fn=collate_fn, num_workers=2)
    batches = list(loader)
    assert [len(b["texts"]) for b in batches] == [3, 3, 1]
    assert torch.from_numpy(batches[0]["image"]).shape == (3, 240, 320)


@pytest.mark.parametrize("fmt", ["lmdb", "tfrecord"])
def test_ragged_batch_batches_pages_in_tf_data(folders, fmt):
    tf = pytest.importorskip("tensorflow")
    from synthtext_industrial.data import ragged_batch

    pages = LmdbDataset(folders / "lmdb")
    by_source = {item["source_id"]: item for item in pages}
    batches = list(ragged_batch(tf_dataset(folders / fmt, cycle_length=1), 3))
    assert [b["image"].shape[0] for b in batches] == [3, 3, 1]
    first = batches[0]
    assert not isinstance(first["image"], tf.RaggedTensor) and first["image"].shape == (3, 240, 320, 1)
    assert isinstance(first["texts"], tf.RaggedTensor) and first["char_quads"].ragged_rank == 2
    for batch in batches:
        for k, source in enumerate(batch["source_id"].numpy()):
            item = by_source[source.decode()]
            assert np.array_equal(batch["image"][k, ..., 0].numpy(), item["image"])
            assert [t.decode() for t in batch["texts"][k].numpy()] == item["texts"]
            assert np.array_equal(batch["line_quads"][k].numpy().reshape(-1, 4, 2), item["line_quads"])
            assert [[c.decode() for c in line] for line in batch["char_texts"][k].to_list()] == item["char_texts"]
            for quads, expected in zip(batch["char_quads"][k], item["char_quads"], strict=True):
                assert np.array_equal(np.reshape(quads, (-1, 4, 2)), expected)
    assert len(list(ragged_batch(tf_dataset(folders / fmt), 3, drop_remainder=True))) == 2
    crops = next(iter(ragged_batch(tf_dataset(folders / fmt, "crops"), 4)))
    assert isinstance(crops["image"], tf.RaggedTensor) and crops["text"].shape == (4,)
