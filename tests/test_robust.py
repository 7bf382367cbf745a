"""Bad input, crashes and damage: fuzzed recipes, kill and resume, injected faults, corrupt shards.

Faults are injected with SYNTHTEXT_INDUSTRIAL_FAULT (read in one place,
synthtext_industrial.generate._fault) in subprocesses, so that worker processes
inherit it; full disks and read-only folders are also tried for real where the
tests may mount a tmpfs (root). docs/robustness.md lists what the user sees.
"""
from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthtext_industrial import load_recipe, recipe_from_dict, render_sample
from synthtext_industrial.cli import main
from synthtext_industrial.data import LmdbDataset
from synthtext_industrial.store.verify import verify
from synthtext_industrial.generate import FAULT_ENV, generate
from synthtext_industrial.store.format import DatasetError
from synthtext_industrial.generate.run import lock_folder
from synthtext_industrial.store.lmdb_store import ShardWriter, content_hash
from synthtext_industrial.store.format import CorruptRecord

from .recipe_fuzz import BASES, _get, bad_value, outcome, paths, recipe_case
from .test_generate import TINY, file_bytes, shard_hashes

FUZZ = settings(max_examples=200, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


# ----------------------------------------------------------------------------- fuzzed recipes

@FUZZ
@given(case=recipe_case)
def test_fuzzed_recipes_render_or_are_refused_cleanly(case, tmp_path_factory):
    """Library: render sample 0 (exact ground truth) or one RecipeError starting with the file; CLI: exit 0 or 2.

    The cases include values that pass the schema but fail in use (recipe_fuzz.FAILS_IN_USE); each of those
    must be refused.
    """
    what, text = case
    folder = tmp_path_factory.mktemp("fuzz")
    result = outcome(text, folder, limit_s=60)
    assert result.result in ("rendered", "refused"), f"[{what}] {result.message} {result.details}\n{text!r}"
    if what.startswith("fails in use"):
        assert result.result == "refused", f"[{what}] rendered\n{text!r}"
    cli = CliRunner().invoke(main, ["check", str(folder / "fuzz.yaml"), "--samples", "1"])  # sample 0, as above
    assert cli.exit_code == (0 if result.result == "rendered" else 2), cli.output
    assert "Traceback" not in cli.output and isinstance(cli.exception, (SystemExit, type(None))), cli.output
    if cli.exit_code == 2:
        assert cli.output.startswith(f"Error: {folder / 'fuzz.yaml'}") and cli.output.count("Error:") == 1


@settings(max_examples=150, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_refused_value_is_named_by_its_section(data, tmp_path_factory):
    """One wrong value anywhere in a valid recipe: if refused, the message names the section it sits in."""
    doc = copy.deepcopy(BASES[data.draw(st.sampled_from(sorted(BASES)))])
    path, _ = data.draw(st.sampled_from([p for p in paths(doc) if p[0]]))
    _get(doc, path[:-1])[path[-1]] = data.draw(bad_value)
    result = outcome(yaml.safe_dump(doc, allow_unicode=True), tmp_path_factory.mktemp("name"), render=False)
    assert result.result != "crash", result.message
    if result.result == "refused":
        assert f"`{path[0]}" in result.message or f"{path[0]}[" in result.message or \
            f"{path[0]}." in result.message, (path, result.message)


@pytest.mark.parametrize("text, expected", [
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     "name: *f\n", "expands to more than"),
    ("canvas: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ("canvas: " + "[" * 80 + "]" * 80 + "\n", "nested more than 50 levels"),
])
def test_yaml_bombs_are_refused_quickly(write_recipe, text, expected):
    """Found by fuzzing: an alias bomb took minutes (and would exhaust memory); deep nesting raised RecursionError.

    Quick by construction, not by a clock: the message shows the size check refused the document, and that
    check stops counting at its limit (recipe._check_size) before anything expands it.
    """
    from synthtext_industrial import RecipeError

    with pytest.raises(RecipeError, match=expected):
        load_recipe(write_recipe(text))


def test_the_cli_refuses_a_bad_recipe_with_exit_2_and_one_line(write_recipe, tmp_path):
    path = write_recipe("!!python/object/apply:os.system ['echo pwned']\n")
    for command in (["generate", "-n", "1", "-o", str(tmp_path / "ds")],):
        proc = subprocess.run([sys.executable, "-m", "synthtext_industrial.cli", command[0], str(path), *command[1:]],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(f"Error: {path}: not valid YAML") and "pwned" not in proc.stdout


# ----------------------------------------------------------------------------- no code, no escape, no network

def test_assets_root_allows_a_folder_and_nothing_else(tmp_path, write_recipe):
    words = tmp_path / "shared" / "words.txt"
    words.parent.mkdir()
    words.write_text("ALPHA\nBETA\n")
    (tmp_path / "recipes").mkdir()
    recipe = write_recipe(f"text: {{fields: {{ww: {{wordlist: {{file: ../shared/words.txt}}}}}}, "
                          f"blocks: [{{lines: ['{{ww}}']}}]}}\n", name="recipes/r.yaml")
    runner = CliRunner()
    refused = runner.invoke(main, ["check", str(recipe)])
    assert refused.exit_code == 2 and "outside the allowed folders" in refused.output and "--assets-root" in \
        refused.output
    allowed = runner.invoke(main, ["check", str(recipe), "--assets-root", str(tmp_path / "shared")])
    assert allowed.exit_code == 0, allowed.output
    # a symlink inside the recipe's folder that points out of it is resolved, and refused
    (tmp_path / "recipes" / "link.txt").symlink_to(words)
    linked = write_recipe("text: {fields: {ww: {wordlist: {file: link.txt}}}, blocks: [{lines: ['{ww}']}]}\n",
                          name="recipes/l.yaml")
    assert runner.invoke(main, ["check", str(linked)]).exit_code == 2
    home = write_recipe("fonts: [{file: ~/.bashrc}]\n", name="recipes/h.yaml")
    assert "outside the allowed folders" in runner.invoke(main, ["check", str(home)]).output


def test_nothing_touches_the_network(tmp_path, monkeypatch):
    """Load, render, generate, verify and read with every socket refused."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access: socket{args}")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    recipe = load_recipe("default")
    render_sample(recipe, 0, 0)
    generate(recipe_from_dict(TINY), tmp_path / "ds", n=2, workers=1)
    assert verify(tmp_path / "ds") == [] and len(LmdbDataset(tmp_path / "ds")) == 2
    package = Path(__file__).resolve().parents[1] / "synthtext_industrial"
    for source in package.glob("*.py"):
        text = source.read_text()
        for module in ("urllib", "requests", "http.client", "socket", "ftplib"):
            assert f"import {module}" not in text and f"from {module}" not in text, (source, module)


# ----------------------------------------------------------------------------- kill and resume, Ctrl-C

def cli_generate(recipe_path: Path, out: Path, *extra: str, fault: str | None = None, n: int = 24,
                 shard_size: int = 3, fmt: str = "lmdb", wait: bool = True, **kwargs):
    env = {**os.environ}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    cmd = [sys.executable, "-m", "synthtext_industrial.cli", "generate", str(recipe_path), "-n", str(n),
           "--shard-size", str(shard_size), "--seed", "4", "--format", fmt, "-o", str(out), *extra]
    if not wait:  # output to a file: a pipe would also wait for any process that outlived the run
        log = open(out.parent / f"{out.name}.log", "w+")
        # Ctrl-C as a terminal delivers it: a suite started in the background (`make test &`) inherits SIGINT
        # ignored, and a run that ignores SIGINT would never stop for the tests that interrupt it.
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=log, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def tiny_recipe(write_recipe):
    return write_recipe(json.dumps(TINY))


@pytest.fixture
def clean(tiny_recipe, tmp_path):
    """An uninterrupted run of the command the fault tests interrupt."""
    def run(fmt: str = "lmdb") -> Path:
        out = tmp_path / f"clean-{fmt}"
        generate(load_recipe(tiny_recipe), out, n=24, seed=4, fmt=fmt, shard_size=3, workers=1)
        return out

    return run


def paused_at(flag: Path, proc: subprocess.Popen) -> bool:
    """Wait until a run started with `pause:POINT:FLAG` has reached POINT (it creates FLAG and waits there).

    No clock decides anything: however slow the machine, the run is then exactly there and still going.
    False if the run ended without reaching POINT.
    """
    while not flag.exists():
        if proc.poll() is not None:
            return flag.exists()
        time.sleep(0.01)
    return True


def descendants(root: int) -> list[int]:
    """Processes below `root` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            children.setdefault(int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]), []).append(
                int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    found, todo = [], [root]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def assert_gone(pids: list[int], within_s: float = 300.0) -> None:
    """Found by the kill test: render workers outlived a killed generate, waiting forever on their queue.

    Returns as soon as they are gone; `within_s` only stops a test that would otherwise hang.
    """
    deadline = time.time() + within_s
    alive = pids
    while time.time() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists()
                 and (Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z")]
        if not alive:
            return
        time.sleep(0.2)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"processes {alive} outlived the killed generate")


def same_dataset(a: Path, b: Path) -> None:
    assert shard_hashes(a) == shard_hashes(b)
    assert file_bytes(a) == file_bytes(b)
    assert verify(a) == []
    assert not list(a.rglob("*.tmp"))


def assert_no_partial_under_final_names(out: Path, fmt: str) -> None:
    """Every shard under a final name opens and holds every record it says it has."""
    from synthtext_industrial.store.shards import iter_shard

    for kind, folder in (("images", "lmdb" if fmt == "lmdb" else "tfrecord"), ("crops", "crops")):
        for path in sorted((out / folder).glob("shard-*")):
            if path.name.endswith(".tmp"):
                continue
            records = list(iter_shard(fmt, kind, path))
            if kind == "images":
                assert len(records) == 3, path  # shard size 3, 24 samples: every page shard is full


@pytest.mark.parametrize("fmt", ["lmdb", "tfrecord"])
def test_repeated_kills_including_inside_a_shard_rename_then_resume(tiny_recipe, tmp_path, clean, fmt):
    """SIGKILL between the crop and page renames, after the renames, and at random moments; then resume."""
    reference = clean(fmt)
    out = tmp_path / "killed"
    for fault in ("kill:finish-images", "kill:shard-done"):  # the rename window, and before the manifest
        proc = cli_generate(tiny_recipe, out, "--workers", "1", fault=fault, fmt=fmt)
        assert proc.returncode == -signal.SIGKILL
        assert_no_partial_under_final_names(out, fmt)
    rng = np.random.default_rng(7)
    for workers in ("2", "1") if fmt == "lmdb" else ():  # random moments, with and without render workers
        # a seeded moment after the run is known to be rendering (paused there, then let go); every assertion
        # below holds wherever the kill lands, even after the run finished: load moves it, never the outcome
        flag = tmp_path / "rendering"
        proc = cli_generate(tiny_recipe, out, "--workers", workers, fmt=fmt, wait=False,
                            fault=f"pause:rendering:{flag}")
        if paused_at(flag, proc):  # else the run had nothing left to render
            helpers = set(descendants(proc.pid))  # with --workers 2, the render workers exist now
            flag.unlink()
        else:
            helpers = set()
        time.sleep(float(rng.uniform(0.0, 1.0)))
        helpers = sorted(helpers | set(descendants(proc.pid)))
        proc.kill()
        proc.wait()
        assert_gone(helpers)
        assert_no_partial_under_final_names(out, fmt)
    final = cli_generate(tiny_recipe, out, "--workers", "1", fmt=fmt)
    assert final.returncode == 0, final.stderr
    same_dataset(out, reference)


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tiny_recipe, tmp_path, clean):
    """Ctrl-C while the first shard is open and the render workers start up, then after a finished shard.

    Each run is paused at that point by the fault hook, so the Ctrl-C lands there on any machine.
    """
    reference = clean()
    out = tmp_path / "interrupted"
    for point, listed in (("rendering", 0), ("recorded/shard-00000", 2)):
        flag = tmp_path / "paused"
        proc = cli_generate(tiny_recipe, out, "--workers", "2", wait=False, fault=f"pause:{point}:{flag}")
        assert paused_at(flag, proc), (tmp_path / "interrupted.log").read_text()
        assert len(json.loads((out / "manifest.json").read_text())["shards"]) == listed
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=300)
        flag.unlink()
        stderr = (tmp_path / "interrupted.log").read_text()
        assert proc.returncode == 130, stderr
        assert "Run the same command again to resume" in stderr and "Traceback" not in stderr, stderr
        assert_no_partial_under_final_names(out, "lmdb")
        assert len(json.loads((out / "manifest.json").read_text())["shards"]) == listed
    again = cli_generate(tiny_recipe, out, "--workers", "1")
    assert again.returncode == 0 and "resuming" in again.stdout + again.stderr
    same_dataset(out, reference)


