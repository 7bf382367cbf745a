"""Our crops as deep-text-recognition-benchmark (DTRB) reads them, with the flags docs/formats.md gives.

`DtrbLmdbDataset` below is DTRB's own label handling, copied from clovaai/deep-text-recognition-benchmark
(dataset.py, `LmdbDataset.__init__` filtering and `__getitem__` label clean-up, commit e2117f2, Apache-2.0,
Copyright (c) 2019-present NAVER Corp.), with the image decoding and torch parts left out; `SENSITIVE` is
what its train.py sets `opt.character` to under `--sensitive`.
"""
from __future__ import annotations

import re
import shlex
import string
from types import SimpleNamespace

import lmdb
import pytest

from synthtext_industrial import recipe_from_dict
from synthtext_industrial.store.readers import dtrb_character
from synthtext_industrial.data import dtrb_options
from synthtext_industrial.generate import generate
from synthtext_industrial.store.shards import iter_shard

SENSITIVE = string.printable[:-6]  # train.py: `if opt.sensitive: opt.character = string.printable[:-6]`


class DtrbLmdbDataset:
    """DTRB's LmdbDataset, labels only (verbatim logic, see the module docstring)."""

    def __init__(self, root, opt):
        self.root = root
        self.opt = opt
        self.env = lmdb.open(root, max_readers=32, readonly=True, lock=False, readahead=False, meminit=False)
        with self.env.begin(write=False) as txn:
            nSamples = int(txn.get('num-samples'.encode()))
            self.nSamples = nSamples
            if self.opt.data_filtering_off:
                self.filtered_index_list = [index + 1 for index in range(self.nSamples)]
            else:
                self.filtered_index_list = []
                for index in range(self.nSamples):
                    index += 1  # lmdb starts with 1
                    label_key = 'label-%09d'.encode() % index
                    label = txn.get(label_key).decode('utf-8')
                    if len(label) > self.opt.batch_max_length:
                        continue
                    out_of_char = f'[^{self.opt.character}]'
                    if re.search(out_of_char, label.lower()):
                        continue
                    self.filtered_index_list.append(index)
                self.nSamples = len(self.filtered_index_list)

    def __len__(self):
        return self.nSamples

    def label(self, index):
        index = self.filtered_index_list[index]
        with self.env.begin(write=False) as txn:
            label_key = 'label-%09d'.encode() % index
            label = txn.get(label_key).decode('utf-8')
        if not self.opt.sensitive:
            label = label.lower()
        out_of_char = f'[^{self.opt.character}]'
        label = re.sub(out_of_char, '', label)
        return label


def dtrb_opt(character: str, batch_max_length: int = 25, sensitive: bool = False, data_filtering_off: bool = False):
    return SimpleNamespace(character=character, batch_max_length=batch_max_length, sensitive=sensitive,
                           data_filtering_off=data_filtering_off, rgb=False)


SPACED = {"canvas": {"width": 640, "height": 240}, "typography": {"height_px": [10, 16]},
          "text": {"blocks": [{"lines": ["LOT {9:4}-{A:2}", "EXP 12/{9:2}.{9:1}"]},
                              {"lines": ["{X:3} {9:2}:{9:2} {A:16}"]}]}}


@pytest.fixture(scope="module")
def spaced(tmp_path_factory):
    out = tmp_path_factory.mktemp("dtrb") / "ds"
    generate(recipe_from_dict(SPACED), out, n=8, seed=2, shard_size=5, workers=1)
    return out


def our_labels(folder) -> list[str]:
    """The crop labels as written (read through a borrowed reader: DTRB opens the shards itself after)."""
    return [record.text for path in sorted((folder / "crops").iterdir()) for record in iter_shard("lmdb", "crops", path)]


def read_as_dtrb(folder, opt) -> list[str]:
    labels = []
    for path in sorted((folder / "crops").iterdir()):
        data = DtrbLmdbDataset(str(path), opt)
        labels += [data.label(i) for i in range(len(data))]
        data.env.close()
    return labels


def test_the_documented_flags_keep_every_crop_and_every_space(spaced):
    ours = our_labels(spaced)
    assert sum(" " in text for text in ours) >= 8 and any(len(text) > 20 for text in ours)
    options = dtrb_options(spaced)
    assert options["batch_max_length"] == max(len(text) for text in ours)
    assert options["character"].endswith("-") and " " in options["character"]
    # what DTRB trains on: every crop, its label lowercased (DTRB without --sensitive), spaces kept
    assert read_as_dtrb(spaced, dtrb_opt(**options)) == [text.lower() for text in ours]
    # `inspect` prints them, quoted for the shell
    from click.testing import CliRunner

    from synthtext_industrial.cli import main

    report = CliRunner().invoke(main, ["inspect", str(spaced), "--pages", "0"]).output
    flags = shlex.split(next(line for line in report.splitlines() if line.startswith("DTRB flags"))[11:])
    assert flags == ["--character", options["character"], "--batch_max_length", str(options["batch_max_length"])]


def test_sensitive_loses_the_spaced_labels(spaced):
    """What docs/formats.md used to advise: --sensitive drops every crop with a space, or (with
    --data_filtering_off) every space from the labels."""
    ours = our_labels(spaced)
    filtered = read_as_dtrb(spaced, dtrb_opt(SENSITIVE, 40, sensitive=True))
    assert filtered == [text for text in ours if " " not in text] and len(filtered) < len(ours)
    unfiltered = read_as_dtrb(spaced, dtrb_opt(SENSITIVE, 40, sensitive=True, data_filtering_off=True))
    assert unfiltered == [text.replace(" ", "") for text in ours]
    # the default batch_max_length (25) drops the long lines
    assert len(read_as_dtrb(spaced, dtrb_opt(dtrb_options(spaced)["character"]))) < len(ours)


@pytest.mark.parametrize("charset", ["AB-C 0", "-AZ", "a]b", "x^y", "\\\\q", "[ab]", "^-", "Éé ẞ"])
def test_the_character_string_is_safe_in_dtrbs_regex(charset):
    """Characters with a meaning in a regex class keep their plain meaning; nothing outside the charset slips in."""
    character = dtrb_character(charset)
    opt = dtrb_opt(character, 50)
    keep = f"[^{opt.character}]"  # DTRB's own expression
    for label in [charset, charset[::-1], charset * 2]:
        assert not re.search(keep, label.lower()), (label, character)  # the filter keeps it
        assert re.sub(keep, "", label.lower()) == label.lower()  # the clean-up changes nothing
    outside = "".join(c for c in string.printable + "ÀÉ" if c.lower() not in charset.lower())
    assert all(re.search(keep, c.lower()) for c in outside), character  # anything else is still filtered
