"""Turn a recipe into a sharded dataset: parallel, reproducible, resumable.

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

import errno
import fcntl
import json
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import lmdb

from . import __version__
from .crops import framed_crops
from .recipe import Recipe
from .render import encode_image, render_sample
from .shards import FORMATS, KINDS, Crop, Record, ShardSink, remove_shard, shard_bytes, shard_folders, \
    shard_hash, shard_relpath
from .textgen import charset

MANIFEST_SCHEMA = "synthtext-industrial/manifest/1"
CROP_FORMAT = "png"
ENGINES = ("local", "dask")
RESUME_CHECKS = ("hash", "size")
FAULT_ENV = "SYNTHTEXT_INDUSTRIAL_FAULT"
POOL_RESTARTS = 3  # render pools replaced after a worker process died, per run


class DatasetError(RuntimeError):
    """A problem with the output folder, worded for the person running the command."""


class DatasetRefused(DatasetError):
    """The command would delete finished shards: refused before anything is written (the CLI exits 2)."""


@dataclass(frozen=True)
class ShardPlan:
    number: int
    start: int  # first sample index
    stop: int  # one past the last
    total: int  # number of shards in the dataset (TFRecord names carry it)

    @property
    def name(self) -> str:
        return f"shard-{self.number:05d}"


def plan_shards(n: int, shard_size: int) -> list[ShardPlan]:
    starts = range(0, n, shard_size)
    return [ShardPlan(k, start, min(start + shard_size, n), len(starts)) for k, start in enumerate(starts)]


def _fault(point: str) -> None:
    """Test hook: `SYNTHTEXT_INDUSTRIAL_FAULT=ACTION:POINT[:FILE]` fails or pauses a run at POINT.

    ACTION `kill` sends SIGKILL to this process, `enospc` raises a disk-full OSError. With
    FILE only the first process to create that file is hit (for worker deaths that a retry
    must survive). ACTION `pause` (FILE required) creates FILE and waits there until FILE is
    removed; Ctrl-C still stops the run. A test that interrupts a run waits for FILE, and so
    knows where the run is, and that it has not finished, however loaded the machine is.
    Points: render (in a render worker), rendering (local engine, once: the first shard is
    open and its first sample asked for; render workers are starting up), record (before a
    record is stored), finish-crops / finish-images (before that shard's rename), shard-done
    (after the renames, before the manifest records the shard), uploaded (OUT a URL: after
    the shard's objects are uploaded, before the manifest records it), recorded/shard-NNNNN
    (once the manifest lists that shard). Unset, it does nothing.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    action, where, *once = spec.split(":", 2)
    if where != point:
        return
    if action == "pause" and not once:
        raise ValueError(f"{FAULT_ENV}={spec}: pause needs a FILE (pause:POINT:FILE)")
    if once:
        try:
            os.close(os.open(once[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    elif action == "pause":
        while os.path.exists(once[0]):
            _stop_point()
            time.sleep(0.01)


_STOP = threading.Event()  # set by the first Ctrl-C during a local run


def _stop_point() -> None:
    """Where a deferred Ctrl-C takes effect: between records, never inside multiprocessing's own code."""
    if _STOP.is_set():
        raise KeyboardInterrupt


@contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """The first Ctrl-C stops the run at the next record; a second one at once.

    A KeyboardInterrupt raised anywhere (e.g. while the pool starts a worker)
    leaves half-started workers that print tracebacks; this keeps it clean.
    Only when this is the main thread and SIGINT has Python's default handler.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def first(signum, frame) -> None:
        _STOP.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    _STOP.clear()
    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _STOP.clear()


def _write_failure(out: Path, what: str, exc: BaseException) -> DatasetError:
    """A write error as the user should read it: what failed, why, and that a rerun resumes."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    try:
        free = shutil.disk_usage(out).free
    except OSError:
        free = None
    low = free is not None and free < 64 << 20  # LMDB reports a full disk as EIO
    if low or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)):
        reason += f"; the disk holding {out} is full" + (f" ({free / 1e6:.1f} MB free)" if low else "")
    return DatasetError(f"writing {what} failed: {reason}. Finished shards are kept; free space or fix the folder, "
                        f"then rerun the same command to resume")


def render_record(recipe: Recipe, seed: int, index: int, with_crops: bool) -> Record:
    sample = render_sample(recipe, seed, index)
    enc = recipe.canvas.encoding
    crops = []
    if with_crops:
        crops = [Crop(encode_image(crop, CROP_FORMAT), text, crop.shape[0], crop.shape[1])
                 for crop, text in framed_crops(sample, recipe.crops)]
    return Record(
        index=index,
        seed=seed,
        image=encode_image(sample.image, enc.format, enc.quality),
        image_format=enc.format,
        label="\n".join(line.text for line in sample.lines),
        gt=json.dumps(sample.to_dict(), separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        lines=len(sample.lines),
        chars=sum(len(line.chars) for line in sample.lines),
        crops=crops,
    )


def write_shard(out: Path, fmt: str, kinds: list[str], plan: ShardPlan, records: Iterable[Record],
                progress: Callable[[int], None] | None = None) -> list[dict]:
    """Write one shard of each kind from `records` (in index order); returns their manifest entries."""
    sinks, finished = {}, []
    lines = chars = longest = empty = 0
    try:
        for k in kinds:
            sinks[k] = ShardSink(fmt, k, out / shard_relpath(fmt, k, plan.number, plan.total))
        for record in records:
            _stop_point()
            _fault("record")
            for sink in sinks.values():
                sink.add(record)
            lines += record.lines
            empty += record.lines == 0
            chars += record.chars
            longest = max([longest] + [len(text) for text in record.label.split("\n") if record.lines])
            if progress:
                progress(1)
        for k in reversed(kinds):  # crops first: the page shard's final name appears last
            _fault(f"finish-{k}")
            finished.append(sinks[k].finish())
        _fault("shard-done")
    except BaseException as exc:
        for sink in sinks.values():
            sink.abort()
        for path in finished:  # a crop shard whose page shard failed goes too
            remove_shard(path)
        if isinstance(exc, (OSError, lmdb.Error)):
            raise _write_failure(out, f"shard {plan.name} into {out}", exc) from None
        raise
    entries = []
    for k in kinds:
        relpath = shard_relpath(fmt, k, plan.number, plan.total)
        digest, count = shard_hash(fmt, out / relpath)
        entries.append({"name": plan.name, "kind": k, "path": relpath, "start": plan.start, "stop": plan.stop,
                        "records": count, "bytes": shard_bytes(fmt, out / relpath), "sha256": digest,
                        "lines": lines, "chars": chars, "max_line_length": longest, "empty_pages": empty})
    return entries


def _write_job_shard(job: dict, plan: ShardPlan, records: Iterable[Record],
                     progress: Callable[[int], None] | None = None) -> list[dict]:
    """Write one shard into OUT; for a URL, into a local temporary folder (LMDB needs one), then upload it."""
    if job["url"] is None:
        return write_shard(job["out"], job["fmt"], job["kinds"], plan, records, progress)
    from .remote import RemoteFolder, _io

    target = RemoteFolder(job["url"])
    with tempfile.TemporaryDirectory(prefix="synthtext-shard-") as tmp:
        entries = write_shard(Path(tmp), job["fmt"], job["kinds"], plan, records, progress)
        for entry in reversed(entries):  # crops first, like the local renames
            target.put(Path(tmp), entry["path"])
        with _io(f"uploading {plan.name} to {job['url']}"):
            _fault("uploaded")
    return entries


# ----------------------------------------------------------------------------- local engine

_WORKER: dict = {}


def _init_worker(recipe: Recipe, seed: int, with_crops: bool) -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _exit_with_parent()
    _WORKER.update(recipe=recipe, seed=seed, with_crops=with_crops)


def _exit_with_parent() -> None:
    """End this worker when the generate process dies (SIGKILL, OOM killer): else it waits forever on its queue."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent's sentinel closes, i.e. when it is gone
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _render_in_worker(index: int) -> Record:
    _fault("render")
    return render_record(_WORKER["recipe"], _WORKER["seed"], index, _WORKER["with_crops"])


def _records(recipe: Recipe, seed: int, indices: list[int], with_crops: bool, workers: int) -> Iterator[Record]:
    """Rendered records in index order, from `workers` processes.

    At most a few samples per worker are in flight, so memory stays flat however large N is.
    A worker that dies (killed, out of memory) breaks the pool: a new pool renders what was
    in flight, up to POOL_RESTARTS times, then the run stops with a DatasetError.
    """
    if workers <= 1 or len(indices) <= 1:
        _fault("rendering")
        for i in indices:
            yield render_record(recipe, seed, i, with_crops)
        return
    ctx = mp.get_context("spawn" if os.name != "posix" else "forkserver")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(recipe, seed, with_crops))

    pool, restarts, todo, pending = new_pool(), 0, iter(indices), deque()
    try:
        while True:
            while len(pending) < 4 * workers:
                i = next(todo, None)
                if i is None:
                    break
                pending.append((i, pool.submit(_render_in_worker, i)))
            if not pending:
                return
            if restarts == 0 and pending[0][0] == indices[0]:
                _fault("rendering")  # once: the first samples are asked for, the workers start up
            try:
                record = pending[0][1].result()
            except BrokenProcessPool:
                restarts += 1
                if restarts > POOL_RESTARTS:
                    raise DatasetError(f"render worker processes died {restarts} times (killed, or out of memory?) "
                                       f"while rendering sample {pending[0][0]}; finished shards are kept, rerun "
                                       f"the same command to resume (perhaps with fewer --workers)") from None
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
                pending = deque((i, pool.submit(_render_in_worker, i)) for i, _ in pending)
                continue
            pending.popleft()
            yield record
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_local(job: dict, todo: list[ShardPlan], workers: int, progress, on_shard) -> None:
    indices = [i for plan in todo for i in range(plan.start, plan.stop)]
    records = _records(job["recipe"], job["seed"], indices, job["with_crops"], workers)
    try:
        for plan in todo:
            batch = (next(records) for _ in range(plan.start, plan.stop))
            on_shard(_write_job_shard(job, plan, batch, progress))
    finally:
        records.close()


# ----------------------------------------------------------------------------- dask engine

def dask_shard_task(job: dict, plan: ShardPlan) -> list[dict]:
    """One Dask task: render and write one shard (runs on a worker; OUT or the URL must be reachable there)."""
    import cv2

    cv2.setNumThreads(1)
    _fault("render")
    records = (render_record(job["recipe"], job["seed"], i, job["with_crops"]) for i in range(plan.start, plan.stop))
    return _write_job_shard(job, plan, records)


def _run_dask(job: dict, todo: list[ShardPlan], workers: int, scheduler: str | None, progress, on_shard) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise DatasetError("--engine dask needs dask.distributed: pip install 'synthtext-industrial[dask]'") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            tag = job["recipe"].sha256[:12]
            futures = {client.submit(dask_shard_task, job, plan, key=f"synthtext-{tag}-{job['seed']}-{plan.name}",
                                     retries=2): plan for plan in todo}
            try:
                for future in as_completed(futures):
                    try:
                        entries = future.result()
                    except Exception as exc:
                        if type(exc).__name__ != "KilledWorker":
                            raise
                        import dask

                        tries = dask.config.get("distributed.scheduler.allowed-failures", 3) + 1
                        raise DatasetError(f"Dask workers died {tries} times running "
                                           f"{futures[future].name} (killed, or out of memory?); finished shards "
                                           f"are kept, rerun the same command to resume") from None
                    on_shard(entries)
                    if progress:
                        progress(futures[future].stop - futures[future].start)
            except BaseException:
                client.cancel(list(futures))
                raise
    except OSError as exc:
        raise DatasetError(f"could not reach the Dask scheduler {scheduler}: {exc}") from None
    finally:
        if cluster is not None:
            cluster.close()


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


def _manifest_bytes(manifest: dict) -> bytes:
    """The file's exact bytes: a folder and a URL get the same manifest.json."""
    return (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _write_manifest(out: Path, manifest: dict) -> None:
    tmp = _manifest_path(out).with_suffix(".json.tmp")
    try:
        tmp.write_bytes(_manifest_bytes(manifest))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(_manifest_path(out))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_failure(out, str(_manifest_path(out)), exc) from None


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


def _lock(out: Path):
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


class _Folder:
    """OUT as a local (or mounted) folder; remote.RemoteFolder offers the same operations for a URL."""

    def __init__(self, out: Path):
        self.out, self.url, self.label = out, None, out

    @contextmanager
    def locked(self) -> Iterator[None]:
        lock = _lock(self.out)
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
            raise _write_failure(self.out, f"renaming {relpath} to {new_relpath}", exc) from None

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
    from .remote import RemoteFolder, is_url

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
        store = _Folder(out)
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
        _fault(f"recorded/{entries[0]['name']}")

    job = {"recipe": recipe, "seed": seed, "with_crops": with_crops, "out": store.out, "url": store.url,
           "fmt": fmt, "kinds": kinds}
    start_time = time.perf_counter()
    if engine == "dask" and todo:
        _run_dask(job, todo, workers, scheduler, progress, on_shard)
    elif todo:
        with _deferred_interrupt():
            _run_local(job, todo, workers, progress, on_shard)
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
