"""generate: DTRB-readable LMDB shards, identical for any worker count, resumable, refusing a foreign OUT."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest
from PIL import Image

from synthtext_industrial import recipe_from_dict
from synthtext_industrial.generate import DatasetError, generate, verify

TINY = {"canvas": {"width": 320, "height": 240}, "typography": {"height_px": [16, 30]},
        "text": {"blocks": [{"lines": ["{X:6}"]}, {"lines": ["LOT {9:4}", "{A:3}"]}]}}


def dtrb_read(env_dir: Path) -> list[tuple[Image.Image, str]]:
    """What deep-text-recognition-benchmark's LmdbDataset does with one environment."""
    env = lmdb.open(str(env_dir), max_readers=32, readonly=True, lock=False, readahead=False, meminit=False)
    items = []
    with env.begin(write=False) as txn:
        n = int(txn.get("num-samples".encode()))
        for index in range(1, n + 1):  # DTRB indexes from 1
            label = txn.get(("label-%09d" % index).encode()).decode("utf-8")
            imgbuf = txn.get(("image-%09d" % index).encode())
            buf = io.BytesIO(imgbuf)
            items.append((Image.open(buf).convert("L"), label))
    env.close()
    return items


def shard_hashes(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {e["path"]: e["sha256"] for e in manifest["shards"]}


def test_layout_is_readable_by_dtrb(tmp_path):
    recipe = recipe_from_dict(TINY)
    summary = generate(recipe, tmp_path / "ds", n=7, seed=3, shard_size=4, workers=1)
    assert summary.images == 7 and summary.crops == summary.lines > 0
    pages = dtrb_read(tmp_path / "ds" / "lmdb" / "shard-00000") + dtrb_read(tmp_path / "ds" / "lmdb" / "shard-00001")
    assert len(pages) == 7 and all(img.size == (320, 240) for img, _ in pages)
    crops = dtrb_read(tmp_path / "ds" / "crops" / "shard-00000") + dtrb_read(tmp_path / "ds" / "crops" / "shard-00001")
    assert len(crops) == summary.crops and all("\n" not in label and label for _, label in crops)
    # page labels are the line texts joined by newlines, and gt-%09d holds the ground-truth JSON
    with lmdb.open(str(tmp_path / "ds" / "lmdb" / "shard-00000"), readonly=True, lock=False) as env, \
            env.begin() as txn:
        gt = json.loads(txn.get(b"gt-000000001"))
        assert gt["index"] == 0 and gt["seed"] == 3
        assert txn.get(b"label-000000001").decode() == "\n".join(line["text"] for line in gt["lines"])
        assert txn.get(b"image-000000000") is None  # 1-based
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["n"] == 7 and manifest["recipe_sha256"] == recipe.sha256
    assert [(e["start"], e["stop"]) for e in manifest["shards"] if e["kind"] == "images"] == [(0, 4), (4, 7)]
    assert verify(tmp_path / "ds") == []


def test_same_content_for_one_or_two_workers(tmp_path):
    recipe = recipe_from_dict(TINY)
    generate(recipe, tmp_path / "one", n=6, seed=1, shard_size=4, workers=1)
    generate(recipe, tmp_path / "two", n=6, seed=1, shard_size=4, workers=2)
    assert shard_hashes(tmp_path / "one") == shard_hashes(tmp_path / "two")


def test_refuses_a_folder_made_with_other_settings(tmp_path):
    recipe = recipe_from_dict(TINY)
    generate(recipe, tmp_path / "ds", n=2, seed=1, workers=1)
    with pytest.raises(DatasetError, match="seed"):
        generate(recipe, tmp_path / "ds", n=2, seed=2, workers=1)
    generate(recipe, tmp_path / "ds", n=2, seed=2, workers=1, overwrite=True)
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["seed"] == 2


def test_refuses_a_non_empty_foreign_folder(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "precious.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        generate(recipe_from_dict(TINY), tmp_path / "ds", n=1, workers=1)
    assert (tmp_path / "ds" / "precious.txt").exists()


def test_rerun_skips_finished_shards_and_redoes_damaged_ones(tmp_path):
    recipe = recipe_from_dict(TINY)
    generate(recipe, tmp_path / "ds", n=6, seed=1, shard_size=2, workers=1)
    before = shard_hashes(tmp_path / "ds")
    again = generate(recipe, tmp_path / "ds", n=6, seed=1, shard_size=2, workers=1)
    assert again.skipped_shards == 3 and again.rendered == 0
    # damage one shard: it is redone, the others are kept
    data = tmp_path / "ds" / "lmdb" / "shard-00001" / "data.mdb"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    third = generate(recipe, tmp_path / "ds", n=6, seed=1, shard_size=2, workers=1)
    assert third.rendered == 2 and third.skipped_shards == 2
    assert shard_hashes(tmp_path / "ds") == before


def test_verify_names_a_flipped_byte(tmp_path):
    generate(recipe_from_dict(TINY), tmp_path / "ds", n=3, seed=1, shard_size=3, workers=1, with_crops=False)
    data = tmp_path / "ds" / "lmdb" / "shard-00000" / "data.mdb"
    raw = bytearray(data.read_bytes())
    with lmdb.open(str(data.parent), readonly=True, lock=False) as env, env.begin() as txn:
        image = txn.get(b"image-000000002")
    offset = bytes(raw).index(image[100:140]) + 10  # a byte inside the second image
    raw[offset] ^= 0x01
    data.write_bytes(bytes(raw))
    problems = verify(tmp_path / "ds")
    assert any("lmdb/shard-00000" in p and "hash" in p for p in problems)


def test_zero_and_one_images_and_big_shards(tmp_path):
    recipe = recipe_from_dict(TINY)
    assert generate(recipe, tmp_path / "zero", n=0, workers=1).images == 0
    assert verify(tmp_path / "zero") == []
    one = generate(recipe, tmp_path / "one", n=1, shard_size=1000, workers=1)
    assert one.images == 1 and verify(tmp_path / "one") == []


def test_killed_run_resumes_to_the_same_content(tmp_path, write_recipe):
    recipe_path = write_recipe(json.dumps(TINY))  # JSON is YAML
    cmd = [sys.executable, "-m", "synthtext_industrial.cli", "generate", str(recipe_path), "-n", "24",
           "--shard-size", "3", "--workers", "1", "--seed", "4"]
    subprocess.run(cmd + ["-o", str(tmp_path / "clean")], check=True, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["-o", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once a few shards are done
        manifest = killed / "manifest.json"
        if manifest.exists():
            try:
                if len(json.loads(manifest.read_text())["shards"]) >= 4:
                    break
            except json.JSONDecodeError:
                pass
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not json.loads((killed / "manifest.json").read_text())["complete"]
    result = subprocess.run(cmd + ["-o", str(killed)], check=True, capture_output=True, text=True)
    assert "resuming" in result.stderr + result.stdout
    assert shard_hashes(killed) == shard_hashes(tmp_path / "clean")
    assert verify(killed) == []
    assert not list(killed.rglob("*.tmp"))
