"""Writing shards: a sample rendered into a record, records into one shard of each kind, a shard uploaded.

Sample i depends on (recipe, seed, i) only, and a shard's records go in index order, so a shard's content
is the same whichever process or engine writes it. A shard is written under a temporary name and renamed
when complete (shards.ShardSink); for a URL, into a local temporary folder, then uploaded.
"""
from __future__ import annotations

import errno
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import lmdb

from ..crops import framed_crops
from ..recipe import Recipe
from ..render import encode_image, render_sample
from ..store.format import CROP_FORMAT, DatasetError
from ..store.shards import Crop, Record, ShardSink, remove_shard, shard_bytes, shard_hash, shard_relpath
from . import faults


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


def write_failure(out: Path, what: str, exc: BaseException) -> DatasetError:
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
            faults.stop_point()
            faults.fault("record")
            for sink in sinks.values():
                sink.add(record)
            lines += record.lines
            empty += record.lines == 0
            chars += record.chars
            longest = max([longest] + [len(text) for text in record.label.split("\n") if record.lines])
            if progress:
                progress(1)
        for k in reversed(kinds):  # crops first: the page shard's final name appears last
            faults.fault(f"finish-{k}")
            finished.append(sinks[k].finish())
        faults.fault("shard-done")
    except BaseException as exc:
        for sink in sinks.values():
            sink.abort()
        for path in finished:  # a crop shard whose page shard failed goes too
            remove_shard(path)
        if isinstance(exc, (OSError, lmdb.Error)):
            raise write_failure(out, f"shard {plan.name} into {out}", exc) from None
        raise
    entries = []
    for k in kinds:
        relpath = shard_relpath(fmt, k, plan.number, plan.total)
        digest, count = shard_hash(fmt, out / relpath)
        entries.append({"name": plan.name, "kind": k, "path": relpath, "start": plan.start, "stop": plan.stop,
                        "records": count, "bytes": shard_bytes(fmt, out / relpath), "sha256": digest,
                        "lines": lines, "chars": chars, "max_line_length": longest, "empty_pages": empty})
    return entries


def write_job_shard(job: dict, plan: ShardPlan, records: Iterable[Record],
                     progress: Callable[[int], None] | None = None) -> list[dict]:
    """Write one shard into OUT; for a URL, into a local temporary folder (LMDB needs one), then upload it."""
    if job["url"] is None:
        return write_shard(job["out"], job["fmt"], job["kinds"], plan, records, progress)
    from ..store.remote import RemoteFolder, storage_errors

    target = RemoteFolder(job["url"])
    with tempfile.TemporaryDirectory(prefix="synthtext-shard-") as tmp:
        entries = write_shard(Path(tmp), job["fmt"], job["kinds"], plan, records, progress)
        for entry in reversed(entries):  # crops first, like the local renames
            target.put(Path(tmp), entry["path"])
        with storage_errors(f"uploading {plan.name} to {job['url']}"):
            faults.fault("uploaded")
    return entries
