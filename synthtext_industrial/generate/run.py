"""One generate run: plan the shards, keep finished ones, write the rest with an engine, keep the manifest.

Sample i depends on (recipe, seed, i) only, and a shard's records go in index
order, so the content of every shard is the same for any number of workers and
either engine. `local`: worker processes render samples and this process writes
the shards. `dask`: one task per shard on a dask.distributed cluster; the task
renders and writes its shard into OUT, which must be a folder every worker can
reach at the same path. Either way a shard is written under a temporary name,
renamed when complete, then recorded with its content hash in `manifest.json`;
a rerun of the same command keeps recorded shards whose hash still matches and
redoes the rest. A larger n extends a dataset the same way (what a fresh run with that n would
write); a smaller n that would drop finished shards is refused (DatasetRefused): nothing finished
is deleted without `overwrite`. Write errors (full disk, read-only folder) and dead workers
become DatasetErrors that say so; docs/robustness.md lists every fault tried.
OUT may also be an fsspec URL (s3://, gs://, ...): remote.py stages each shard
in a local temporary folder and uploads it before the manifest records it.
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .. import __version__
from ..recipe import Recipe
from ..stages.text import charset
from ..store.format import FORMATS, KINDS, MANIFEST_SCHEMA, DatasetError, manifest_bytes, manifest_path, \
    read_manifest
from ..store.shards import remove_shard, shard_bytes, shard_folders, shard_hash, shard_relpath
from . import faults
from .engines import ENGINES, run_dask, run_local
from .writer import ShardPlan, plan_shards, write_failure

RESUME_CHECKS = ("hash", "size")


class DatasetRefused(DatasetError):
    """The command would delete finished shards: refused before anything is written (the CLI exits 2)."""


def _write_manifest(out: Path, manifest: dict) -> None:
    tmp = manifest_path(out).with_suffix(".json.tmp")
    try:
        tmp.write_bytes(manifest_bytes(manifest))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(manifest_path(out))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_failure(out, str(manifest_path(out)), exc) from None


def _identity(recipe: Recipe, seed: int, fmt: str, shard_size: int, with_crops: bool) -> dict:
    """What must match for an existing output folder to be continued (another version may render differently)."""
    return {"recipe_sha256": recipe.sha256, "seed": seed, "format": fmt, "shard_size": shard_size,
            "crops": with_crops, "tool_version": __version__}


@dataclass
class Summary:
    out: Path | str  # the folder, or the URL
    images: int = 0
    lines: int = 0
    chars: int = 0
    empty_pages: int = 0  # pages without text (only where the recipe sets layout.empty_pages)
    crops: int = 0
    bytes: int = 0
    seconds: float = 0.0
    rendered: int = 0  # images rendered by this run (the rest were resumed)
    skipped_shards: int = 0

    @property
    def pages_per_s(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0


def lock_folder(out: Path):
    try:
        handle = open(out / ".lock", "w")
    except OSError as exc:
        raise DatasetError(f"cannot write to the output folder {out}: {exc.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DatasetError(f"{out} is being written by another generate run (lock {out / '.lock'})") from None
    return handle


def _shard_ok(out: Path, fmt: str, entry: dict) -> bool:
    path = out / entry["path"]
    if not path.exists():
        return False
    try:
        digest, count = shard_hash(fmt, path)
    except Exception:  # a damaged shard is simply redone
        return False
    return digest == entry["sha256"] and count == entry["records"]


def _entry_order(entry: dict) -> tuple[str, str]:
    return entry["kind"], entry["name"]


class LocalFolder:
    """OUT as a local (or mounted) folder; remote.RemoteFolder offers the same operations for a URL."""

    def __init__(self, out: Path):
        self.out, self.url, self.label = out, None, out

    @contextmanager
    def locked(self) -> Iterator[None]:
        lock = lock_folder(self.out)
        try:
            yield
        finally:
            lock.close()

    def read_manifest(self) -> dict | None:
        return read_manifest(self.out)

    def write_manifest(self, manifest: dict) -> None:
        _write_manifest(self.out, manifest)

    def has_other_files(self) -> bool:
        return any(p.name != ".lock" for p in self.out.iterdir())

    def remove(self, relpaths: list[str]) -> None:
        for relpath in relpaths:
            remove_shard(self.out / relpath)

    def shard_ok(self, fmt: str, entry: dict, check: str) -> bool:
        if check == "hash":
            return _shard_ok(self.out, fmt, entry)
        try:
            return shard_bytes(fmt, self.out / entry["path"]) == entry["bytes"]
        except OSError:
            return False

    def rename(self, relpath: str, new_relpath: str) -> None:
        try:
            os.replace(self.out / relpath, self.out / new_relpath)
        except OSError as exc:
            raise write_failure(self.out, f"renaming {relpath} to {new_relpath}", exc) from None

    def remove_unlisted(self, fmt: str, kept: set[str]) -> None:
        """Partial, damaged, stray or superseded shards are removed, then redone."""
        keep = {self.out / relpath for relpath in kept}
        for folder in shard_folders(fmt):
            for path in sorted((self.out / folder).iterdir()) if (self.out / folder).is_dir() else []:
                if path not in keep:
                    remove_shard(path)

    def confirm(self, entries: list[dict]) -> None:
        """Nothing to check: the shard was renamed into this folder."""


def generate(recipe: Recipe, out: str | Path, n: int, seed: int = 0, fmt: str = "lmdb", shard_size: int = 1000,
             workers: int | None = None, with_crops: bool = True, overwrite: bool = False, engine: str = "local",
             scheduler: str | None = None, progress: Callable[[int], None] | None = None,
             on_resume: Callable[[int, int], None] | None = None, resume_check: str = "hash") -> Summary:
    """Write `n` samples of `recipe` to `out`; see the module docstring for the guarantees.

    `out`: a folder, or an fsspec URL string (`s3://bucket/prefix`, `gs://...`, `memory://...`, `file://...`).
    `workers`: render processes (local) or LocalCluster workers (dask without `scheduler`); default all cores.
    `resume_check`: how a rerun trusts recorded shards: "hash" re-reads each one (for a URL, downloads it),
    "size" only checks that its files or objects exist with the recorded size (cheap on an object store).
    """
    if fmt not in FORMATS:
        raise DatasetError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if engine not in ENGINES:
        raise DatasetError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    if resume_check not in RESUME_CHECKS:
        raise DatasetError(f"unknown resume_check {resume_check!r}; allowed: {', '.join(RESUME_CHECKS)}")
    if scheduler is not None and engine != "dask":
        raise DatasetError("a scheduler address needs --engine dask")
    if shard_size < 1 or n < 0:
        raise DatasetError(f"need n >= 0 and shard_size >= 1, got n={n}, shard_size={shard_size}")
    from ..store.remote import RemoteFolder, is_url

    if is_url(out):
        store = RemoteFolder(out)  # opens the filesystem: a missing package is reported here, before rendering
    else:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise DatasetError(f"{out} exists and is not a folder")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatasetError(f"cannot create the output folder {out}: {exc.strerror}") from None
        store = LocalFolder(out)
    workers = workers or os.cpu_count() or 1
    with store.locked():
        return _generate_locked(recipe, store, n, seed, fmt, shard_size, workers, with_crops, overwrite, engine,
                                scheduler, progress, on_resume, resume_check)


def _refuse_to_delete_finished_shards(label, previous: dict | None, n: int) -> None:
    """A smaller -n than the folder holds would drop finished shards: say what is there and how to go on.

    The manifest is trusted here (no file is read): refusing keeps everything, so a doubt costs nothing.
    """
    shards = [e for e in (previous or {}).get("shards", []) if e["kind"] == "images"]
    past = [e for e in shards if e["stop"] > n]
    if not past:
        return
    held = sum(e["records"] for e in shards)
    state = "complete" if previous.get("complete") else "not complete yet"
    raise DatasetRefused(
        f"{label} holds {held} finished pages (a {previous['n']}-page dataset, {state}); -n {n} would delete "
        f"{len(past)} finished shard(s) holding samples from {min(e['start'] for e in past)} on. To keep them, "
        f"rerun with -n {previous['n']} or more (a larger -n extends the dataset); for a {n}-page dataset, "
        f"write to a new folder, or pass --overwrite to replace this one")


def _kept_shard(store, fmt: str, entry: dict | None, plan: ShardPlan, target: str, check: str) -> dict | None:
    """The manifest entry of a finished shard that `plan` can keep as it is, or None to redo it.

    A shard is kept if it covers exactly the plan's samples (a partly filled last shard of a smaller
    run does not: it is rewritten with the samples that now follow). Extending a TFRecord dataset
    changes every file name (`-of-TOTAL`), so a kept file is renamed; a run killed between that
    rename and the manifest finds it under the new name.
    """
    if entry is None or (entry["start"], entry["stop"]) != (plan.start, plan.stop):
        return None
    for path in dict.fromkeys([entry["path"], target]):
        if store.shard_ok(fmt, {**entry, "path": path}, check):
            if path != target:
                store.rename(path, target)
            return {**entry, "path": target}
    return None


def _generate_locked(recipe, store, n, seed, fmt, shard_size, workers, with_crops, overwrite, engine, scheduler,
                     progress, on_resume, resume_check):
    identity = _identity(recipe, seed, fmt, shard_size, with_crops)
    previous = store.read_manifest()
    if previous is not None and not overwrite:
        differs = [k for k, v in identity.items() if previous.get(k) != v]
        if differs:
            detail = ", ".join(f"{k}: {previous.get(k)!r} there, {identity[k]!r} now" for k in differs)
            raise DatasetError(f"{store.label} holds a dataset made with different settings ({detail}); "
                               f"choose another folder or pass --overwrite")
    if overwrite:
        store.remove(sorted({folder for f in FORMATS for folder in shard_folders(f)}) + ["manifest.json"])
        previous = None
    elif previous is None and store.has_other_files():
        raise DatasetError(f"{store.label} is not empty and has no manifest.json; choose an empty folder or pass "
                           f"--overwrite")

    kinds = list(KINDS) if with_crops else ["images"]
    plans = plan_shards(n, shard_size)
    recorded = {(e["kind"], e["name"]): e for e in (previous or {}).get("shards", [])}
    _refuse_to_delete_finished_shards(store.label, previous, n)
    manifest = {
        "schema": MANIFEST_SCHEMA, "tool_version": __version__, **identity, "n": n,
        "recipe_source": recipe.source, "recipe": recipe.raw_text,
        "charset": "".join(sorted(charset(recipe.text))),
        "canvas": {"width": recipe.canvas.width, "height": recipe.canvas.height,
                   "encoding": recipe.canvas.encoding.format},
        "complete": False, "counts": {}, "shards": [],
    }
    summary = Summary(store.label)
    todo: list[ShardPlan] = []
    for plan in plans:
        entries = [_kept_shard(store, fmt, recorded.get((k, plan.name)), plan,
                               shard_relpath(fmt, k, plan.number, plan.total), resume_check) for k in kinds]
        if all(entries):
            manifest["shards"] += entries
            summary.skipped_shards += 1
        else:
            todo.append(plan)
    manifest["shards"].sort(key=_entry_order)  # the order a fresh run writes, however many were kept
    store.remove_unlisted(fmt, {e["path"] for e in manifest["shards"]})
    if on_resume and summary.skipped_shards:
        on_resume(summary.skipped_shards, sum(p.stop - p.start for p in plans if p not in todo))
    store.write_manifest(manifest)

    def on_shard(entries: list[dict]) -> None:
        store.confirm(entries)
        manifest["shards"] = sorted(manifest["shards"] + entries, key=_entry_order)
        summary.rendered += entries[0]["stop"] - entries[0]["start"]
        store.write_manifest(manifest)
        faults.fault(f"recorded/{entries[0]['name']}")

    job = {"recipe": recipe, "seed": seed, "with_crops": with_crops, "out": store.out, "url": store.url,
           "fmt": fmt, "kinds": kinds}
    start_time = time.perf_counter()
    if engine == "dask" and todo:
        run_dask(job, todo, workers, scheduler, progress, on_shard)
    elif todo:
        with faults.deferred_interrupt():
            run_local(job, todo, workers, progress, on_shard)
    summary.seconds = time.perf_counter() - start_time

    images = [e for e in manifest["shards"] if e["kind"] == "images"]
    summary.images = sum(e["records"] for e in images)
    summary.lines = sum(e["lines"] for e in images)
    summary.chars = sum(e["chars"] for e in images)
    summary.empty_pages = sum(e.get("empty_pages", 0) for e in images)
    summary.crops = sum(e["records"] for e in manifest["shards"] if e["kind"] == "crops")
    summary.bytes = sum(e["bytes"] for e in manifest["shards"])
    manifest["counts"] = {"images": summary.images, "lines": summary.lines, "chars": summary.chars,
                          "crops": summary.crops, "bytes": summary.bytes, "empty_pages": summary.empty_pages,
                          "max_line_length": max([0] + [e.get("max_line_length", 0) for e in images])}
    manifest["complete"] = True
    store.write_manifest(manifest)
    return summary
