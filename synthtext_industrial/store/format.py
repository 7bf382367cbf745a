"""The dataset format: what a dataset folder is, readable without the generation engine.

`manifest.json` (schema `MANIFEST_SCHEMA`, docs/formats.md) lists the recipe, seed, counts and every shard
with its content hash; line crops are encoded as `CROP_FORMAT`. `DatasetError` is a problem with a dataset
folder worded for the person using it, `CorruptRecord` a damaged shard or record. Writers (`generate`) and
readers (`readers`, `verify`, training) both import these from here.
"""
from __future__ import annotations

import json
from pathlib import Path

MANIFEST_SCHEMA = "synthtext-industrial/manifest/1"
CROP_FORMAT = "png"
FORMATS = ("lmdb", "tfrecord")  # shard formats; shards.py knows how each is written and read
KINDS = ("images", "crops")


class DatasetError(RuntimeError):
    """A problem with the output folder, worded for the person running the command."""


class CorruptRecord(ValueError):
    """A damaged shard or record; `path` and `record` (1-based, None for the whole shard) say where."""

    def __init__(self, reason: str, path: Path | str | None = None, record: int | None = None):
        self.reason, self.path, self.record = reason, path, record
        where = f"{path}" + (f" record {record}" if record is not None else "")
        super().__init__(f"{where}: {reason}" if path is not None else reason)


def manifest_path(out: Path) -> Path:
    return Path(out) / "manifest.json"


def read_manifest(out: Path) -> dict | None:
    """The manifest of a folder as written, None if there is none; DatasetError if it does not parse."""
    path = manifest_path(out)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path} is unreadable ({exc}); use --overwrite to start again") from None


def manifest_bytes(manifest: dict) -> bytes:
    """The file's exact bytes: a folder and a URL get the same manifest.json."""
    return (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def load_manifest(out: str | Path) -> dict:
    """The manifest of a dataset folder; DatasetError if there is none or it is not ours."""
    out = Path(out)
    manifest = read_manifest(out)
    if manifest is None:
        raise DatasetError(f"{out}: no manifest.json (not a dataset written by `synthtext-industrial generate`)")
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise DatasetError(f"{out}/manifest.json: unknown schema {manifest.get('schema')!r}; "
                           f"this version reads {MANIFEST_SCHEMA}")
    if manifest.get("format") not in FORMATS:
        raise DatasetError(f"{out}/manifest.json: unknown format {manifest.get('format')!r}")
    return manifest
