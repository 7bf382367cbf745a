"""Memory over a long `generate`: resident memory of the main process and of every worker, sampled over time.

    PYTHONPATH=. .venv/bin/python benchmarks/memory_generate.py --n 100000 --workers 2 [--recipe default]
        [--out /tmp/mem-ds] [--interval 30] [--max-minutes 60] [--keep]

Runs the CLI as a subprocess and reads /proc (Linux) every INTERVAL seconds:
pages written so far (from manifest.json) and the RSS of the main process and
of each of its descendants (the forkserver and the render workers). Prints one
row per sample, then the peak RSS per process and the growth of each between
the first row with pages written and the last row (goal: flat). After
--max-minutes the run is stopped with Ctrl-C (SIGINT), as a person would. The
output folder is removed at the end unless --keep.
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def descendants(root: int) -> list[int]:
    """Every process below `root`, from the parent links in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return sorted(found)


def pages_done(out: Path) -> int:
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return 0
    return sum(e["records"] for e in manifest.get("shards", []) if e["kind"] == "images")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--out", default="/tmp/synthtext-memory-ds")
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop the run (SIGINT) after this long")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "synthtext_industrial.cli", "generate", args.recipe, "-n", str(args.n),
           "--workers", str(args.workers), "--shard-size", str(args.shard_size), "-o", str(out)]
    started = time.perf_counter()
    log_path = out.with_name(out.name + ".log")
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    peaks: dict[str, float] = {}
    rows: list[tuple[float, int, dict[str, float]]] = []
    print(f"{' s':>7} {'pages':>7}  RSS MB: main, then descendants by pid", flush=True)
    while proc.poll() is None:
        time.sleep(args.interval)
        if args.max_minutes and time.perf_counter() - started > args.max_minutes * 60:
            print(f"stopping after {args.max_minutes} minutes (SIGINT)", flush=True)
            proc.send_signal(signal.SIGINT)
            proc.wait()
            break
        sample = {"main": rss_mb(proc.pid)}
        for pid in descendants(proc.pid):
            sample[f"pid{pid}"] = rss_mb(pid)
        sample = {k: v for k, v in sample.items() if v is not None}
        done = pages_done(out)
        rows.append((time.perf_counter() - started, done, sample))
        for name, value in sample.items():
            peaks[name] = max(peaks.get(name, 0.0), value)
        print(f"{rows[-1][0]:7.0f} {done:7d}  " + "  ".join(f"{k}={v:.0f}" for k, v in sample.items()), flush=True)
    seconds = time.perf_counter() - started
    log.close()
    print(f"generate's last output ({log_path}): {log_path.read_text()[-300:].strip()!r}")
    print(f"exit code {proc.returncode}; {pages_done(out)} pages in {seconds:.0f} s "
          f"({pages_done(out) / seconds:.1f} pages/s, {args.workers} workers)")
    print("peak RSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    written = [r for r in rows if r[1] > 0]
    if len(written) >= 2:
        first, last = written[0], written[-1]
        growth = {k: last[2][k] - first[2][k] for k in last[2] if k in first[2]}
        print(f"growth from {first[1]} to {last[1]} pages, MB: "
              + ", ".join(f"{k} {v:+.0f}" for k, v in growth.items()))
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
