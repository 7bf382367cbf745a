"""Turn a recipe into a sharded dataset: parallel, reproducible, resumable.

Sample i depends on (recipe, seed, i) only. Worker processes render samples;
the main process writes them into shards in index order, so the content of
every shard is the same for any number of workers. A shard is written under a
temporary name, renamed when complete, then recorded with its content hash in
`manifest.json`; a rerun of the same command skips recorded shards whose hash
still matches and redoes the rest.
"""
from __future__ import annotations

import fcntl
import json
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import __version__
from .crops import line_crops
from .lmdb_store import ShardWriter, content_hash, shard_bytes
from .recipe import Recipe
from .render import encode_image, render_sample
from .textgen import charset

MANIFEST_SCHEMA = "synthtext-industrial/manifest/1"
CROP_FORMAT = "png"


class DatasetError(RuntimeError):
    """A problem with the output folder, worded for the person running the command."""


@dataclass(frozen=True)
class ShardPlan:
    number: int
    start: int  # first sample index
    stop: int  # one past the last

    @property
    def name(self) -> str:
        return f"shard-{self.number:05d}"


def plan_shards(n: int, shard_size: int) -> list[ShardPlan]:
    return [ShardPlan(k, start, min(start + shard_size, n)) for k, start in enumerate(range(0, n, shard_size))]


@dataclass
class Record:
    """One rendered sample, encoded and ready to store."""

    index: int
    image: bytes
    label: str
    gt: bytes
    lines: int
    chars: int
    crops: list[tuple[bytes, str]] = field(default_factory=list)


def render_record(recipe: Recipe, seed: int, index: int, with_crops: bool) -> Record:
    sample = render_sample(recipe, seed, index)
    enc = recipe.canvas.encoding
    crops = []
    if with_crops:
        crops = [(encode_image(crop, CROP_FORMAT), text) for crop, text in line_crops(sample)]
    return Record(
        index=index,
        image=encode_image(sample.image, enc.format, enc.quality),
        label="\n".join(line.text for line in sample.lines),
        gt=json.dumps(sample.to_dict(), separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        lines=len(sample.lines),
        chars=sum(len(line.chars) for line in sample.lines),
        crops=crops,
    )


# ----------------------------------------------------------------------------- worker processes

_WORKER: dict = {}


def _init_worker(recipe: Recipe, seed: int, with_crops: bool) -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already
    _WORKER.update(recipe=recipe, seed=seed, with_crops=with_crops)


def _render_in_worker(index: int) -> Record:
    return render_record(_WORKER["recipe"], _WORKER["seed"], index, _WORKER["with_crops"])


def _records(recipe: Recipe, seed: int, indices: list[int], with_crops: bool, workers: int) -> Iterator[Record]:
    """Rendered records in index order, from `workers` processes."""
    if workers <= 1 or len(indices) <= 1:
        for i in indices:
            yield render_record(recipe, seed, i, with_crops)
        return
    ctx = mp.get_context("spawn" if os.name != "posix" else "forkserver")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(recipe, seed, with_crops)) as pool:
        yield from pool.imap(_render_in_worker, indices, chunksize=2)


# ----------------------------------------------------------------------------- manifest

def _manifest_path(out: Path) -> Path:
    return out / "manifest.json"


def read_manifest(out: Path) -> dict | None:
    path = _manifest_path(out)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path} is unreadable ({exc}); use --overwrite to start again") from None


