"""generate to an fsspec URL: the objects a local run writes, resumable, refusing a foreign prefix, clear errors.

Most tests use `memory://` (fsspec's in-process filesystem, shared by threads);
one uses `file://` in subprocesses to kill a run for real. LMDB data.mdb files
are not byte-deterministic even between two local runs (LMDB leaves unused page
bytes uninitialised), so LMDB shards are compared by size and content hash;
TFRecord shards, manifest.json and .lock are compared byte for byte.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import pytest
from fsspec.registry import known_implementations
from click.testing import CliRunner

from synthtext_industrial.generate import faults, writer
from synthtext_industrial import recipe_from_dict
from synthtext_industrial.cli import main
from synthtext_industrial.store.verify import verify
from synthtext_industrial.generate import FAULT_ENV, generate
from synthtext_industrial.store.format import DatasetError
from synthtext_industrial.store.remote import RemoteFolder, RemoteLock
from synthtext_industrial.store.shards import shard_hash

from .test_generate import TINY


@pytest.fixture
def url():
    """A fresh memory:// prefix, removed afterwards (the memory filesystem lives as long as the process)."""
    prefix = f"memory://synthtext-tests/{uuid.uuid4().hex}"
    yield prefix
    fs, root = fsspec.core.url_to_fs(prefix)
    if fs.exists(root):
        fs.rm(root, recursive=True)


def objects(prefix: str) -> dict[str, bytes]:
    fs, root = fsspec.core.url_to_fs(prefix)
    return {path[len(root) + 1:]: fs.cat_file(path) for path in sorted(fs.find(root))}


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_dataset(prefix: str, folder: Path, fmt: str, tmp_path: Path) -> None:
    """Same relative paths, manifest, lock and TFRecord bytes; LMDB shards of the same size and content hash."""
    remote, local = objects(prefix), files(folder)
    assert sorted(remote) == sorted(local)
    manifest = json.loads(local["manifest.json"])
    assert manifest["complete"]
    for name in local:
        if fmt == "tfrecord" or not name.endswith(".mdb"):
            assert remote[name] == local[name], name
        else:
            assert len(remote[name]) == len(local[name]), name
    if fmt == "lmdb":  # the uploaded shards hash to what the manifest records
        store = RemoteFolder(prefix)
        for entry in manifest["shards"]:
            copy = tmp_path / "downloaded" / uuid.uuid4().hex
            store.get(entry["path"], copy)
            assert shard_hash(fmt, copy) == (entry["sha256"], entry["records"])


@pytest.mark.parametrize("fmt", ["lmdb", "tfrecord"])
def test_memory_url_holds_what_a_local_run_writes(tmp_path, url, fmt):
    recipe = recipe_from_dict(TINY)
    generate(recipe, tmp_path / "local", n=5, seed=3, fmt=fmt, shard_size=2, workers=1)
    summary = generate(recipe, url, n=5, seed=3, fmt=fmt, shard_size=2, workers=1)
    assert summary.out == url and summary.images == 5 and summary.rendered == 5
    assert_same_dataset(url, tmp_path / "local", fmt, tmp_path)
    again = generate(recipe, url, n=5, seed=3, fmt=fmt, shard_size=2, workers=1)
    assert again.skipped_shards == 3 and again.rendered == 0
    assert_same_dataset(url, tmp_path / "local", fmt, tmp_path)


def test_dask_threads_to_a_memory_url_write_what_the_local_engine_writes(tmp_path, url):
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    recipe = recipe_from_dict(TINY)
    for fmt in ("tfrecord", "lmdb"):
        generate(recipe, tmp_path / fmt, n=5, seed=6, fmt=fmt, shard_size=2, workers=1)
    # threads, not processes: the worker shares this process's memory filesystem; two of them render at once
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        for fmt in ("tfrecord", "lmdb"):
            summary = generate(recipe, f"{url}/{fmt}", n=5, seed=6, fmt=fmt, shard_size=2, engine="dask",
                               scheduler=cluster.scheduler_address)
            assert summary.images == 5 and summary.rendered == 5
    for fmt in ("tfrecord", "lmdb"):
        assert_same_dataset(f"{url}/{fmt}", tmp_path / fmt, fmt, tmp_path)


