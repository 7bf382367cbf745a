"""OUT as an fsspec URL (s3://, gs://, az://, memory://, file://, ...): the objects a local run would write.

LMDB needs a real filesystem, so every shard is written into a local temporary
folder where its task runs (the same `write_shard` a local run uses) and then
uploaded file by file under the same relative path. Only after the upload does
the client record the shard in manifest.json: object stores cannot rename a
folder atomically, so the manifest is the source of truth, and a rerun removes
and redoes any shard object it does not list (a run killed mid-upload). The
manifest is written last, at the same moments a local run writes it.

Object stores have no reliable lock: `.lock` is a lease (see RemoteLock), which
detects a second run rather than preventing it. fsspec and the protocol's own
package (s3fs, gcsfs, adlfs, ...) are imported only when a URL is used.
"""
from __future__ import annotations

import json
import os
import re
import platform
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .format import DatasetError, manifest_bytes
from .shards import shard_folders, shard_hash

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*(::[A-Za-z][A-Za-z0-9+.\-]*)*://")
LEASE_S = 120.0  # a lock not refreshed for this long belongs to a run that is gone
RERUN = "finished shards are kept; fix the problem (credentials, permissions, network), then rerun the same command"


def is_url(out) -> bool:
    """A string with a protocol (`s3://...`); Path objects and plain paths are local folders."""
    return isinstance(out, str) and URL.match(out) is not None


def open_url(url: str):
    """(fsspec filesystem, root path) for a URL; a DatasetError naming the package to install if one is missing."""
    try:
        import fsspec
        from fsspec.registry import known_implementations
    except ImportError:
        raise DatasetError(f"writing to {url} needs fsspec: pip install fsspec (and the package for the protocol, "
                           f"e.g. s3fs for s3://, gcsfs for gs://, adlfs for az://)") from None
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        package = getattr(exc.__cause__, "name", None) or getattr(exc, "name", None)
        if not package:
            protocol = url.split("://", 1)[0].split("::")[-1]
            package = known_implementations.get(protocol, {}).get("class", "").split(".")[0]
        hint = f"pip install {package}" if package else "install the fsspec implementation for its protocol"
        raise DatasetError(f"writing to {url} needs the package {package or '?'}: {hint} ({exc})") from None
    except ValueError as exc:
        raise DatasetError(f"cannot write to {url}: {exc}; allowed: a local folder, or a URL whose protocol fsspec "
                           f"knows (s3://, gs://, az://, memory://, file://, ...)") from None
    return fs, root.rstrip("/")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@contextmanager
def storage_errors(what: str, then: str = RERUN) -> Iterator[None]:
    """Any storage error (fsspec backends raise their own types) as a DatasetError that says what failed."""
    try:
        yield
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"{what} failed ({_reason(exc)}); {then}") from None


