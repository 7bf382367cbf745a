"""Each stage draws from its own random stream: a draw added to one stage changes no other stage's draws."""
from __future__ import annotations

import numpy as np
import pytest

import synthtext_industrial.render as render
from synthtext_industrial import recipe_from_dict, render_sample
from synthtext_industrial.core.streams import STAGE_STREAMS, SampleStreams, stage_rng

# legibility floors off: a floor can redraw effects or strengthen a mark depending on the pixels, which is a
# dependence through the page, not through the streams
RECIPE = {"canvas": {"width": 640, "height": 480}, "colour": {"min_legibility": 0},
          "effects": {"min_legibility": 0, "highlights": {"p": 1.0}, "noise": {"p": 1.0}},
          "layout": {"blocks": [2, 3]}, "typography": {"height_px": [20, 40]}}
DRAWN = ("template", "font", "dot_style", "height_px", "char_gap", "aspect", "stroke_px", "line_spacing",
         "alignment", "rotation", "region")


def extra_draw(monkeypatch, name: str, stream_arg: int) -> None:
    """Make render's `name` draw one more number from the generator it is given (argument `stream_arg`)."""
    real = getattr(render, name)

    def drawing_more(*args, **kwargs):
        args[stream_arg].random()
        return real(*args, **kwargs)

    monkeypatch.setattr(render, name, drawing_more)


def pages(recipe, n: int = 6):
    return [render_sample(recipe, 3, i) for i in range(n)]


def test_stage_streams_are_distinct_and_a_function_of_seed_index_and_stage():
    assert len(set(STAGE_STREAMS.values())) == len(STAGE_STREAMS)
    first = {stage: stage_rng(3, 5, stage).random() for stage in STAGE_STREAMS}
    assert len(set(first.values())) == len(first)
    assert first == {stage: stage_rng(3, 5, stage).random() for stage in STAGE_STREAMS}
    assert stage_rng(3, 6, "text").random() != first["text"] and stage_rng(4, 5, "text").random() != first["text"]
    blocks = [stage_rng(3, 5, "text", k).random() for k in range(3)]
    assert len(set(blocks + [first["text"]])) == 4
    streams = SampleStreams(3, 5)
    assert streams.page("effects") is streams.page("effects") and streams.block("text", 1).random() == blocks[1]


def test_one_more_background_draw_changes_no_text_layout_or_effects(monkeypatch):
    recipe = recipe_from_dict(RECIPE)
    before = pages(recipe)
    extra_draw(monkeypatch, "sample_background", 1)
    after = pages(recipe)
    assert any(a.records["background"] != b.records["background"] for a, b in zip(before, after))
    for a, b in zip(before, after):
        assert [line.text for line in a.lines] == [line.text for line in b.lines]
        for la, lb in zip(a.lines, b.lines):  # the same places: the text's geometry draws nothing from the surface
            assert np.array_equal(la.quad, lb.quad) and all(np.array_equal(ca.quad, cb.quad)
                                                            for ca, cb in zip(la.chars, lb.chars))
        assert [{k: blk[k] for k in DRAWN + ("position",)} for blk in a.records["blocks"]] == \
            [{k: blk[k] for k in DRAWN + ("position",)} for blk in b.records["blocks"]]
        assert [blk["marking"]["kind"] for blk in a.records["blocks"]] == \
            [blk["marking"]["kind"] for blk in b.records["blocks"]]
        assert a.records["camera_tilt"] == b.records["camera_tilt"]
        assert a.records["effects"] == b.records["effects"]


@pytest.mark.parametrize("stage, name, stream_arg", [("text", "fill_block", 2), ("marking", "sample_marking", 2)])
def test_one_more_draw_in_a_stage_changes_no_other_stage(monkeypatch, stage, name, stream_arg):
    recipe = recipe_from_dict(RECIPE)
    before = pages(recipe)
    extra_draw(monkeypatch, name, stream_arg)
    after = pages(recipe)
    if stage == "text":
        assert any([line.text for line in a.lines] != [line.text for line in b.lines] for a, b in zip(before, after))
    else:
        assert any(a.records["blocks"] != b.records["blocks"] for a, b in zip(before, after))
    for a, b in zip(before, after):
        assert a.records["background"] == b.records["background"] and a.records["camera_tilt"] == b.records["camera_tilt"]
        assert a.records["effects"] == b.records["effects"]
        # every other stage's draws of every block: font, typography, layout (the position depends on the
        # text's size, so it is compared only when the text is the same)
        assert [{k: blk[k] for k in DRAWN} for blk in a.records["blocks"]] == \
            [{k: blk[k] for k in DRAWN} for blk in b.records["blocks"]]
        if stage == "marking":
            assert [line.text for line in a.lines] == [line.text for line in b.lines]
            assert all(np.array_equal(la.quad, lb.quad) for la, lb in zip(a.lines, b.lines))
            assert [blk["position"] for blk in a.records["blocks"]] == [blk["position"] for blk in b.records["blocks"]]
        else:  # the marking's own draws (the ink's tone is resolved against the surface under the new text)
            assert [blk["marking"]["kind"] for blk in a.records["blocks"]] == \
                [blk["marking"]["kind"] for blk in b.records["blocks"]]
