"""TFRecord shards written without TensorFlow: TensorFlow must read them and re-serialise them to the same bytes."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthtext_industrial import recipe_from_dict, render_sample
from synthtext_industrial.render import encode_image
from synthtext_industrial.store.format import CorruptRecord
from synthtext_industrial.store.tfrecord_store import (TFRecordShardWriter, decode_example, encode_example, floats,
                                                       iter_records, page_example)

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
values = st.one_of(
    st.lists(st.binary(max_size=20), min_size=1, max_size=4),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4),
    st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=4).map(floats),
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(names, values, max_size=6))
def test_encode_decode_round_trip(features):
    assert decode_example(encode_example(features)) == {k: list(v) for k, v in features.items()}


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(names, values, max_size=6))
def test_tensorflow_reads_and_reserialises_the_same_bytes(features):
    tf = pytest.importorskip("tensorflow")
    data = encode_example(features)
    example = tf.train.Example.FromString(data)
    parsed = {k: list(getattr(v, v.WhichOneof("kind")).value) for k, v in example.features.feature.items()}
    assert parsed == {k: list(v) for k, v in features.items()}
    # Python protobuf (upb) orders a key after the longer keys it prefixes; ours never prefix one another
    if not any(a != b and b.startswith(a) for a in features for b in features):
        assert example.SerializeToString(deterministic=True) == data


def page_bytes():
    recipe = recipe_from_dict({"canvas": {"width": 320, "height": 240}, "typography": {"height_px": [16, 30]}})
    sample = render_sample(recipe, 0, 1)
    gt = json.dumps(sample.to_dict(), separators=(",", ":")).encode()
    return page_example(encode_image(sample.image, "png"), "png", gt), sample


def test_page_example_parses_with_the_documented_spec(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from synthtext_industrial.data import feature_spec

    example, sample = page_bytes()
    path = tmp_path / "x.tfrecord"
    writer = TFRecordShardWriter(path)
    writer.add(example)
    writer.add(example)
    writer.finish()
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert records == [example, example] == list(iter_records(path))
    assert tf.train.Example.FromString(example).SerializeToString(deterministic=True) == example
    parsed = tf.io.parse_single_example(records[0], feature_spec("images"))
    assert [t.decode() for t in parsed["image/object/text"].numpy()] == [line.text for line in sample.lines]
    for quad, line in zip(parsed["image/object/quad"].numpy(), sample.lines):
        assert abs(quad - line.quad).max() < 2e-3
    xmax = parsed["image/object/bbox/xmax"].numpy()
    assert all(abs(x - line.quad[:, 0].max() / 320) < 1e-5 for x, line in zip(xmax, sample.lines))
    assert parsed["image/object/char/line"].numpy().tolist() == [k for k, line in enumerate(sample.lines)
                                                                 for _ in line.chars]
    image = tf.io.decode_image(parsed["image/encoded"]).numpy()
    assert (image[..., 0] == sample.image).all()


def test_damage_is_named_by_record(tmp_path):
    example, _ = page_bytes()
    path = tmp_path / "x.tfrecord"
    writer = TFRecordShardWriter(path)
    for _ in range(3):
        writer.add(example)
    writer.finish()
    raw = bytearray(path.read_bytes())
    raw[len(example) + 16 + 12 + 500] ^= 0x04  # inside the second record's data
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptRecord, match="record 2: data checksum mismatch"):
        list(iter_records(path))
    path.write_bytes(bytes(raw[: len(raw) - 30]))
    with pytest.raises(CorruptRecord):
        list(iter_records(path))


def test_an_aborted_writer_leaves_nothing(tmp_path):
    writer = TFRecordShardWriter(tmp_path / "a.tfrecord")
    writer.add(b"x")
    writer.abort()
    assert list(tmp_path.iterdir()) == []