# ----------------------------------------------------------------------------- faults

@pytest.mark.parametrize("fmt", ["lmdb", "tfrecord"])
@pytest.mark.parametrize("point", ["record", "finish-images"])
def test_disk_full_is_a_clear_error_and_a_rerun_resumes(tiny_recipe, tmp_path, clean, monkeypatch, fmt, point):
    """ENOSPC injected in the main process (one render process: the CLI runs in-process here)."""
    reference = clean(fmt)
    out = tmp_path / "full"
    args = ["generate", str(tiny_recipe), "-n", "24", "--shard-size", "3", "--seed", "4", "--format", fmt,
            "-o", str(out), "--workers", "1"]
    monkeypatch.setenv(FAULT_ENV, f"enospc:{point}")
    failed = CliRunner().invoke(main, args)
    assert failed.exit_code == 1 and isinstance(failed.exception, SystemExit), failed.output
    assert "Error: writing shard shard-00000 into" in failed.output and "No space left on device" in failed.output
    assert "rerun the same command to resume" in failed.output and "Traceback" not in failed.output
    assert not list(out.rglob("shard-*")), "nothing was finished, so nothing may sit under a shard name"
    monkeypatch.delenv(FAULT_ENV)
    assert CliRunner().invoke(main, args).exit_code == 0
    same_dataset(out, reference)


