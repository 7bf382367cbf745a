"""The command line: thin over the library, readable errors with exit code 2, pictures that open."""
from __future__ import annotations

import json

import cv2
from click.testing import CliRunner

from synthtext_industrial.cli import main

SMALL = """
canvas: {width: 320, height: 240}
typography: {height_px: [16, 30]}
"""


def test_check_reports_charset(write_recipe):
    result = CliRunner().invoke(main, ["check", str(write_recipe(SMALL))])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "0123456789" in result.output


def test_recipe_error_exits_2_without_traceback(write_recipe):
    path = write_recipe("layout: {rotaton: 5}\n")
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert str(path) in result.output and "layout" in result.output and "did you mean 'rotation'" in result.output


def test_preview_writes_contact_sheet(write_recipe, tmp_path):
    out = tmp_path / "sheet.png"
    result = CliRunner().invoke(main, ["preview", str(write_recipe(SMALL)), "-n", "4", "-o", str(out),
                                       "--tile-width", "160"])
    assert result.exit_code == 0, result.output
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[1] == 2 * 160
    # boxes are drawn in colour on a grayscale page: some pixels must be clearly coloured
    b, g, r = cv2.split(sheet.astype(int))
    assert ((g - b > 60) & (g - r > 60)).sum() > 20


def test_render_writes_images_and_ground_truth(write_recipe, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["render", str(write_recipe(SMALL)), "-n", "3", "-o", str(out), "--seed", "5"])
    assert result.exit_code == 0, result.output
    gts = sorted(out.glob("*.json"))
    assert len(gts) == 3
    gt = json.loads(gts[0].read_text())
    assert gt["seed"] == 5 and gt["index"] == 0 and gt["lines"]
    image = cv2.imread(str(out / "000000000.png"), cv2.IMREAD_UNCHANGED)
    assert image.shape == (240, 320) and image.dtype == "uint8"


def test_fonts_lists_every_bundled_font_with_licence_and_coverage():
    result = CliRunner().invoke(main, ["fonts", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.output)}
    assert {"ocr-a", "dseg7", "doto-round", "bitmap:6x12"} <= set(rows)
    assert "no /#" in rows["dseg7"]["coverage"]
    assert rows["ocr-b"]["licence"] and rows["ocr-b"]["category"] == "ocr"


def test_help_shows_defaults():
    result = CliRunner().invoke(main, ["preview", "--help"])
    assert result.exit_code == 0 and "default: 16" in result.output


def test_generate_inspect_verify_round_trip(write_recipe, tmp_path):
    recipe = write_recipe(SMALL)
    out = tmp_path / "ds"
    result = CliRunner().invoke(main, ["generate", str(recipe), "-n", "5", "-o", str(out), "--format", "tfrecord",
                                       "--shard-size", "2", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "5 images" in result.output and "pages/s" in result.output
    result = CliRunner().invoke(main, ["inspect", str(out), "--pages", "4"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert f"{manifest['counts']['lines']} lines" in result.output
    assert "read back   5 pages" in result.output and "line length" in result.output
    sheet = cv2.imread(str(out / "preview.png"))
    assert sheet is not None and sheet.shape[1] == 2 * 480  # 4 pages: 2 columns
    assert CliRunner().invoke(main, ["verify", str(out)]).exit_code == 0
    (out / "tfrecord" / "shard-00001-of-00003.tfrecord").write_bytes(b"\0" * 40)
    result = CliRunner().invoke(main, ["verify", str(out)])
    assert result.exit_code == 1 and "tfrecord/shard-00001-of-00003.tfrecord" in result.output


def test_scheduler_without_dask_engine_is_a_usage_error(write_recipe, tmp_path):
    result = CliRunner().invoke(main, ["generate", str(write_recipe(SMALL)), "-n", "1", "-o", str(tmp_path / "d"),
                                       "--scheduler", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2 and "--engine dask" in result.output
    assert not (tmp_path / "d").exists()


def test_inspect_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    result = CliRunner().invoke(main, ["inspect", str(tmp_path)])
    assert result.exit_code == 2 and "is not a dataset: it has no manifest.json" in result.output


def test_inspect_reads_a_read_only_dataset(write_recipe, tmp_path, monkeypatch):
    """A dataset on a read-only mount (root: a read-only bind mount; others: chmod) is inspected, its sheet
    goes to the temporary folder or to --preview, and nothing in it changes."""
    import os
    import subprocess
    import tempfile

    import pytest

    from .test_generate import tree

    source = tmp_path / "ds"
    assert CliRunner().invoke(main, ["generate", str(write_recipe(SMALL)), "-n", "3", "-o", str(source),
                                     "--shard-size", "2", "--workers", "1"]).exit_code == 0
    before = tree(source)
    if os.geteuid() == 0:  # chmod does not stop root
        ro = tmp_path / "ro"
        ro.mkdir()
        if subprocess.run(["mount", "--bind", str(source), str(ro)], capture_output=True).returncode:
            pytest.skip("root, and cannot bind-mount the dataset read-only")
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True).returncode:
            subprocess.run(["umount", str(ro)], check=True)
            pytest.skip("root, and cannot make a bind mount read-only")
    else:
        ro = source
        for path in [ro, *ro.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    try:
        with pytest.raises(OSError):
            (ro / "probe").write_text("x")  # really read-only, for whoever runs the test
        result = CliRunner().invoke(main, ["inspect", str(ro), "--pages", "2"])
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        assert "read back   3 pages" in result.output and f"{ro} is not writable" in result.output
        sheets = list((tmp_path / "tmp").glob("synthtext-industrial-preview-*.png"))
        assert len(sheets) == 1 and f"preview     {sheets[0]} (2 pages" in result.output
        assert cv2.imread(str(sheets[0])) is not None
        chosen = CliRunner().invoke(main, ["inspect", str(ro), "--pages", "2", "--preview", str(tmp_path / "p.png")])
        assert chosen.exit_code == 0 and cv2.imread(str(tmp_path / "p.png")) is not None, chosen.output
        refused = CliRunner().invoke(main, ["inspect", str(ro), "--preview", str(ro / "p.png")])
        assert refused.exit_code == 1 and f"could not write {ro / 'p.png'}" in refused.output
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(ro)], check=True)
        else:
            for path in [ro, *ro.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
    assert tree(source) == before
