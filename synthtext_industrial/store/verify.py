"""Checking and describing a generated dataset folder from its shards and manifest.

`verify` trusts nothing: it re-hashes every shard, reads every record back
(checksums, decoding, ground-truth JSON) and compares the shards with the
manifest. `describe` gathers what a person wants to know before training:
counts, charset, sizes, text lengths, and pages read back for a preview sheet.
"""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..core.groundtruth import GroundTruthError, Sample, parse_ground_truth
from .format import CorruptRecord, DatasetError, load_manifest
from .shards import decode_gray, iter_shard, shard_folders, shard_hash


def verify(out: str | Path) -> list[str]:
    """Every problem found in a dataset folder, each naming the shard (and record); empty means all good."""
    out = Path(out)
    try:
        manifest = load_manifest(out)
    except DatasetError as exc:
        return [str(exc)]
    fmt = manifest["format"]
    problems = []
    if not manifest.get("complete"):
        problems.append(f"{out}: generation did not finish (rerun the same generate command to resume)")
    listed = {e["path"] for e in manifest["shards"]}
    for folder in shard_folders(fmt):
        for path in sorted((out / folder).iterdir()) if (out / folder).is_dir() else []:
            if f"{folder}/{path.name}" not in listed:
                problems.append(f"{folder}/{path.name}: on disk but not in the manifest")
    problems += _coverage_problems(manifest)
    for entry in manifest["shards"]:
        problems += _shard_problems(out, fmt, entry)
    return problems


def _coverage_problems(manifest: dict) -> list[str]:
    """Shards must tile 0..n without gaps or overlaps, for every kind."""
    problems = []
    kinds = ["images"] + (["crops"] if manifest.get("crops") else [])
    for kind in kinds:
        ranges = sorted((e["start"], e["stop"]) for e in manifest["shards"] if e["kind"] == kind)
        expected = 0
        for start, stop in ranges:
            if start != expected:
                problems.append(f"manifest: {kind} shards {'overlap' if start < expected else 'leave a gap'} "
                                f"at sample {min(start, expected)}")
            expected = max(expected, stop)
        if manifest.get("complete") and expected != manifest["n"]:
            problems.append(f"manifest: {kind} shards cover samples 0..{expected}, but n is {manifest['n']}")
    return problems


def _shard_problems(out: Path, fmt: str, entry: dict) -> list[str]:
    path, name = out / entry["path"], entry["path"]
    if not path.exists():
        return [f"{name}: missing"]
    problems = []
    try:
        digest, count = shard_hash(fmt, path)
        if digest != entry["sha256"]:
            problems.append(f"{name}: content hash differs from the manifest")
        if count != entry["records"]:
            problems.append(f"{name}: holds {count} records, the manifest says {entry['records']}")
    except CorruptRecord as exc:
        if exc.record is None:  # cannot be opened at all (LMDB truncated, not LMDB): nothing more to read
            return problems + [f"{name}: {exc.reason}"]
        problems.append(f"{name}: unreadable ({exc})")
    except Exception as exc:  # unreadable: the record walk below names where
        problems.append(f"{name}: unreadable ({exc})")

    def where(number: int | None) -> str:
        if number is None:
            return name
        return f"{name} record {number}" + (f" (sample {entry['start'] + number - 1})"
                                            if entry["kind"] == "images" else "")

    try:
        for record in iter_shard(fmt, entry["kind"], path):
            if decode_gray(record.image) is None:
                problems.append(f"{where(record.number)}: image does not decode to 8-bit grayscale")
            if record.gt is not None:
                try:
                    gt = parse_ground_truth(record.gt)
                    if "\n".join(line["text"] for line in gt["lines"]) != record.text:
                        problems.append(f"{where(record.number)}: label and ground truth disagree")
                except GroundTruthError:
                    problems.append(f"{where(record.number)}: ground truth is not valid JSON of schema gt/1")
    except CorruptRecord as exc:
        problems.append(f"{where(exc.record)}: {exc.reason}")
    except Exception as exc:  # e.g. an LMDB that no longer opens
        problems.append(f"{name}: cannot be read ({exc})")
    return problems