def _write_manifest(out: Path, manifest: dict) -> None:
    tmp = _manifest_path(out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(_manifest_path(out))


def _identity(recipe: Recipe, seed: int, fmt: str, shard_size: int, with_crops: bool) -> dict:
    """What must match for an existing output folder to be continued."""
    return {"recipe_sha256": recipe.sha256, "seed": seed, "format": fmt, "shard_size": shard_size,
            "crops": with_crops}


@dataclass
class Summary:
    out: Path
    images: int = 0
    lines: int = 0
    chars: int = 0
    crops: int = 0
    bytes: int = 0
    seconds: float = 0.0
    rendered: int = 0  # images rendered by this run (the rest were resumed)
    skipped_shards: int = 0

    @property
    def pages_per_s(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0


def _lock(out: Path):
    handle = open(out / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DatasetError(f"{out} is being written by another generate run (lock {out / '.lock'})") from None
    return handle


def _shard_ok(out: Path, entry: dict) -> bool:
    path = out / entry["path"]
    if not path.is_dir():
        return False
    try:
        digest, count = content_hash(path)
    except Exception:  # a damaged environment is simply redone
        return False
    return digest == entry["sha256"] and count == entry["records"]


def generate(recipe: Recipe, out: str | Path, n: int, seed: int = 0, fmt: str = "lmdb", shard_size: int = 1000,
             workers: int | None = None, with_crops: bool = True, overwrite: bool = False,
             progress: Callable[[int], None] | None = None, on_resume: Callable[[int, int], None] | None = None
             ) -> Summary:
    """Write `n` samples of `recipe` to `out`; see the module docstring for the guarantees."""
    if fmt != "lmdb":
        raise DatasetError(f"format {fmt!r} is not available yet; use lmdb")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    lock = _lock(out)
    try:
        return _generate_locked(recipe, out, n, seed, fmt, shard_size, workers, with_crops, overwrite,
                                progress, on_resume)
    finally:
        lock.close()


def _generate_locked(recipe, out, n, seed, fmt, shard_size, workers, with_crops, overwrite, progress, on_resume):
    identity = _identity(recipe, seed, fmt, shard_size, with_crops)
    previous = read_manifest(out)
    if previous is not None and not overwrite:
        differs = [k for k, v in identity.items() if previous.get(k) != v]
        if differs:
            detail = ", ".join(f"{k}: {previous.get(k)!r} there, {identity[k]!r} now" for k in differs)
            raise DatasetError(f"{out} holds a dataset made with different settings ({detail}); "
                               f"choose another folder or pass --overwrite")
    if overwrite:
        for sub in ("lmdb", "crops", "manifest.json"):
            target = out / sub
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        previous = None
    elif previous is None and any(p.name != ".lock" for p in out.iterdir()):
        raise DatasetError(f"{out} is not empty and has no manifest.json; choose an empty folder or pass --overwrite")

    plans = plan_shards(n, shard_size)
    done = {}
    for entry in (previous or {}).get("shards", []):
        done.setdefault(entry["name"], {})[entry["kind"]] = entry
    manifest = {
        "schema": MANIFEST_SCHEMA, "tool_version": __version__, **identity, "n": n,
        "recipe_source": recipe.source, "recipe": recipe.raw_text,
        "charset": "".join(sorted(charset(recipe.text))),
        "canvas": {"width": recipe.canvas.width, "height": recipe.canvas.height,
                   "encoding": recipe.canvas.encoding.format},
        "complete": False, "counts": {}, "shards": [],
    }
    kinds = ["images"] + (["crops"] if with_crops else [])
    subdir = {"images": "lmdb", "crops": "crops"}
    summary = Summary(out)
    todo: list[ShardPlan] = []
    for plan in plans:
        entries = done.get(plan.name, {})
        if all(k in entries and entries[k]["start"] == plan.start and entries[k]["stop"] == plan.stop
               and _shard_ok(out, entries[k]) for k in kinds):
            manifest["shards"] += [entries[k] for k in kinds]
            summary.skipped_shards += 1
            continue
        for k in kinds:  # anything left under this shard's names is redone from scratch
            for suffix in ("", ".tmp"):
                shutil.rmtree(out / subdir[k] / (plan.name + suffix), ignore_errors=True)
        todo.append(plan)
    for k in kinds:  # stray temporary shards from a killed run
        for stray in (out / subdir[k]).glob("*.tmp") if (out / subdir[k]).exists() else []:
            shutil.rmtree(stray, ignore_errors=True)
    if on_resume and summary.skipped_shards:
        on_resume(summary.skipped_shards, sum(p.stop - p.start for p in plans if p not in todo))
    _write_manifest(out, manifest)

    start_time = time.perf_counter()
    indices = [i for plan in todo for i in range(plan.start, plan.stop)]
    records = _records(recipe, seed, indices, with_crops, workers)
    for plan in todo:
        writers = {k: ShardWriter(out / subdir[k] / plan.name) for k in kinds}
        try:
            stats = {"lines": 0, "chars": 0}
            for _ in range(plan.start, plan.stop):
                record = next(records)
                writers["images"].add(record.image, record.label, record.gt)
                for crop, text in record.crops:
                    writers["crops"].add(crop, text)
                stats["lines"] += record.lines
                stats["chars"] += record.chars
                summary.rendered += 1
                if progress:
                    progress(1)
            for k in reversed(kinds):  # crops first: the page shard's name appears last
                writers[k].finish()
        except BaseException:
            for w in writers.values():
                w.abort()
            records.close()
            raise
        for k in kinds:
            path = out / subdir[k] / plan.name
            digest, count = content_hash(path)
            manifest["shards"].append({
                "name": plan.name, "kind": k, "path": f"{subdir[k]}/{plan.name}", "start": plan.start,
                "stop": plan.stop, "records": count, "bytes": shard_bytes(path), "sha256": digest,
                "lines": stats["lines"], "chars": stats["chars"]})
        manifest["shards"].sort(key=lambda e: (e["kind"], e["name"]))
        _write_manifest(out, manifest)
    summary.seconds = time.perf_counter() - start_time

    images = [e for e in manifest["shards"] if e["kind"] == "images"]
    summary.images = sum(e["records"] for e in images)
    summary.lines = sum(e["lines"] for e in images)
    summary.chars = sum(e["chars"] for e in images)
    summary.crops = sum(e["records"] for e in manifest["shards"] if e["kind"] == "crops")
    summary.bytes = sum(e["bytes"] for e in manifest["shards"])
    manifest["counts"] = {"images": summary.images, "lines": summary.lines, "chars": summary.chars,
                          "crops": summary.crops, "bytes": summary.bytes}
    manifest["complete"] = True
    _write_manifest(out, manifest)
    return summary


def verify(out: str | Path) -> list[str]:
    """Re-hash every shard and decode every record; returns the problems found (empty: all good)."""
    import cv2
    import numpy as np

    from .lmdb_store import NUM_SAMPLES, image_key, label_key, open_readonly

    out = Path(out)
    manifest = read_manifest(out)
    if manifest is None:
        return [f"{out}: no manifest.json"]
    problems = []
    if not manifest.get("complete"):
        problems.append(f"{out}: generation did not finish (rerun the same generate command to resume)")
    listed = {e["path"] for e in manifest["shards"]}
    for sub in ("lmdb", "crops"):
        for path in sorted((out / sub).glob("shard-*")) if (out / sub).exists() else []:
            if f"{sub}/{path.name}" not in listed:
                problems.append(f"{sub}/{path.name}: on disk but not in the manifest")
    for entry in manifest["shards"]:
        path = out / entry["path"]
        if not path.is_dir():
            problems.append(f"{entry['path']}: missing")
            continue
        try:
            digest, count = content_hash(path)
        except Exception as exc:
            problems.append(f"{entry['path']}: unreadable LMDB ({exc})")
            continue
        if digest != entry["sha256"]:
            problems.append(f"{entry['path']}: content hash differs from the manifest")
        if count != entry["records"]:
            problems.append(f"{entry['path']}: num-samples is {count}, the manifest says {entry['records']}")
        with open_readonly(path) as env, env.begin() as txn:
            total = int(txn.get(NUM_SAMPLES, b"0"))
            for i in range(1, total + 1):
                image, label = txn.get(image_key(i)), txn.get(label_key(i))
                if image is None or label is None:
                    problems.append(f"{entry['path']} record {i}: missing image or label")
                    continue
                decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_UNCHANGED)
                if decoded is None or decoded.ndim != 2:
                    problems.append(f"{entry['path']} record {i}: image does not decode to grayscale")
                try:
                    label.decode("utf-8")
                except UnicodeDecodeError:
                    problems.append(f"{entry['path']} record {i}: label is not UTF-8")
    return problems
