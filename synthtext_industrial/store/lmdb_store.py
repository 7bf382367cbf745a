"""LMDB shards in the layout deep-text-recognition-benchmark (DTRB) reads.

Every environment holds `num-samples` (decimal ASCII) and, for i = 1..n,
`image-%09d` (encoded image) and `label-%09d` (UTF-8); full-page shards add
`gt-%09d` (the ground-truth JSON), crop shards `source-%09d` (`seed:index:line`),
and every record has `sha256-%09d`, the digest of its other values, so `verify`
can name a damaged record. DTRB reads only the keys it knows. A shard is
written under a temporary name and renamed only when complete, so a final name
never holds a partial shard.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import struct
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import lmdb

from .format import CorruptRecord

NUM_SAMPLES = b"num-samples"
PAGE = 4096
BATCH_BYTES = 32 * 1024 * 1024  # records are committed in transactions of about this size


def image_key(i: int) -> bytes:
    return b"image-%09d" % i


def label_key(i: int) -> bytes:
    return b"label-%09d" % i


def record_key(name: str, i: int) -> bytes:
    return f"{name}-{i:09d}".encode()


def record_digest(values: list[bytes]) -> bytes:
    """Hex sha256 over a record's values (image, label, then the extras in name order), length-prefixed."""
    digest = hashlib.sha256()
    for value in values:
        digest.update(struct.pack("<Q", len(value)))
        digest.update(value)
    return digest.hexdigest().encode()


def _stored_size(key: bytes, value: bytes) -> int:
    """Bytes LMDB needs for one entry, rounded up to whole pages as overflow values are."""
    return ((len(key) + len(value) + 64 + PAGE - 1) // PAGE) * PAGE


class ShardWriter:
    """Writes one shard into `<final>.tmp`, renamed to `<final>` by `finish()`.

    The map size starts from the first records and grows whenever LMDB reports
    it full, so it follows the data instead of reserving a fixed terabyte.
    """

    def __init__(self, final_path: Path):
        self.final_path = Path(final_path)
        self.tmp_path = self.final_path.with_name(self.final_path.name + ".tmp")
        if self.tmp_path.exists():
            shutil.rmtree(self.tmp_path)
        self.tmp_path.mkdir(parents=True)
        self.map_size = 8 * 1024 * 1024
        self.env = lmdb.open(str(self.tmp_path), map_size=self.map_size, subdir=True, sync=False,
                             metasync=False, lock=True, readahead=False, meminit=False, max_dbs=0)
        self.count = 0
        self.payload_bytes = 0
        self._pending: list[tuple[bytes, bytes]] = []
        self._pending_bytes = 0

    def add(self, image: bytes, label: str, **extras: bytes) -> int:
        """Append one record (extras become `<name>-%09d` keys, e.g. gt=...); returns its 1-based index."""
        self.count += 1
        i = self.count
        entries = [(image_key(i), image), (label_key(i), label.encode("utf-8"))]
        entries += [(record_key(name, i), extras[name]) for name in sorted(extras)]
        entries.append((record_key("sha256", i), record_digest([value for _, value in entries])))
        for key, value in entries:
            self._pending.append((key, value))
            self._pending_bytes += _stored_size(key, value)
            self.payload_bytes += len(value)
        if self._pending_bytes >= BATCH_BYTES:
            self._flush()
        return i

    def _flush(self, final: bool = False) -> None:
        entries = self._pending + ([(NUM_SAMPLES, str(self.count).encode())] if final else [])
        needed = sum(_stored_size(k, v) for k, v in entries)
        while True:
            info = self.env.info()
            used = (info["last_pgno"] + 1) * PAGE
            if used + needed * 1.3 + 64 * PAGE > self.map_size:
                self.map_size = int(max(self.map_size * 1.5, used + needed * 1.5 + 128 * PAGE))
                self.env.set_mapsize(self.map_size)
            try:
                with self.env.begin(write=True) as txn:
                    for key, value in entries:
                        txn.put(key, value)
                break
            except lmdb.MapFullError:
                self.map_size *= 2
                self.env.set_mapsize(self.map_size)
        self._pending, self._pending_bytes = [], 0

    def finish(self) -> Path:
        """Commit, sync to disk and give the shard its final name."""
        self._flush(final=True)
        self.env.sync(True)
        self.env.close()
        (self.tmp_path / "lock.mdb").unlink(missing_ok=True)
        forget(self.final_path)
        if self.final_path.exists():
            shutil.rmtree(self.final_path)
        self.tmp_path.rename(self.final_path)
        return self.final_path

    def abort(self) -> None:
        try:
            self.env.close()
        except lmdb.Error:
            pass
        finally:
            shutil.rmtree(self.tmp_path, ignore_errors=True)


def open_readonly(path: Path) -> lmdb.Environment:
    """A read-only environment; CorruptRecord if the shard is missing, not LMDB, or shorter than its header says.

    LMDB maps the file: reading a page past the end of a truncated file would kill
    the process with SIGBUS, so the length is checked against the last page the
    header records before anything is read.
    """
    try:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, subdir=True)
    except lmdb.Error as exc:
        raise CorruptRecord(f"cannot open the LMDB shard ({exc})", path) from None
    try:
        needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
        size = os.path.getsize(Path(path) / "data.mdb")
    except (lmdb.Error, OSError) as exc:
        env.close()
        raise CorruptRecord(f"cannot open the LMDB shard ({exc})", path) from None
    if size < needed:
        env.close()
        raise CorruptRecord(f"truncated: data.mdb holds {size} bytes, its header needs {needed}", path)
    return env