@dataclass
class Description:
    """What `inspect` prints: counts from the manifest, text statistics from records read back."""

    manifest: dict
    pages_read: int = 0
    line_lengths: list[int] = field(default_factory=list)
    lines_per_page: list[int] = field(default_factory=list)
    image_bytes: list[int] = field(default_factory=list)
    char_counts: Counter = field(default_factory=Counter)
    samples: list[Sample] = field(default_factory=list)

    def report(self) -> str:
        m, counts = self.manifest, self.manifest.get("counts", {})
        shards = [e for e in m["shards"] if e["kind"] == "images"]
        lines = [
            f"dataset     {m['format']}, {len(shards)} page shard(s) of up to {m['shard_size']}, "
            f"{'complete' if m.get('complete') else 'INCOMPLETE (rerun generate to resume)'}",
            f"recipe      {m.get('recipe_source')} (sha256 {m['recipe_sha256'][:12]}), seed {m['seed']}, "
            f"n {m['n']}, tool {m.get('tool_version')}",
            f"counts      {counts.get('images', 0)} images, {counts.get('lines', 0)} lines, "
            f"{counts.get('chars', 0)} characters, {counts.get('crops', 0)} crops",
            f"size        {counts.get('bytes', 0) / 1e6:.1f} MB on disk",
            f"charset     {len(m['charset'])} characters: {m['charset']}",
        ]
        if m["format"] == "lmdb" and m.get("crops") and "max_line_length" in counts:  # see docs/formats.md
            import shlex

            from .readers import dtrb_character

            lines.append(f"DTRB flags  --character {shlex.quote(dtrb_character(m['charset']))} "
                         f"--batch_max_length {counts['max_line_length']}")
        if self.pages_read:
            lines += [
                f"read back   {self.pages_read} pages",
                f"page bytes  {_stats([b / 1000 for b in self.image_bytes], 'kB')}",
                f"lines/page  {_stats(self.lines_per_page)}",
                f"line length {_stats(self.line_lengths, 'chars')}",
                "chars used  " + " ".join(f"{c}:{k}" for c, k in sorted(self.char_counts.items())),
            ]
            unused = sorted(set(m["charset"]) - set(self.char_counts) - {" "})
            if unused:
                lines.append(f"never seen  {''.join(unused)} (in the charset but not in the pages read)")
        return "\n".join(lines)


def _stats(values: list[float], unit: str = "") -> str:
    if not values:
        return "-"
    return (f"min {min(values):.4g}, mean {statistics.fmean(values):.4g}, median {statistics.median(values):.4g}, "
            f"max {max(values):.4g} {unit}").rstrip()


def describe(out: str | Path, max_pages: int = 5000, preview_pages: int = 16) -> Description:
    """Counts from the manifest; text statistics over up to `max_pages` pages spread across the shards."""
    out = Path(out)
    manifest = load_manifest(out)
    shards = [e for e in manifest["shards"] if e["kind"] == "images"]
    description = Description(manifest)
    per_shard = -(-max_pages // len(shards)) if shards else 0
    for entry in shards:
        for k, record in enumerate(iter_shard(manifest["format"], "images", out / entry["path"])):
            if k >= per_shard or description.pages_read >= max_pages:
                break
            try:
                gt = parse_ground_truth(record.gt)
            except GroundTruthError as exc:
                raise CorruptRecord(str(exc), entry["path"], record.number) from None
            description.pages_read += 1
            description.image_bytes.append(len(record.image))
            description.lines_per_page.append(len(gt["lines"]))
            for line in gt["lines"]:
                description.line_lengths.append(len(line["text"]))
                description.char_counts.update(line["text"].replace(" ", ""))
            if len(description.samples) < preview_pages:
                image = decode_gray(record.image)
                if image is None:
                    raise CorruptRecord("image does not decode", entry["path"], record.number)
                description.samples.append(Sample.from_dict(gt, image))
    return description