def fail_at_upload(monkeypatch, shard: int) -> None:
    """Make the upload of the given shard (0-based) fail after its objects are up, before the manifest lists it."""
    real, seen = faults.fault, []

    def fault(point: str) -> None:
        if point == "uploaded":
            seen.append(point)
            if len(seen) == shard + 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(point)

    monkeypatch.setattr(faults, "fault", fault)


@pytest.mark.parametrize("fmt", ["lmdb", "tfrecord"])
def test_a_failed_run_resumes_to_the_same_objects(tmp_path, url, monkeypatch, fmt):
    recipe = recipe_from_dict(TINY)
    generate(recipe, tmp_path / "local", n=6, seed=4, fmt=fmt, shard_size=2, workers=1)
    fail_at_upload(monkeypatch, shard=1)
    with pytest.raises(DatasetError, match=r"uploading shard-00001 to memory://.*rerun the same command"):
        generate(recipe, url, n=6, seed=4, fmt=fmt, shard_size=2, workers=1)
    monkeypatch.undo()
    fs, root = fsspec.core.url_to_fs(url)
    manifest = json.loads(fs.cat_file(f"{root}/manifest.json"))
    assert not manifest["complete"] and {e["name"] for e in manifest["shards"]} == {"shard-00000"}
    assert any("shard-00001" in name for name in objects(url))  # uploaded, but not in the manifest
    assert fs.cat_file(f"{root}/.lock") == b""  # released
    again = generate(recipe, url, n=6, seed=4, fmt=fmt, shard_size=2, workers=1)
    assert again.skipped_shards == 1 and again.rendered == 4  # the unlisted shard-00001 was redone
    assert_same_dataset(url, tmp_path / "local", fmt, tmp_path)


def test_resume_check_hash_redoes_a_damaged_object_and_size_trusts_it(url):
    recipe = recipe_from_dict(TINY)
    generate(recipe, url, n=4, seed=1, fmt="tfrecord", shard_size=2, workers=1)
    fs, root = fsspec.core.url_to_fs(url)
    shard = f"{root}/tfrecord/shard-00001-of-00002.tfrecord"
    good = fs.cat_file(shard)
    fs.pipe_file(shard, good[:500] + bytes([good[500] ^ 1]) + good[501:])  # same size, one bit changed
    kept = generate(recipe, url, n=4, seed=1, fmt="tfrecord", shard_size=2, workers=1, resume_check="size")
    assert kept.rendered == 0 and fs.cat_file(shard) != good
    redone = generate(recipe, url, n=4, seed=1, fmt="tfrecord", shard_size=2, workers=1)
    assert redone.rendered == 2 and redone.skipped_shards == 1 and fs.cat_file(shard) == good
    fs.rm(shard)  # a missing object is redone by either check
    assert generate(recipe, url, n=4, seed=1, fmt="tfrecord", shard_size=2, workers=1,
                    resume_check="size").rendered == 2
    assert fs.cat_file(shard) == good


def test_refuses_other_settings_and_overwrite_replaces_only_the_dataset(url):
    recipe = recipe_from_dict(TINY)
    generate(recipe, url, n=4, seed=1, shard_size=2, workers=1)
    fs, root = fsspec.core.url_to_fs(url)
    fs.pipe_file(f"{root}/notes.txt", b"keep me")
    with pytest.raises(DatasetError, match=r"holds a dataset made with different settings \(seed: 1 there, 2 now\)"):
        generate(recipe, url, n=4, seed=2, shard_size=2, workers=1)
    summary = generate(recipe, url, n=3, seed=2, shard_size=3, workers=1, overwrite=True)
    assert summary.rendered == 3
    manifest = json.loads(fs.cat_file(f"{root}/manifest.json"))
    assert manifest["seed"] == 2 and {e["path"] for e in manifest["shards"]} == {"lmdb/shard-00000",
                                                                                "crops/shard-00000"}
    assert sorted(objects(url)) == [".lock", "crops/shard-00000/data.mdb", "lmdb/shard-00000/data.mdb",
                                    "manifest.json", "notes.txt"]


