"""Every recipe field is documented in recipes/README.md."""
from __future__ import annotations

import importlib.util

from .conftest import REPO


def test_recipe_readme_documents_every_field():
    spec = importlib.util.spec_from_file_location("recipe_reference", REPO / "tools" / "recipe_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from synthtext_industrial.recipe import Recipe

    readme = (REPO / "recipes" / "README.md").read_text(encoding="utf-8")
    missing = [path for path, _default, _meaning in module.field_rows(Recipe, "", {Recipe})
               if f"`{path}`" not in readme]
    assert not missing, f"recipes/README.md lacks: {missing} (regenerate with tools/recipe_reference.py)"


def test_readme_example_recipe_is_valid_and_renders(tmp_path):
    import re
    import shutil

    import cv2
    import numpy as np

    from synthtext_industrial import load_recipe, render_sample

    readme = (REPO / "recipes" / "README.md").read_text(encoding="utf-8")
    example = re.search(r"## A complete example\n\n```yaml\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "recipe.yaml").write_text(example, encoding="utf-8")
    (tmp_path / "words.txt").write_text("ALPHA\nBRAVO\n", encoding="utf-8")
    (tmp_path / "fonts").mkdir()
    # a variable font: the example sets its wght axis (axes on a font without them are refused)
    shutil.copy(REPO / "fonts" / "doto" / "Doto[ROND,wght].ttf", tmp_path / "fonts" / "OurCoder.ttf")
    (tmp_path / "photos" / "line3").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "photos" / "line3" / "a.png"), np.full((300, 400), 128, np.uint8))
    recipe = load_recipe(tmp_path / "recipe.yaml")
    sample = render_sample(recipe, 0, 0)
    assert sample.lines and sample.image.shape == (1200, 1600)


def test_relative_links_in_the_docs_exist():
    """README and docs link each other; a renamed or missing file should fail here, not for a reader."""
    import re

    pages = [REPO / "README.md", REPO / "recipes" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert len(pages) > 4 and not broken, broken