def _tmpfs(path: Path, *options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("fmt", ["lmdb", "tfrecord"])
def test_a_really_full_disk(tiny_recipe, tmp_path, fmt):
    """A 1 MB tmpfs (needs root to mount; skipped otherwise)."""
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "size=1m"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        proc = cli_generate(tiny_recipe, disk / "ds", "--workers", "1", fmt=fmt, n=60)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "the disk holding" in proc.stderr and "is full" in proc.stderr, proc.stderr
        assert_no_complete_claims(disk / "ds", fmt)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def assert_no_complete_claims(out: Path, fmt: str) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"]
    for entry in manifest["shards"]:  # what the manifest lists is whole
        assert not [p for p in verify(out) if p.startswith(entry["path"])]
    assert not list(out.rglob("*.tmp"))
    assert not [p for p in verify(out) if "not in the manifest" in p]  # no stray crop shard of a failed page shard


def test_read_only_output_folder(tiny_recipe, tmp_path):
    out = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _tmpfs(out, "ro", "size=1m"):
            pytest.skip("root, and cannot mount a read-only tmpfs")
    else:
        out.mkdir()
        out.chmod(0o555)
    try:
        result = CliRunner().invoke(main, ["generate", str(tiny_recipe), "-n", "2", "-o", str(out), "--workers", "1"])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "cannot write to the output folder" in result.output and "Traceback" not in result.output
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(out)], check=True)
        else:
            out.chmod(0o755)


