"""A built wheel carries the fonts, backgrounds and recipes, and renders from outside the source tree."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

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


def _cli(target: Path, cwd: Path, *args: str, timeout: int = 600) -> str:
    """Run the installed CLI (only `target` on the path before the interpreter's own) from `cwd`."""
    env = dict(os.environ, PYTHONPATH=str(target), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-m", "synthtext_industrial.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_a_wheel_built_from_the_sdist_generates_trains_and_exports_outside_the_tree(tmp_path):
    """sdist -> wheel -> fresh install: every module of the package is in it, and the CLI's generate, train and
    export run from it (not from this checkout)."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(dist)], cwd=REPO,
                   check=True, capture_output=True)
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    package_files = {str(p.relative_to(REPO)) for p in (REPO / "synthtext_industrial").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts}
    assert package_files <= in_sdist, sorted(package_files - in_sdist)[:10]
    assert {"pyproject.toml", "README.md", "fonts/NOTICE", "recipes/default.yaml"} <= in_sdist

    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(sdist)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert package_files <= names, sorted(package_files - names)[:10]
    assert "synthtext_industrial/_assets/recipes/lines.yaml" in names
    assert not any(n.split("/", 1)[0] not in ("synthtext_industrial",) and not n.split("/", 1)[0].endswith(
        ".dist-info") for n in names), "a top-level package besides synthtext_industrial"

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run([sys.executable, "-c", "import synthtext_industrial as s; print(s.__file__)"], cwd=work,
                           env=dict(os.environ, PYTHONPATH=str(target)), capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(target)), where.stdout
    _cli(target, work, "generate", "lines", "-n", "16", "--shard-size", "8", "-o", "ds", "--workers", "1")
    _cli(target, work, "train", "recognizer", "--data", "ds", "--epochs", "1", "--steps-per-epoch", "2",
         "--batch-size", "4", "--out", "run")
    out = _cli(target, work, "export", "run", "-o", "exported", "--formats", "onnx", "--count", "4",
               "--repeats", "2", "--weights", "last")
    assert (work / "exported" / "recognizer.onnx").exists() and (work / "exported" / "jetson" / "infer.py").exists()
    assert "parity" in out
