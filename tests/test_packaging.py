"""A built wheel carries the fonts, backgrounds and recipes, and renders from outside the source tree."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from .conftest import REPO


def test_wheel_installs_and_renders_outside_the_tree(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(dist), str(REPO)], check=True)
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "synthtext_industrial/_assets/fonts/ocr-a/OCRA.ttf" in names
    assert "synthtext_industrial/_assets/fonts/NOTICE" in names
    assert "synthtext_industrial/_assets/fonts/bitmap/x11-misc-fixed-6x12.json" in names
    assert "synthtext_industrial/_assets/backgrounds/NOTICE" in names
    assert "synthtext_industrial/_assets/recipes/default.yaml" in names
    assert {f"synthtext_industrial/export/jetson_kit/{f}" for f in ("infer.py", "build_engine.sh", "convert_tftrt.py", "README.md")} \
        <= set(names)  # export copies the Jetson kit from the installed package

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    code = (
        "import synthtext_industrial as s; from synthtext_industrial.core.assets import bundled_dir;"
        "assert str(bundled_dir('fonts')).startswith(%r), bundled_dir('fonts');"
        "r = s.load_recipe('default');"
        "x = s.render_sample(r, 0, 1);"
        "print(x.image.shape, len(x.lines))"
    ) % str(target)
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, capture_output=True,
                         text=True)
    assert "(1200, 1600)" in out.stdout
