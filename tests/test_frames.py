"""Frame ground truth (labels.jsonl and ICDAR 2015 txt), quad IoU, matching with don't-care regions and the scores,
all on hand-computed cases; synthetic pages written out as frames read back identically in both formats."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from synthtext_industrial import recipe_from_dict
from synthtext_industrial.generate import generate
from synthtext_industrial.train.frames import (FrameLabelError, FrameResult, box_quads, load_frames, match_quads,
                                               quad_iou, read_icdar_folder, read_labels_jsonl, score_frames,
                                               write_frame_labels, write_predictions)


def square(cx: float, cy: float, side: float, degrees: float = 0.0) -> np.ndarray:
    """Clockwise (in image coordinates, y down) from the top-left."""
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    h = side / 2
    return np.array([[-h, -h], [h, -h], [h, h], [-h, h]]) @ rot.T + [cx, cy]


def test_quad_iou_of_known_shapes():
    a = square(0, 0, 10)
    assert quad_iou(a, a) == pytest.approx(1.0)
    assert quad_iou(a, square(5, 0, 10)) == pytest.approx(50 / 150)  # half overlap
    assert quad_iou(a, square(20, 0, 10)) == 0.0
    assert quad_iou(square(0, 0, 20), a) == pytest.approx(100 / 400)  # nested
    # the square and itself turned 45 degrees: an octagon of 200(sqrt2 - 1); IoU = 1/sqrt2
    assert quad_iou(a, square(0, 0, 10, 45)) == pytest.approx(1 / math.sqrt(2), abs=1e-4)
    # turned 90 degrees (the same region, another first point) and listed counter-clockwise: the same region
    assert quad_iou(a, square(0, 0, 10, 90)) == pytest.approx(1.0)
    assert quad_iou(a, a[::-1]) == pytest.approx(1.0)
    # a rotated rectangle against its bounding box: 2x1 rectangle turned 30 degrees
    rect = np.array([[-1, -0.5], [1, -0.5], [1, 0.5], [-1, 0.5]]) @ np.array(
        [[math.cos(math.pi / 6), -math.sin(math.pi / 6)], [math.sin(math.pi / 6), math.cos(math.pi / 6)]]).T
    bounds = box_quads([[*rect.min(0), *rect.max(0)]])[0]
    area_box = np.prod(rect.max(0) - rect.min(0))
    assert quad_iou(rect, bounds) == pytest.approx(2.0 / area_box, abs=1e-4)  # the rectangle lies inside its box
    assert quad_iou(a, [[0, 0], [10, 0], [20, 0], [30, 0]]) == 0.0  # degenerate


def test_box_quads_run_clockwise_from_top_left():
    np.testing.assert_array_equal(box_quads([[1, 2, 5, 7]])[0], [[1, 2], [5, 2], [5, 7], [1, 7]])


def boxes(*rows):
    return box_quads(rows)


def test_matching_is_greedy_by_score_and_skips_dont_care():
    gt = boxes([0, 0, 100, 20], [0, 40, 100, 60], [0, 80, 100, 100])
    ignore = [False, True, False]
    pred = boxes([0, 0, 100, 20],  # p0: exact on line 0, but scored below p4
                 [0, 42, 60, 58],  # p1: inside the don't-care region: dropped
                 [80, 40, 200, 60],  # p2: 1/6 inside the don't-care region: a false positive
                 [2, 80, 100, 100],  # p3: on line 2
                 [0, 0, 90, 20])  # p4: IoU 0.9 with line 0, best score
    scores = [0.9, 0.8, 0.85, 0.7, 0.95]
    pairs, dropped = match_quads(pred, scores, gt, ignore)
    assert sorted(pairs) == [(3, 2), (4, 0)] and dropped == [1]
    # without the don't-care flag, p1 would be a plain false positive (IoU 0.48 with line 1)
    pairs, dropped = match_quads(pred, scores, gt)
    assert dropped == [] and (1, 1) not in pairs

    frame = FrameResult("a", gt, ["AB12", "###", "C3"], ignore, pred, ["AB12", "X", "Y", "C3", "AB1"], scores)
    empty = FrameResult("b", np.zeros((0, 4, 2)), [], [], np.zeros((0, 4, 2)), [], [])
    score = score_frames([frame, empty])
    assert (score.frames, score.gt_lines, score.ignored_lines, score.detections, score.ignored_detections,
            score.matched, score.correct) == (2, 2, 1, 4, 1, 2, 1)
    assert score.precision == pytest.approx(2 / 4) and score.recall == pytest.approx(1.0)
    assert score.f1 == pytest.approx(2 * 0.5 / 1.5)
    assert score.e2e_precision == pytest.approx(1 / 4) and score.e2e_recall == pytest.approx(1 / 2)
    assert score.e2e_f1 == pytest.approx(2 * 0.125 / 0.75)
    assert score.string_accuracy == pytest.approx(1 / 2)
    assert score.char_accuracy == pytest.approx((0.75 + 1.0) / 2)  # AB12 read AB1: 1 - 1/4
    assert score.frame_accuracy == pytest.approx(1 / 2)  # the empty frame is perfect
    assert "end to end" in score.table() and "0.3333" in score.table()


def test_normalised_comparison_and_predictions_csv_recompute_the_scores(tmp_path):
    gt = boxes([0, 0, 100, 20], [0, 40, 100, 60])
    frame = FrameResult("f.png", gt, ["Ab-12", "CD"], [False, False], boxes([0, 0, 100, 20], [300, 0, 400, 20]),
                        ["AB12", "CD"], [0.9, 0.8], ignore_case=True, only="ABCD0123456789")
    score = score_frames([frame])
    assert (score.matched, score.correct, score.detections) == (1, 1, 2)
    write_predictions(tmp_path / "p.csv", [frame])
    rows = list(csv.DictReader(open(tmp_path / "p.csv", encoding="utf-8")))
    assert [r["status"] for r in rows] == ["matched", "missed", "false_positive"]
    assert rows[0]["correct"] == "1" and float(rows[0]["iou"]) == pytest.approx(1.0)


def write_both_formats(folder, lines_per_image):
    """The same ground truth as labels.jsonl and as ICDAR txt files (with a BOM, a comma in a text)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, lines in lines_per_image.items():
        cv2.imwrite(str(folder / f"{name}.png"), np.zeros((50, 80), np.uint8))
        rows.append(json.dumps({"image": f"{name}.png", "lines": [
            {"quad": q, "text": t} if t != "ignored" else {"quad": q, "ignore": True} for q, t in lines]}))
        txt = "".join(",".join(str(v) for p in q for v in p) + "," + ("###" if t == "ignored" else t) + "\r\n"
                      for q, t in lines)
        (folder / f"gt_{name}.txt").write_bytes(b"\xef\xbb\xbf" + txt.encode("utf-8"))
    (folder / "labels.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_both_formats_parse_identically(tmp_path):
    quad = [[1, 2], [30.5, 2], [30.5, 12], [1, 12]]
    write_both_formats(tmp_path / "f", {"a": [(quad, "LOT 12,3"), (quad, "ignored"), (quad, "###")],
                                        "b": [], "c": [(quad, "Ä1")]})
    from_jsonl, from_icdar = read_labels_jsonl(tmp_path / "f" / "labels.jsonl"), read_icdar_folder(tmp_path / "f")
    assert [f.image.name for f in from_jsonl] == [f.image.name for f in from_icdar] == ["a.png", "b.png", "c.png"]
    for x, y in zip(from_jsonl, from_icdar):
        assert [(t.text, t.ignore) for t in x.lines] == [(t.text, t.ignore) for t in y.lines]
        for s, t in zip(x.lines, y.lines):
            np.testing.assert_array_equal(s.quad, t.quad)
    assert [(t.text, t.ignore) for t in from_jsonl[0].lines] == [("LOT 12,3", False), ("###", True), ("###", True)]
    # load_frames prefers FRAMES/labels.jsonl; without it, the ICDAR files
    assert len(load_frames(tmp_path / "f")) == 3
    (tmp_path / "f" / "labels.jsonl").unlink()
    assert [t.text for t in load_frames(tmp_path / "f")[2].lines] == ["Ä1"]


@pytest.mark.parametrize("content, message", [
    ('{"image": "a.png", "lines": []}\n{"image": "a.png", "lines": [', "labels.jsonl:2: not valid JSON"),
    ('{"lines": []}', "labels.jsonl:1: expected an object with \"image\""),
    ('\n{"image": "a.png", "lines": [{"quad": [[0, 0], [1, 0], [1, 1]], "text": "A"}]}',
     "labels.jsonl:2: line 0: quad must be 4 [x, y] points"),
    ('{"image": "a.png", "lines": [{"quad": [[0, 0], [1, 0], [1, 1], [0, 1]], "text": 5}]}',
     "labels.jsonl:1: line 0: \"text\" must be a string"),
    ('{"image": "a.png", "lines": [{"quad": [[0, 0], [1, 0], [1, 1], [0, 1]], "ignore": "yes"}]}',
     "\"ignore\" must be true or false"),
])
def test_bad_jsonl_files_name_file_and_line(tmp_path, content, message):
    (tmp_path / "labels.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(FrameLabelError, match=message.replace("[", r"\[")):
        read_labels_jsonl(tmp_path / "labels.jsonl")


@pytest.mark.parametrize("content, message", [
    ("1,2,3,4,5,6,7,8,A\n1,2,3,4,5,6,7,B\n", "gt_a.txt:2: expected x1,y1"),
    ("1,2,3,4,5,6,7,x,A\n", "gt_a.txt:1: the first 8 fields must be numbers"),
])
def test_bad_icdar_files_name_file_and_line(tmp_path, content, message):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4), np.uint8))
    (tmp_path / "gt_a.txt").write_text(content, encoding="utf-8")
    with pytest.raises(FrameLabelError, match=message):
        read_icdar_folder(tmp_path)


def test_missing_images_and_empty_folders_are_errors(tmp_path):
    with pytest.raises(FrameLabelError, match="no images"):
        read_icdar_folder(tmp_path)
    (tmp_path / "labels.jsonl").write_text('{"image": "gone.png", "lines": []}\n')
    with pytest.raises(FrameLabelError, match="gone.png does not exist"):
        load_frames(tmp_path)


def test_synthetic_pages_written_as_frames_read_back_in_both_formats(tmp_path):
    recipe = recipe_from_dict({"canvas": {"width": 320, "height": 240}, "typography": {"height_px": [30, 36]},
                               "text": {"blocks": [{"lines": ["{9:4}", "LOT {A:2}"]}]}})
    generate(recipe, tmp_path / "ds", n=2, seed=3, shard_size=2, workers=1, with_crops=False)
    assert write_frame_labels(tmp_path / "ds", tmp_path / "jsonl", "jsonl") == 2
    assert write_frame_labels(tmp_path / "ds", tmp_path / "icdar", "icdar", limit=1) == 1
    with pytest.raises(ValueError, match="format"):
        write_frame_labels(tmp_path / "ds", tmp_path / "x", "coco")
    jsonl, icdar = load_frames(tmp_path / "jsonl"), load_frames(tmp_path / "icdar")
    assert len(jsonl) == 2 and len(icdar) == 1 and jsonl[0].image.name == icdar[0].image.name
    assert [t.text for t in jsonl[0].lines] == [t.text for t in icdar[0].lines]
    assert len(jsonl[0].lines) == 2 and jsonl[0].lines[1].text.startswith("LOT ")
    for s, t in zip(jsonl[0].lines, icdar[0].lines):
        np.testing.assert_allclose(s.quad, t.quad, atol=0.01)
    # the frames score perfectly against their own ground truth
    result = FrameResult("p", [t.quad for t in jsonl[0].lines], [t.text for t in jsonl[0].lines], [False, False],
                         [t.quad for t in icdar[0].lines], [t.text for t in icdar[0].lines], [1.0, 1.0])
    assert score_frames([result]).e2e_f1 == 1.0