class RemoteLock:
    """`.lock` as a lease: who holds it (run id, host, pid) and when it last said so.

    Protected: a second run started while this one is alive is refused (it sees a
    fresh heartbeat), and if two runs do slip past each other (both read "free"
    before either wrote), the one that lost the lock stops before its next
    manifest write, because each manifest write first checks the lock is still
    ours. Not protected: the few operations between such a race and that check,
    and shard uploads already running on workers at that moment (workers never
    look at the lock). A run killed on this host is recognised at once (its pid
    is gone); one killed elsewhere holds the lock until LEASE_S has passed.
    Released, the lock is an empty object, like the local folder's empty `.lock`.
    """

    def __init__(self, fs, path: str, label: str):
        self.fs, self.path, self.label = fs, path, label
        self.me = {"run": uuid.uuid4().hex, "host": platform.node(), "pid": os.getpid()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost: dict | None = None

    def _read(self) -> dict | None:
        try:
            raw = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(raw)
        except ValueError:  # empty: released
            return None
        return holder if isinstance(holder, dict) and "run" in holder else None

    def _write(self, data: bytes | None = None) -> None:
        self.fs.pipe_file(self.path, json.dumps({**self.me, "heartbeat": time.time()}).encode()
                          if data is None else data)

    def _busy(self, holder: dict) -> DatasetError:
        age = time.time() - float(holder.get("heartbeat", 0))
        return DatasetError(f"{self.label} is being written by another generate run (lock {self.path}: host "
                            f"{holder.get('host')}, pid {holder.get('pid')}, last seen {age:.0f} s ago). Object "
                            f"stores have no real lock: if that run is gone, wait {max(0.0, LEASE_S - age):.0f} s "
                            f"or delete {self.label}/.lock")

    def acquire(self) -> None:
        with storage_errors(f"taking the lock {self.label}/.lock", "nothing was written"):
            holder = self._read()
            if holder is not None and not _stale(holder):
                raise self._busy(holder)
            self._write()
            holder = self._read()  # two runs that both saw "free": the last writer keeps it
        if (holder or {}).get("run") != self.me["run"]:
            raise self._busy(holder or {})
        self._thread = threading.Thread(target=self._beat, name="synthtext-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(LEASE_S / 4):
            try:
                holder = self._read()
                if (holder or {}).get("run") != self.me["run"]:
                    self._lost = holder or {}
                    return
                self._write()
            except Exception:  # a missed heartbeat is retried; the lease allows several
                pass

    def check(self) -> None:
        """Raise if another run has taken the lock since we took it (called before every manifest write)."""
        with storage_errors(f"reading the lock {self.label}/.lock"):
            holder = self._read()
        if self._lost is not None or (holder or {}).get("run") != self.me["run"]:
            other = holder or self._lost or {}
            raise DatasetError(f"another generate run took over {self.label} (lock {self.path}: host "
                               f"{other.get('host')}, pid {other.get('pid')}); this run stops so that the two do not "
                               f"overwrite each other's manifest. Rerun the same command once the other run is done")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if (self._read() or {}).get("run") == self.me["run"]:
                self._write(b"")
        except Exception:  # unreachable store: the lease runs out by itself
            pass


def _stale(holder: dict) -> bool:
    """A lock whose heartbeat is older than the lease, or held by a process of this host that no longer exists."""
    try:
        if time.time() - float(holder.get("heartbeat", 0)) > LEASE_S:
            return True
        if holder.get("host") == platform.node():
            os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, TypeError, ValueError):
        return False
    return False


class RemoteFolder:
    """A dataset prefix behind an fsspec URL, with the operations `generate` needs from its output folder."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.label = self.url
        self.out = None  # no local folder: shards go through a temporary one
        self.fs, self.root = open_url(self.url)
        from fsspec.implementations.local import LocalFileSystem

        self.makes_folders = isinstance(self.fs, LocalFileSystem)  # object stores have no folders to create
        self._lock: RemoteLock | None = None
        self._sizes: dict[str, int] | None = None

    def path(self, relpath: str) -> str:
        return f"{self.root}/{relpath}"

    def _relpath(self, path: str) -> str:
        path = self.fs._strip_protocol(path).rstrip("/")
        return path[len(self.root) + 1:] if path.startswith(self.root + "/") else path

    @contextmanager
    def locked(self) -> Iterator[None]:
        with storage_errors(f"opening {self.url}", "nothing was written"):
            if self.fs.isfile(self.root):
                raise DatasetError(f"{self.url} exists and is not a folder")
            if self.makes_folders:
                self.fs.makedirs(self.root, exist_ok=True)
        self._lock = RemoteLock(self.fs, self.path(".lock"), self.url)
        self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    # ---------------------------------------------------------------- manifest

    def read_manifest(self) -> dict | None:
        with storage_errors(f"reading {self.url}/manifest.json", "nothing was written"):
            try:
                raw = self.fs.cat_file(self.path("manifest.json"))
            except FileNotFoundError:
                return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise DatasetError(f"{self.url}/manifest.json is unreadable ({exc}); use --overwrite to start again") \
                from None

    def write_manifest(self, manifest: dict) -> None:
        """Through `manifest.json.tmp`: a rename on file://, a server-side copy on object stores (never half-written)."""
        if self._lock is not None:
            self._lock.check()
        tmp = self.path("manifest.json.tmp")
        with storage_errors(f"writing {self.url}/manifest.json"):
            self.fs.pipe_file(tmp, manifest_bytes(manifest))
            self.fs.mv(tmp, self.path("manifest.json"))

    # ---------------------------------------------------------------- shards already there

    def has_other_files(self) -> bool:
        with storage_errors(f"listing {self.url}", "nothing was written"):
            try:
                names = [self._relpath(p) for p in self.fs.ls(self.root, detail=False)]
            except FileNotFoundError:
                return False
        return any(name not in ("", ".lock") for name in names)

    def remove(self, relpaths: list[str]) -> None:
        with storage_errors(f"removing the old dataset objects under {self.url}", "rerun the same command"):
            for relpath in relpaths:
                if self.fs.exists(self.path(relpath)):
                    self.fs.rm(self.path(relpath), recursive=True)
        self._sizes = None

    def _shard_sizes(self, fmt: str) -> dict[str, int]:
        """Bytes per shard (an LMDB folder or a TFRecord file) under the format's folders, from one listing each."""
        if self._sizes is None:
            sizes: dict[str, int] = {}
            with storage_errors(f"listing {self.url}", "nothing was written"):
                for folder in shard_folders(fmt):
                    for path, info in self.fs.find(self.path(folder), detail=True).items():
                        shard = "/".join(self._relpath(path).split("/")[:2])
                        sizes[shard] = sizes.get(shard, 0) + int(info.get("size") or 0)
            self._sizes = sizes
        return self._sizes

    def shard_ok(self, fmt: str, entry: dict, check: str) -> bool:
        """Listed with the recorded size; with check "hash", also downloaded and re-hashed like a local rerun does."""
        if self._shard_sizes(fmt).get(entry["path"]) != entry["bytes"]:
            return False
        if check == "size":
            return True
        with tempfile.TemporaryDirectory(prefix="synthtext-check-") as tmp:
            local = Path(tmp) / entry["path"]
            try:
                self.get(entry["path"], local)
                digest, count = shard_hash(fmt, local)
            except DatasetError:
                raise
            except Exception:  # a damaged shard is simply redone
                return False
        return digest == entry["sha256"] and count == entry["records"]

    def rename(self, relpath: str, new_relpath: str) -> None:
        """A kept TFRecord shard under its new `-of-TOTAL` name (a server-side copy on object stores)."""
        with storage_errors(f"renaming {self.url}/{relpath} to {new_relpath}"):
            self.fs.mv(self.path(relpath), self.path(new_relpath), recursive=True)
        self._sizes = None

    def remove_unlisted(self, fmt: str, kept: set[str]) -> None:
        """Partial, damaged, stray or superseded shards go (then are redone): the manifest is the source of truth."""
        stale = sorted(shard for shard in self._shard_sizes(fmt) if shard not in kept)
        with storage_errors(f"removing unfinished shards under {self.url}", "rerun the same command"):
            for shard in stale:
                self.fs.rm(self.path(shard), recursive=True)
        self._sizes = None

    # ---------------------------------------------------------------- moving shards

    def get(self, relpath: str, local: Path) -> None:
        """Download one shard (file or folder) to `local`."""
        source = self.path(relpath)
        with storage_errors(f"downloading {self.url}/{relpath}"):
            for path in sorted(self.fs.find(source)):
                rest = self._relpath(path)[len(relpath):].lstrip("/")
                target = local / rest if rest else local
                target.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(path, str(target))

    def put(self, local_root: Path, relpath: str) -> None:
        """Upload one finished shard (file or folder) from `local_root/relpath` to the same relative path."""
        source = local_root / relpath
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        with storage_errors(f"uploading {relpath} to {self.url}"):
            for file in files:
                target = self.path(Path(relpath, file.relative_to(source)).as_posix() if file != source else relpath)
                if self.makes_folders:
                    self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(str(file), target)

    def confirm(self, entries: list[dict]) -> None:
        """Before the manifest lists a shard: its objects are visible from here with the size the worker wrote."""
        for entry in entries:
            with storage_errors(f"checking {self.url}/{entry['path']}"):
                found = self.fs.find(self.path(entry["path"]), detail=True)
            size = sum(int(info.get("size") or 0) for info in found.values())
            if size != entry["bytes"]:
                raise DatasetError(f"{self.url}/{entry['path']} holds {size} bytes after its upload, the worker wrote "
                                   f"{entry['bytes']}: the workers and this client must reach the same store "
                                   f"(memory:// and file:// are per process / per machine). {RERUN}")
