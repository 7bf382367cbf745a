"""CTC decoding and the accuracy metrics, against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthtext_industrial.train.text import Charset, accuracy, char_accuracy, ctc_greedy, edit_distance, normalise


def one_hot_logits(path: list[int], classes: int) -> np.ndarray:
    logits = np.full((len(path), classes), -5.0, np.float32)
    logits[np.arange(len(path)), path] = 5.0
    return logits[None]


def test_greedy_merges_repeats_and_drops_blanks():
    charset = Charset("AB1")  # blank = 3
    # A A blank A B B blank blank 1  ->  A A B 1 (the blank separates the two As)
    path = [0, 0, 3, 0, 1, 1, 3, 3, 2]
    labels = ctc_greedy(one_hot_logits(path, 4), charset.blank)
    assert labels == [[0, 0, 1, 2]] and charset.decode(labels[0]) == "AAB1"


def test_greedy_respects_sequence_lengths():
    logits = np.concatenate([one_hot_logits([0, 3, 1, 1], 4), one_hot_logits([2, 2, 3, 0], 4)])
    assert ctc_greedy(logits, 3, lengths=[2, 4]) == [[0], [2, 0]]


def test_beam_search_sums_the_paths_of_a_labelling():
    """Two steps over {A, blank}, each 0.4 / 0.6: the best path is blank-blank ("", 0.36), but "A" has three
    paths (A A, A -, - A: 0.16 + 0.24 + 0.24 = 0.64), so beam search reads "A" and greedy reads ""."""
    pytest.importorskip("tensorflow")
    from synthtext_industrial.train.text import ctc_beam

    logits = np.log(np.array([[[0.4, 0.6], [0.4, 0.6]]], np.float32))
    assert ctc_greedy(logits, blank=1) == [[]]
    labels, probability = ctc_beam(logits, blank=1, beam_width=4)
    assert labels == [[0]] and probability[0] == pytest.approx(0.64, abs=1e-4)
    # on a confident sequence both agree, repeats and blanks handled as greedy does
    path = [0, 0, 3, 0, 1, 1, 3, 3, 2]
    sure = np.concatenate([one_hot_logits(path, 4), one_hot_logits([2, 2, 3, 3, 3, 3, 3, 3, 3], 4)])
    assert ctc_beam(sure, 3)[0] == ctc_greedy(sure, 3) == [[0, 0, 1, 2], [2]]
    with pytest.raises(ValueError, match="blank last"):
        ctc_beam(sure, 0)


def test_charset_encode_refuses_unknown_characters():
    charset = Charset("0123456789")
    assert charset.encode("907") == [9, 0, 7]
    with pytest.raises(ValueError, match="'X'"):
        charset.encode("9X")
    with pytest.raises(ValueError, match="repeated"):
        Charset("AA")


@pytest.mark.parametrize("a, b, distance", [("", "", 0), ("ABC", "", 3), ("kitten", "sitting", 3),
                                            ("LOT123", "L0T123", 1), ("AB", "BA", 2), ("12345", "1245", 1)])
def test_edit_distance(a, b, distance):
    assert edit_distance(a, b) == distance == edit_distance(b, a)


def reference_edit_distance(a: str, b: str) -> int:
    """The hand-written dynamic programme trainers/text.py used before rapidfuzz (0.3.0), kept as the oracle."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# small alphabets make near misses (the interesting case) common; the full range catches Unicode handling
TEXTS = st.one_of(st.text("AB01 ", max_size=12), st.text("0O1IL8B5S-/. ", max_size=40), st.text(max_size=30))


@settings(max_examples=2000, derandomize=True, deadline=None, database=None)
@given(a=TEXTS, b=TEXTS)
def test_edit_distance_is_the_old_implementation(a, b):
    assert edit_distance(a, b) == reference_edit_distance(a, b)
    assert isinstance(edit_distance(a, b), int)


def test_accuracy_as_in_table_2():
    truths = ["LOT123", "EXP2026", "AB", "X"]
    predictions = ["LOT123", "EXP2O26", "ABC", ""]
    result = accuracy(truths, predictions)
    assert result.string_accuracy == pytest.approx(1 / 4)
    # char accuracy: 1, 1 - 1/7, 1 - 1/3, 0  -> mean
    assert result.char_accuracy == pytest.approx((1 + 6 / 7 + 2 / 3 + 0) / 4)
    assert char_accuracy("", "") == 1.0


def test_ignore_case_and_character_subset():
    assert normalise("Lot 12-a", ignore_case=True, only="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "LOT12A"
    result = accuracy(["lot-12"], ["LOT12"], ignore_case=True, only="LOT0123456789")
    assert result.string_accuracy == 1.0
    assert accuracy(["lot-12"], ["LOT12"]).string_accuracy == 0.0
