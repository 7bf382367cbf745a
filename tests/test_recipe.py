"""Recipe loading: a mistake gives one readable error naming the file, the field and what is allowed."""
from __future__ import annotations

import pytest

from synthtext_industrial import RecipeError, load_recipe
from synthtext_industrial.recipe import resolve_recipe_path

from .conftest import BUNDLED_RECIPES


def error_of(write_recipe, text: str) -> str:
    path = write_recipe(text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert str(path) in message, "the error must name the recipe file"
    return message


def test_empty_recipe_gets_defaults(write_recipe):
    recipe = load_recipe(write_recipe(""))
    assert (recipe.canvas.width, recipe.canvas.height) == (1600, 1200)
    assert recipe.text.blocks, "a default text block is expected"


@pytest.mark.parametrize("path", BUNDLED_RECIPES, ids=lambda p: p.stem)
def test_bundled_recipes_load(path):
    recipe = load_recipe(path)
    assert recipe.sha256 and recipe.raw_text == path.read_text(encoding="utf-8")


def test_unknown_key_suggests_the_right_one(write_recipe):
    message = error_of(write_recipe, """
        layout:
          rotaton: [-5, 5]
    """)
    assert "layout" in message and "rotaton" in message
    assert "did you mean 'rotation'" in message


def test_unknown_top_level_section(write_recipe):
    message = error_of(write_recipe, "canvass: {width: 100}\n")
    assert "did you mean 'canvas'" in message


def test_min_greater_than_max_names_the_field(write_recipe):
    message = error_of(write_recipe, """
        typography:
          height_px: [80, 20]
    """)
    assert "typography.height_px" in message and "greater than max" in message


def test_out_of_range_says_what_is_allowed(write_recipe):
    message = error_of(write_recipe, """
        canvas: {width: 10}
    """)
    assert "canvas.width" in message and "64" in message


def test_wrong_type(write_recipe):
    message = error_of(write_recipe, """
        layout: {blocks: many}
    """)
    assert "layout.blocks" in message


def test_not_a_mapping(write_recipe):
    assert "mapping" in error_of(write_recipe, "- just\n- a list\n")


def test_yaml_tags_are_not_executed(write_recipe, tmp_path):
    marker = tmp_path / "pwned"
    message = error_of(write_recipe, f"""
        name: !!python/object/apply:os.system ["touch {marker}"]
    """)
    assert "YAML" in message
    assert not marker.exists()


def test_invalid_yaml_syntax(write_recipe):
    assert "YAML" in error_of(write_recipe, "canvas: {width: [1600\n")


def test_unknown_bundled_font_hint(write_recipe):
    message = error_of(write_recipe, """
        fonts:
          - font: ocr-aa
    """)
    assert "fonts[0].font" in message and "did you mean 'ocr-a'" in message


def test_font_missing_glyph_is_named_before_rendering(write_recipe):
    message = error_of(write_recipe, """
        text:
          blocks:
            - lines: ["LOT #{9:4}"]
        fonts:
          - font: dseg7
    """)
    assert "dseg7" in message and "#" in message and "text.blocks[0]" in message


def test_font_skip_uses_other_fonts(write_recipe):
    recipe = load_recipe(write_recipe("""
        text:
          blocks:
            - lines: ["LOT #{9:4}"]
            - lines: ["{9:4}"]
        fonts:
          - {font: dseg7, missing_glyphs: skip}
          - font: ocr-b
    """))
    labels0 = {getattr(face, "label", None) for face, _w in recipe.font_choices(0)}
    labels1 = {getattr(face, "label", None) for face, _w in recipe.font_choices(1)}
    assert labels0 == {"ocr-b"}
    assert labels1 == {"dseg7", "ocr-b"}


def test_no_font_can_draw(write_recipe):
    message = error_of(write_recipe, """
        text:
          blocks:
            - lines: ["{[#]}"]
        fonts:
          - {font: dseg7, missing_glyphs: skip}
    """)
    assert "text.blocks[0]" in message


def test_bitmap_font_coverage(write_recipe):
    message = error_of(write_recipe, """
        text:
          blocks:
            - lines: ["{[é]}"]
        fonts:
          - bitmap: 6x12
    """)
    assert "6x12" in message and "é" in message


def test_path_outside_allowed_roots_is_refused(write_recipe, tmp_path):
    outside = tmp_path.parent / "elsewhere-fonts"
    outside.mkdir(exist_ok=True)
    message = error_of(write_recipe, f"""
        fonts:
          - file: {outside}/x.ttf
    """)
    assert "outside the allowed folders" in message


def test_bundled_recipe_by_name():
    assert resolve_recipe_path("default").name == "default.yaml"
    with pytest.raises(RecipeError, match="bundled recipes"):
        resolve_recipe_path("no-such-recipe")
