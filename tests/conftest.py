"""Shared fixtures: recipes written to temporary folders, small canvases for speed."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLED_RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


@pytest.fixture
def write_recipe(tmp_path):
    """Write YAML text to a recipe file in a temporary folder and return its path."""

    def write(text: str, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