def test_output_on_a_file(tiny_recipe, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    runner = CliRunner()
    on_file = runner.invoke(main, ["generate", str(tiny_recipe), "-n", "2", "-o", str(target)])
    assert on_file.exit_code == 1 and "exists and is not a folder" in on_file.output
    under_file = runner.invoke(main, ["generate", str(tiny_recipe), "-n", "2", "-o", str(target / "sub")])
    assert under_file.exit_code == 1 and "cannot create the output folder" in under_file.output
    assert target.read_text() == "not a folder"


def test_a_second_run_into_the_same_folder_is_refused(tiny_recipe, tmp_path):
    out = tmp_path / "ds"
    flag = tmp_path / "paused"  # the first run waits after its first shard, holding the lock, until this goes
    first = cli_generate(tiny_recipe, out, "--workers", "1", wait=False, fault=f"pause:recorded/shard-00000:{flag}")
    try:
        assert paused_at(flag, first), (tmp_path / "ds.log").read_text()
        second = cli_generate(tiny_recipe, out, "--workers", "1")
        assert first.poll() is None, "the first run must still hold the lock"
        assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr
        assert f"Error: {out} is being written by another generate run (lock {out / '.lock'})" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=300)
    assert first.returncode == 130
    held = lock_folder(out)  # and in-process, with the library call
    try:
        with pytest.raises(DatasetError, match="another generate run"):
            generate(recipe_from_dict(TINY), out, n=24, seed=4, shard_size=3, workers=1)
    finally:
        held.close()


def test_a_render_worker_dying_is_survived(tiny_recipe, tmp_path, clean):
    """Found by this test: a killed worker left multiprocessing.Pool.imap waiting forever."""
    reference = clean()
    out = tmp_path / "ds"
    proc = cli_generate(tiny_recipe, out, "--workers", "2", fault=f"kill:render:{tmp_path / 'once'}")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "once").exists()
    same_dataset(out, reference)


def test_render_workers_that_keep_dying_give_a_clear_error(tiny_recipe, tmp_path):
    proc = cli_generate(tiny_recipe, tmp_path / "ds", "--workers", "2", fault="kill:render")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "render worker processes died" in proc.stderr and "resume" in proc.stderr