MAX_OPEN_READERS = 64  # per process: a dataset of thousands of shards must not exhaust file descriptors
_readers: OrderedDict[str, lmdb.Environment] = OrderedDict()  # least recently used first
_readers_lock = threading.Lock()


def _forget_all_readers() -> None:
    """After fork: the parent's environments must not be used in the child (LMDB forbids it)."""
    global _readers, _readers_lock
    _readers, _readers_lock = OrderedDict(), threading.Lock()


os.register_at_fork(after_in_child=_forget_all_readers)


def reader(path: Path) -> lmdb.Environment:
    """This process's one read-only environment for a shard, opened on first use; do not close it.

    py-lmdb refuses to open an environment twice in one process, so the long-lived
    readers (the datasets, the trainers) share this one. Writers call `forget`
    before a shard's files change under its name.
    """
    key = os.path.realpath(path)
    with _readers_lock:
        env = _readers.get(key)
        if env is None:
            env = _readers[key] = open_readonly(Path(key))
            if len(_readers) > MAX_OPEN_READERS:
                _readers.popitem(last=False)  # closed when its last transaction (maybe in another thread) ends
        _readers.move_to_end(key)
        return env


@contextmanager
def borrowed_reader(path: Path) -> Iterator[lmdb.Environment]:
    """The cached reader if one is open, else an environment closed on exit.

    One-shot work (hashing, verify) uses this so that it leaves nothing open: a
    caller may open the shard itself afterwards (py-lmdb allows one per process).
    """
    with _readers_lock:
        env = _readers.get(os.path.realpath(path))
    if env is not None:
        yield env
        return
    env = open_readonly(path)
    try:
        yield env
    finally:
        env.close()


def forget(path: Path) -> None:
    """Close this process's reader of a shard (before the shard is removed or replaced)."""
    with _readers_lock:
        env = _readers.pop(os.path.realpath(path), None)
    if env is not None:
        env.close()


def content_hash(path: Path) -> tuple[str, int]:
    """sha256 over every (key, value) in key order, and the record count: the shard's identity.

    LMDB files are not byte-deterministic (page layout depends on write
    batching), so shards are compared by content, not by file bytes.
    """
    digest = hashlib.sha256()
    with borrowed_reader(path) as env, env.begin() as txn:
        count = int(txn.get(NUM_SAMPLES, b"-1"))
        for key, value in txn.cursor():
            digest.update(struct.pack("<Q", len(key)) + key + struct.pack("<Q", len(value)))
            digest.update(value)
    return digest.hexdigest(), count


def shard_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).iterdir() if f.is_file())
