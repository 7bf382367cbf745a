"""generate: DTRB-readable LMDB shards, identical for any worker count, resumable, refusing a foreign OUT."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest
from PIL import Image

from synthtext_industrial import recipe_from_dict
from synthtext_industrial.store.verify import verify
from synthtext_industrial.generate import FAULT_ENV, generate
from synthtext_industrial.store.format import DatasetError

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


def test_refuses_to_continue_a_folder_another_version_made(tmp_path):
    """A new version may render the same recipe differently: mixing them would break determinism."""
    recipe = recipe_from_dict(TINY)
    generate(recipe, tmp_path / "ds", n=2, seed=1, workers=1)
    manifest_path = tmp_path / "ds" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tool_version"] = "0.0.1"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"tool_version: '0\.0\.1' there"):
        generate(recipe, tmp_path / "ds", n=3, seed=1, workers=1)


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


@pytest.mark.parametrize("fmt", ["lmdb", "tfrecord"])
def test_killed_run_resumes_to_the_same_content(tmp_path, write_recipe, fmt):
    recipe_path = write_recipe(json.dumps(TINY))  # JSON is YAML
    cmd = [sys.executable, "-m", "synthtext_industrial.cli", "generate", str(recipe_path), "-n", "24",
           "--shard-size", "3", "--workers", "1", "--seed", "4", "--format", fmt]
    subprocess.run(cmd + ["-o", str(tmp_path / "clean")], check=True, capture_output=True)
    killed = tmp_path / "killed"
    # SIGKILL once the manifest lists four shards (the fault hook: the same moment on any machine, any load)
    env = {**os.environ, FAULT_ENV: "kill:recorded/shard-00003"}
    proc = subprocess.run(cmd + ["-o", str(killed)], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    manifest = json.loads((killed / "manifest.json").read_text())
    assert not manifest["complete"] and len(manifest["shards"]) == 8  # 4 page and 4 crop shards
    result = subprocess.run(cmd + ["-o", str(killed)], check=True, capture_output=True, text=True)
    assert "resuming" in result.stderr + result.stdout
    assert shard_hashes(killed) == shard_hashes(tmp_path / "clean")
    assert file_bytes(killed) == file_bytes(tmp_path / "clean")
    assert verify(killed) == []
    assert not list(killed.rglob("*.tmp"))


def file_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.tfrecord"))}


def test_tfrecord_shards_are_byte_identical_for_any_worker_count(tmp_path):
    recipe = recipe_from_dict(TINY)
    generate(recipe, tmp_path / "one", n=5, seed=2, fmt="tfrecord", shard_size=2, workers=1)
    generate(recipe, tmp_path / "two", n=5, seed=2, fmt="tfrecord", shard_size=2, workers=2)
    one = file_bytes(tmp_path / "one")
    assert sorted(one) == [f"{kind}/shard-{k:05d}-of-00003.tfrecord" for kind in ("crops", "tfrecord")
                           for k in range(3)]
    assert one == file_bytes(tmp_path / "two")
    assert verify(tmp_path / "one") == []


def test_dask_local_cluster_writes_what_the_local_engine_writes(tmp_path):
    pytest.importorskip("dask.distributed")
    recipe = recipe_from_dict(TINY)
    for fmt in ("tfrecord", "lmdb"):
        generate(recipe, tmp_path / f"local-{fmt}", n=5, seed=6, fmt=fmt, shard_size=2, workers=1)
    # one cluster, both formats: starting a LocalCluster costs a couple of seconds
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for fmt in ("tfrecord", "lmdb"):
            summary = generate(recipe, tmp_path / f"dask-{fmt}", n=5, seed=6, fmt=fmt, shard_size=2,
                               engine="dask", scheduler=cluster.scheduler_address)
            assert summary.images == 5 and summary.rendered == 5
    assert file_bytes(tmp_path / "dask-tfrecord") == file_bytes(tmp_path / "local-tfrecord")
    assert shard_hashes(tmp_path / "dask-lmdb") == shard_hashes(tmp_path / "local-lmdb")
    assert verify(tmp_path / "dask-lmdb") == []


def test_dask_engine_starts_its_own_local_cluster(tmp_path):
    pytest.importorskip("dask.distributed")
    recipe = recipe_from_dict(TINY)
    generate(recipe, tmp_path / "local", n=3, seed=1, fmt="tfrecord", shard_size=2, workers=1, with_crops=False)
    generate(recipe, tmp_path / "dask", n=3, seed=1, fmt="tfrecord", shard_size=2, workers=1, with_crops=False,
             engine="dask")
    assert file_bytes(tmp_path / "dask") == file_bytes(tmp_path / "local")


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path):
    pytest.importorskip("dask.distributed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(DatasetError, match="scheduler"):
            generate(recipe_from_dict(TINY), tmp_path / "ds", n=2, engine="dask", scheduler="tcp://127.0.0.1:9")


def flip_byte_inside(path: Path, needle: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[bytes(raw).index(needle) + 10] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("fmt", ["lmdb", "tfrecord"])
def test_verify_names_the_corrupt_record(tmp_path, fmt):
    from synthtext_industrial.store.shards import iter_shard

    generate(recipe_from_dict(TINY), tmp_path / "ds", n=6, seed=1, fmt=fmt, shard_size=3, workers=1)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    entry = next(e for e in manifest["shards"] if e["kind"] == "images" and e["start"] == 3)
    shard = tmp_path / "ds" / entry["path"]
    second = [r for r in iter_shard(fmt, "images", shard)][1]
    flip_byte_inside(shard / "data.mdb" if fmt == "lmdb" else shard, second.image[200:240])
    problems = verify(tmp_path / "ds")
    assert any(p.startswith(f"{entry['path']} record 2 (sample 4)") for p in problems), problems
    assert all(entry["path"] in p for p in problems), problems  # the other shards are fine


def test_verify_finds_truncated_missing_and_unlisted_shards(tmp_path):
    generate(recipe_from_dict(TINY), tmp_path / "ds", n=6, seed=1, fmt="tfrecord", shard_size=2, workers=1)
    out = tmp_path / "ds"
    truncated = out / "tfrecord" / "shard-00000-of-00003.tfrecord"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    (out / "crops" / "shard-00001-of-00003.tfrecord").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"] = [e for e in manifest["shards"] if e["path"] != "tfrecord/shard-00002-of-00003.tfrecord"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    problems = "\n".join(verify(out))
    assert "tfrecord/shard-00000-of-00003.tfrecord record 2" in problems and "truncated" in problems
    assert "crops/shard-00001-of-00003.tfrecord: missing" in problems
    assert "tfrecord/shard-00002-of-00003.tfrecord: on disk but not in the manifest" in problems
    assert "images shards cover samples 0..4, but n is 6" in problems


def test_resume_redoes_a_truncated_tfrecord_shard_to_the_same_bytes(tmp_path):
    recipe = recipe_from_dict(TINY)
    generate(recipe, tmp_path / "ds", n=4, seed=1, fmt="tfrecord", shard_size=2, workers=1)
    before = file_bytes(tmp_path / "ds")
    shard = tmp_path / "ds" / "tfrecord" / "shard-00001-of-00002.tfrecord"
    shard.write_bytes(shard.read_bytes()[:1000])
    (tmp_path / "ds" / "tfrecord" / "shard-00009-of-00010.tfrecord.tmp").write_bytes(b"partial")
    again = generate(recipe, tmp_path / "ds", n=4, seed=1, fmt="tfrecord", shard_size=2, workers=1)
    assert again.rendered == 2 and again.skipped_shards == 1
    assert file_bytes(tmp_path / "ds") == before
    assert not list((tmp_path / "ds").rglob("*.tmp"))


def test_generate_leaves_no_lmdb_environment_open(tmp_path):
    """A caller (e.g. DTRB's own reader in a notebook) can open the shards right after generate and verify."""
    generate(recipe_from_dict(TINY), tmp_path / "ds", n=2, seed=1, workers=1)
    assert verify(tmp_path / "ds") == []
    assert len(dtrb_read(tmp_path / "ds" / "lmdb" / "shard-00000")) == 2


# ----------------------------------------------------------------------------- a different -n: extend or refuse

def tree(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under OUT (but the lock) with its inode, mtime and bytes: what "untouched" means."""
    return {str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("fmt", ["lmdb", "tfrecord"])
def test_a_larger_n_extends_the_dataset_keeping_its_shards(tmp_path, fmt):
    """5 -> 9 pages in shards of 2: shards 0 and 1 are kept as they are, the partly filled shard 2 (one page)
    is rewritten with two, and the result is what a fresh 9-page run writes (TFRecord byte for byte, under
    the new `-of-00005` names)."""
    recipe = recipe_from_dict(TINY)
    out = tmp_path / "ds"
    generate(recipe, out, n=5, seed=2, fmt=fmt, shard_size=2, workers=1)
    first = json.loads((out / "manifest.json").read_text())
    kept_files = {path: info for path, info in tree(out).items() if "shard-00000" in path or "shard-00001" in path}
    extended = generate(recipe, out, n=9, seed=2, fmt=fmt, shard_size=2, workers=1)
    assert (extended.skipped_shards, extended.rendered, extended.images) == (2, 5, 9)
    generate(recipe, tmp_path / "fresh", n=9, seed=2, fmt=fmt, shard_size=2, workers=1)
    assert shard_hashes(out) == shard_hashes(tmp_path / "fresh")
    assert file_bytes(out) == file_bytes(tmp_path / "fresh")
    assert verify(out) == [] and json.loads((out / "manifest.json").read_text())["n"] == 9
    # the kept shards were not rewritten: same inodes and times (TFRecord: renamed, the same file)
    after = tree(out)
    renamed = {path.replace("-of-00003", "-of-00005"): info for path, info in kept_files.items()}
    assert {path: after[path] for path in renamed} == renamed
    assert first["shards"][0]["sha256"] == json.loads((out / "manifest.json").read_text())["shards"][0]["sha256"]


def test_an_extension_killed_between_renames_resumes(tmp_path):
    """Extending renames kept TFRecord files before the manifest names them; a kill in between loses nothing."""
    recipe = recipe_from_dict(TINY)
    out = tmp_path / "ds"
    generate(recipe, out, n=4, seed=2, fmt="tfrecord", shard_size=2, workers=1)
    old = out / "tfrecord" / "shard-00000-of-00002.tfrecord"
    old.rename(out / "tfrecord" / "shard-00000-of-00003.tfrecord")  # as left by a run to n=6 killed here
    again = generate(recipe, out, n=6, seed=2, fmt="tfrecord", shard_size=2, workers=1)
    assert (again.skipped_shards, again.rendered) == (2, 2)
    generate(recipe, tmp_path / "fresh", n=6, seed=2, fmt="tfrecord", shard_size=2, workers=1)
    assert file_bytes(out) == file_bytes(tmp_path / "fresh") and verify(out) == []


def test_a_smaller_n_is_refused_and_nothing_is_touched(tmp_path, write_recipe):
    from click.testing import CliRunner

    from synthtext_industrial.cli import main
    from synthtext_industrial.generate import DatasetRefused

    recipe = recipe_from_dict(TINY)
    out = tmp_path / "ds"
    generate(recipe, out, n=6, seed=1, shard_size=2, workers=1)
    before = tree(out)
    with pytest.raises(DatasetRefused, match=r"holds 6 finished pages \(a 6-page dataset, complete\); -n 3 would "
                                             r"delete 2 finished shard\(s\) holding samples from 2 on"):
        generate(recipe, out, n=3, seed=1, shard_size=2, workers=1)
    assert tree(out) == before
    args = ["generate", str(write_recipe(json.dumps(TINY))), "-n", "3", "--seed", "1", "--shard-size", "2",
            "--workers", "1", "-o", str(out)]
    # the CLI's recipe has another source text than recipe_from_dict's: give this folder that recipe's dataset
    assert CliRunner().invoke(main, args[:2] + ["-n", "6"] + args[4:] + ["--overwrite"]).exit_code == 0
    before = tree(out)
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
    assert refused.output.startswith(f"Error: {out} holds 6 finished pages") and "--overwrite" in refused.output
    assert "new folder" in refused.output and tree(out) == before
    replaced = CliRunner().invoke(main, args + ["--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((out / "manifest.json").read_text())["n"] == 3 and verify(out) == []


def test_a_smaller_n_that_keeps_every_finished_shard_is_allowed(tmp_path):
    """A run of 10 stopped after 4 pages, rerun with -n 6: nothing finished is lost, so it simply finishes 6."""
    recipe = recipe_from_dict(TINY)
    out = tmp_path / "ds"
    generate(recipe, out, n=4, seed=1, shard_size=2, workers=1)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "n": 10, "complete": False}))
    summary = generate(recipe, out, n=6, seed=1, shard_size=2, workers=1)
    assert (summary.skipped_shards, summary.rendered) == (2, 2)
    generate(recipe, tmp_path / "fresh", n=6, seed=1, shard_size=2, workers=1)
    assert shard_hashes(out) == shard_hashes(tmp_path / "fresh") and verify(out) == []
