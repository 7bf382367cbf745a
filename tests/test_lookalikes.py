"""Lookalikes: a font that draws O and 0 alike (up to width) never gets an O from a character class,
so no label asks a reader for a distinction the pixels do not hold."""
from __future__ import annotations

import numpy as np
import pytest

from synthtext_industrial import RecipeError, load_recipe
from synthtext_industrial.stages.fonts import catalog, lookalikes_to_avoid
from synthtext_industrial.render import render_sample
from synthtext_industrial.stages.text import TextConfig, fill_block

RECIPE = """
version: 1
canvas: {{width: 640, height: 200}}
text:
  lookalikes: {policy}
  blocks: [{{lines: ["{{X:12}}"]}}]
fonts: [{fonts}]
typography: {{height_px: [24, 30], aspect: [1, 1]}}
layout: {{blocks: [1, 1], rotation: [0, 0], perspective: [0, 0]}}
effects: {{highlights: {{p: 0}}, partial_blur: {{p: 0}}, noise: {{p: 0}}, tone: {{p: 0}}, vignetting: {{p: 0}}}}
"""


def texts_by_font(write_recipe, fonts: str, policy: str = "avoid", n: int = 60) -> dict[str, str]:
    recipe = load_recipe(write_recipe(RECIPE.format(fonts=fonts, policy=policy)))
    drawn: dict[str, str] = {}
    for index in range(n):
        sample = render_sample(recipe, 0, index)
        for block in sample.records["blocks"]:
            first, last = block["lines"]
            drawn[block["font"]] = drawn.get(block["font"], "") + "".join(line.text for line in sample.lines[first:last])
    return drawn


def test_catalogue_marks_the_fonts_whose_o_and_zero_differ_only_in_width():
    fonts = catalog()
    assert "0O" in fonts["bebas-neue"].lookalikes and "0O" in fonts["dinish"].lookalikes
    assert fonts["ocr-a"].lookalikes == () and fonts["dejavu-sans-mono"].lookalikes == ()  # slashed or dotted zero


def test_a_lookalike_font_draws_zero_but_never_o(write_recipe):
    drawn = texts_by_font(write_recipe, "{font: bebas-neue}, {font: ocr-a}")
    assert "O" not in drawn["bebas-neue"] and "0" in drawn["bebas-neue"]
    assert "O" in drawn["ocr-a"], "a font with a distinct zero keeps the letter O"


def test_keep_draws_every_character(write_recipe):
    drawn = texts_by_font(write_recipe, "{font: bebas-neue}", policy="keep")
    assert "O" in drawn["bebas-neue"]


def test_a_font_file_declares_its_lookalikes(write_recipe, tmp_path):
    source = catalog()["ocr-a"].path
    (tmp_path / "mine.ttf").write_bytes(source.read_bytes())
    drawn = texts_by_font(write_recipe, "{file: mine.ttf, lookalikes: ['0O', '1I']}")
    assert not set("OI") & set(drawn["mine.ttf"])
    assert {"0", "1"} <= set(drawn["mine.ttf"])


def test_the_avoided_characters_are_recorded(write_recipe):
    recipe = load_recipe(write_recipe(RECIPE.format(fonts="{font: dinish}", policy="avoid")))
    assert render_sample(recipe, 0, 0).records["blocks"][0]["avoided"] == "O"


def test_only_a_group_the_charset_can_print_twice_is_ambiguous():
    assert lookalikes_to_avoid(("0O",), frozenset("0123456789ABC")) == frozenset()  # no O at all
    assert lookalikes_to_avoid(("0O",), frozenset("ABCO")) == frozenset()  # no 0: an O is an O
    assert lookalikes_to_avoid(("0O", "1Il"), frozenset("01OIl")) == frozenset("OIl")


def test_avoiding_keeps_the_random_stream_aligned():
    """Avoiding draws as many numbers: what follows a block is the same either way."""
    cfg = TextConfig.model_validate({"blocks": [{"lines": ["{X:20}", "{9:3}"]}]})
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    plain = fill_block(cfg, 0, a, 0)
    avoided = fill_block(cfg, 0, b, 0, frozenset("O"))
    assert [len(line.text) for line in plain] == [len(line.text) for line in avoided]
    assert a.random() == b.random()


def test_a_class_made_only_of_avoided_characters_still_prints():
    cfg = TextConfig.model_validate({"blocks": [{"lines": ["{[O]:3}"]}]})
    assert fill_block(cfg, 0, np.random.default_rng(0), 0, frozenset("O"))[0].text == "OOO"


@pytest.mark.parametrize("groups, wrong", [("['0']", "'0'"), ("['00']", "'00'")])
def test_a_bad_lookalike_group_is_refused(write_recipe, groups, wrong):
    path = write_recipe(RECIPE.format(fonts="{font: dinish, lookalikes: " + groups + "}", policy="avoid"))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert str(path) in message and "lookalikes" in message and wrong in message and "2 or more" in message