def test_refuses_a_non_empty_prefix_without_a_manifest(url):
    fs, root = fsspec.core.url_to_fs(url)
    fs.pipe_file(f"{root}/precious.txt", b"keep me")
    with pytest.raises(DatasetError, match="is not empty and has no manifest.json"):
        generate(recipe_from_dict(TINY), url, n=1, workers=1)
    assert objects(url) == {"precious.txt": b"keep me", ".lock": b""}  # like a local folder's .lock


def test_a_file_url_goes_through_fsspec_and_matches_a_local_run(tmp_path):
    recipe = recipe_from_dict(TINY)
    for fmt in ("tfrecord", "lmdb"):
        generate(recipe, tmp_path / f"local-{fmt}", n=3, seed=2, fmt=fmt, shard_size=2, workers=1)
        generate(recipe, f"file://{tmp_path}/url-{fmt}", n=3, seed=2, fmt=fmt, shard_size=2, workers=1)
        assert_same_dataset(f"file://{tmp_path}/url-{fmt}", tmp_path / f"local-{fmt}", fmt, tmp_path)
        assert verify(tmp_path / f"url-{fmt}") == []
        assert not list((tmp_path / f"url-{fmt}").rglob("*.tmp"))


def test_a_killed_run_to_a_file_url_resumes_with_the_same_command(tmp_path, write_recipe):
    """SIGKILL right after an upload: the lock names a dead process of this host, so the rerun takes it over."""
    recipe_path = write_recipe(json.dumps(TINY))
    out = f"file://{tmp_path}/ds"
    cmd = [sys.executable, "-m", "synthtext_industrial.cli", "generate", str(recipe_path), "-n", "6",
           "--shard-size", "2", "--workers", "1", "--seed", "4", "--format", "tfrecord", "-o", out]
    env = dict(os.environ, **{FAULT_ENV: f"kill:uploaded:{tmp_path / 'once'}"})
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert killed.returncode == -9
    holder = json.loads((tmp_path / "ds" / ".lock").read_text())
    assert holder["heartbeat"] > 0 and holder["pid"] != os.getpid()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    clean = CliRunner().invoke(main, cmd[3:-1] + [str(tmp_path / "clean")])  # the same command, uninterrupted
    assert clean.exit_code == 0, clean.output
    assert_same_dataset(out, tmp_path / "clean", "tfrecord", tmp_path)


def test_a_live_lock_is_refused_a_stale_one_taken_over_and_a_takeover_stops_the_run(url, monkeypatch):
    recipe = recipe_from_dict(TINY)
    store = RemoteFolder(url)
    other = RemoteLock(store.fs, store.path(".lock"), url)
    other.acquire()  # another run, alive (this very process)
    try:
        with pytest.raises(DatasetError, match=r"is being written by another generate run \(lock .*\.lock"):
            generate(recipe, url, n=2, workers=1)
    finally:
        other.release()
    # a run on another machine that stopped refreshing its lease long ago
    stale = {"run": "old", "host": "elsewhere", "pid": 1, "heartbeat": 0}
    store.fs.pipe_file(store.path(".lock"), json.dumps(stale).encode())
    assert generate(recipe, url, n=2, workers=1).images == 2
    assert store.fs.cat_file(store.path(".lock")) == b""
    # a second run takes the lock while this one uploads: this one stops before writing the manifest again
    intruder = {"run": "new", "host": "elsewhere", "pid": 1, "heartbeat": 1e12}
    real = faults.fault

    def fault(point: str) -> None:
        if point == "uploaded":
            store.fs.pipe_file(store.path(".lock"), json.dumps(intruder).encode())
        real(point)

    monkeypatch.setattr(faults, "fault", fault)
    with pytest.raises(DatasetError, match="another generate run took over"):
        generate(recipe, url, n=4, seed=1, shard_size=2, workers=1, overwrite=True)
    assert json.loads(store.fs.cat_file(store.path(".lock")))["run"] == "new"  # not clobbered on the way out