def test_a_lost_dask_worker_is_retried(tiny_recipe, tmp_path, clean):
    pytest.importorskip("dask.distributed")
    reference = clean("tfrecord")
    out = tmp_path / "ds"
    proc = cli_generate(tiny_recipe, out, "--workers", "2", "--engine", "dask", fmt="tfrecord",
                        fault=f"kill:record:{tmp_path / 'once'}")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "once").exists()
    same_dataset(out, reference)


# ----------------------------------------------------------------------------- corruption

@pytest.fixture
def dataset(tmp_path):
    out = tmp_path / "ds"
    generate(recipe_from_dict(TINY), out, n=6, seed=1, shard_size=3, workers=1, with_crops=False)
    return out


def edit_manifest(out: Path, change) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    change(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("change, expected", [
    (lambda m: m["shards"][0].update(sha256="0" * 64), "lmdb/shard-00000: content hash differs from the manifest"),
    (lambda m: m["shards"][1].update(records=4), "lmdb/shard-00001: holds 3 records, the manifest says 4"),
    (lambda m: m["shards"][1].update(start=2), "manifest: images shards overlap at sample 2"),
    (lambda m: m.update(n=9), "images shards cover samples 0..6, but n is 9"),
    (lambda m: m["shards"][1].update(path="lmdb/shard-00007"), "lmdb/shard-00007: missing"),
    (lambda m: m.update(complete=False), "generation did not finish"),
    (lambda m: m.update(schema="something/else"), "unknown schema"),
])
def test_verify_names_a_manifest_that_does_not_match_its_shards(dataset, change, expected):
    edit_manifest(dataset, change)
    assert any(expected in p for p in verify(dataset)), verify(dataset)


def test_verify_names_an_unreadable_manifest(dataset):
    (dataset / "manifest.json").write_text('{"schema": "synthtext-industrial/manifest/1", "shards": [')
    problems = verify(dataset)
    assert len(problems) == 1 and "manifest.json is unreadable" in problems[0]
    result = CliRunner().invoke(main, ["verify", str(dataset)])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_a_truncated_lmdb_shard_is_named_not_a_crash(dataset):
    """Found by this test: reading a truncated LMDB file through its map killed the process with SIGBUS."""
    data = dataset / "lmdb" / "shard-00001" / "data.mdb"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    assert [p for p in verify(dataset) if "truncated" in p] == [verify(dataset)[0]]
    assert verify(dataset)[0].startswith("lmdb/shard-00001: truncated")
    pages = LmdbDataset(dataset)
    assert pages[0]["texts"]
    with pytest.raises(CorruptRecord, match="shard-00001: truncated"):
        pages[3]
    # generate redoes it
    again = generate(recipe_from_dict(TINY), dataset, n=6, seed=1, shard_size=3, workers=1, with_crops=False)
    assert again.rendered == 3 and verify(dataset) == []


def test_a_shard_that_is_not_lmdb_is_named(dataset):
    (dataset / "lmdb" / "shard-00000" / "data.mdb").write_bytes(b"\0" * 10000)
    problems = verify(dataset)
    assert problems and problems[0].startswith("lmdb/shard-00000: cannot open the LMDB shard"), problems


# ----------------------------------------------------------------------------- memory and size

def test_lmdb_map_grows_past_its_first_size(tmp_path):
    rng = np.random.default_rng(0)
    writer = ShardWriter(tmp_path / "big")
    first = writer.map_size
    blobs = [rng.bytes(3 << 20) for _ in range(12)]  # 36 MB, more than 4x the first map
    for k, blob in enumerate(blobs):
        writer.add(blob, f"label {k}")
    writer.finish()
    assert writer.map_size > first
    with lmdb.open(str(tmp_path / "big"), readonly=True, lock=False) as env, env.begin() as txn:
        assert [txn.get(b"image-%09d" % (k + 1)) for k in range(12)] == blobs
    assert content_hash(tmp_path / "big")[1] == 12


@pytest.mark.parametrize("fmt", ["lmdb", "tfrecord"])
def test_zero_one_and_shards_bigger_than_n_from_the_cli(tiny_recipe, tmp_path, fmt):
    runner = CliRunner()
    for n, shard_size in (("0", "5"), ("1", "1"), ("2", "1000")):
        out = tmp_path / f"{fmt}-{n}"
        result = runner.invoke(main, ["generate", str(tiny_recipe), "-n", n, "--shard-size", shard_size,
                                      "--format", fmt, "--workers", "2", "-o", str(out)])
        assert result.exit_code == 0, result.output
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["complete"] and manifest["counts"]["images"] == int(n) and verify(out) == []
        assert len([e for e in manifest["shards"] if e["kind"] == "images"]) == (1 if int(n) else 0)