def test_a_missing_package_is_named_before_anything_is_rendered(monkeypatch, tmp_path):
    def no_render(*args, **kwargs):
        raise AssertionError("rendered before the URL was checked")

    monkeypatch.setattr(writer, "render_record", no_render)
    monkeypatch.setitem(known_implementations, "fakeproto",
                        {"class": "fakeprotofs_not_installed.FakeFileSystem",
                         "err": "Install fakeprotofs_not_installed to access fakeproto"})
    recipe = recipe_from_dict(TINY)
    with pytest.raises(DatasetError, match=r"fakeproto://bucket/ds needs the package fakeprotofs_not_installed: "
                                           r"pip install fakeprotofs_not_installed"):
        generate(recipe, "fakeproto://bucket/ds", n=5, workers=1)
    with pytest.raises(DatasetError, match=r"cannot write to nosuchproto://x.*fsspec knows"):
        generate(recipe, "nosuchproto://x", n=5, workers=1)
    monkeypatch.setitem(sys.modules, "fsspec", None)  # fsspec itself not installed
    with pytest.raises(DatasetError, match=r"needs fsspec: pip install fsspec"):
        generate(recipe, "s3://bucket/ds", n=5, workers=1)
    monkeypatch.undo()
    recipe_path = tmp_path / "tiny.yaml"
    recipe_path.write_text(json.dumps(TINY))
    monkeypatch.setitem(known_implementations, "fakeproto",
                        {"class": "fakeprotofs_not_installed.FakeFileSystem", "err": "Install it"})
    result = CliRunner().invoke(main, ["generate", str(recipe_path), "-n", "2", "-o", "fakeproto://b/ds",
                                       "--workers", "1"])
    assert result.exit_code == 1 and "pip install fakeprotofs_not_installed" in result.output
    assert "Traceback" not in result.output


def test_cli_generates_to_a_memory_url_and_resumes(tmp_path, url):
    recipe_path = tmp_path / "tiny.yaml"
    recipe_path.write_text(json.dumps(TINY))
    args = ["generate", str(recipe_path), "-n", "3", "--shard-size", "2", "--seed", "5", "--workers", "1"]
    first = CliRunner().invoke(main, args + ["-o", url])
    assert first.exit_code == 0, first.output
    assert f"wrote {url}: 3 images" in first.output
    assert CliRunner().invoke(main, args + ["-o", str(tmp_path / "local")]).exit_code == 0
    assert_same_dataset(url, tmp_path / "local", "lmdb", tmp_path)
    again = CliRunner().invoke(main, args + ["-o", url, "--resume-check", "size"])
    assert again.exit_code == 0 and "resuming: 2 finished shard(s) (3 images) sizes checked and kept" in again.output


@pytest.mark.parametrize("command", [["verify"], ["inspect"]])
def test_reading_commands_ask_to_download_a_url_first(command):
    result = CliRunner().invoke(main, command + ["s3://bucket/ds"])
    assert result.exit_code == 2 and "download it first" in result.output and "Traceback" not in result.output


def test_a_url_dataset_is_extended_and_never_shrunk(tmp_path, url):
    """Extending a TFRecord prefix renames the kept objects to their new `-of-TOTAL` names (no re-render)."""
    from synthtext_industrial.generate import DatasetRefused

    recipe = recipe_from_dict(TINY)
    generate(recipe, url, n=3, seed=3, fmt="tfrecord", shard_size=2, workers=1)
    with pytest.raises(DatasetRefused, match="holds 3 finished pages"):
        generate(recipe, url, n=1, seed=3, fmt="tfrecord", shard_size=2, workers=1)
    extended = generate(recipe, url, n=5, seed=3, fmt="tfrecord", shard_size=2, workers=1)
    assert (extended.skipped_shards, extended.rendered) == (1, 3)
    generate(recipe, tmp_path / "local", n=5, seed=3, fmt="tfrecord", shard_size=2, workers=1)
    assert_same_dataset(url, tmp_path / "local", "tfrecord", tmp_path)
