"""An off-the-shelf reader that ships its weights, on the real dev sets, scored as sim2real.py scores ours.

Run:  .venv/bin/python benchmarks/bench_real_peers.py [--sets /work/realsets] [--venv /work/peer-venv]
          [--mode rec det] [--limit N]

The reader is RapidOCR (`rapidocr-onnxruntime`, PP-OCR detection + recognition in ONNX, weights in the wheel),
installed in its own venv (--venv; made on first use with `python -m venv` + `pip install rapidocr-onnxruntime`,
reused after), because its pins (NumPy, OpenCV) need not match the project's. A small driver
(benchmarks/peers/drive_rapidocr_read.py) reads the images there and prints its readings; scoring happens here
with each set's rule from set.json (benchmarks/realsets/common.py). Modes: `rec` reads each image as one line
(recognition only: the sets are line crops); `det` runs PP-OCR's detector first and joins the found boxes'
texts left to right (for loosely framed crops). Readings go to --out/<set>-<mode>.csv.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "realsets"))
from common import load_set, rule_from, score  # noqa: E402

PACKAGES = ["rapidocr-onnxruntime"]
DRIVER = REPO / "benchmarks" / "peers" / "drive_rapidocr_read.py"


def ensure_venv(venv: Path) -> Path:
    """The venv's python, making the venv on first use."""
    python = venv / "bin" / "python"
    stamp = venv / "installed.json"
    if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == PACKAGES:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    base = shutil.which("python3.11") or shutil.which("python3")
    for command in ([base, "-m", "venv", str(venv)],
                    [str(python), "-m", "pip", "install", "-q", "--timeout", "60", *PACKAGES]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed: {(done.stdout + done.stderr).strip()[-400:]}")
    stamp.write_text(json.dumps(PACKAGES))
    return python


def read_all(python: Path, paths: list[str], mode: str) -> tuple[dict[str, str], dict]:
    """{path: text} and the driver's DONE record."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(python), str(DRIVER), "--mode", mode], input=json.dumps(paths), text=True,
                          capture_output=True, env=env)
    texts, info = {}, {}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            record = json.loads(line[7:])
            texts[record["path"]] = record["text"]
        elif line.startswith("DONE "):
            info = json.loads(line[5:])
    if done.returncode or not info:
        raise RuntimeError(f"driver exited {done.returncode}: {done.stderr.strip()[-600:]}")
    return texts, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=Path, default=Path("/work/realsets"), help="folder of built sets")
    parser.add_argument("--only", nargs="*", help="set names (default: every folder with labels.tsv)")
    parser.add_argument("--venv", type=Path, default=Path("/work/peer-venv"))
    parser.add_argument("--mode", nargs="+", choices=["rec", "det"], default=["rec"],
                        help="rec (default): recognition only; det: PP-OCR detection first (slow, ~0.5 img/s here)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per set")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_real_peers"))
    args = parser.parse_args()

    python = ensure_venv(args.venv)
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.only or sorted(p.name for p in args.sets.iterdir() if (p / "labels.tsv").exists())
    rows = []
    for name in names:
        items, meta = load_set(args.sets / name)
        items = items[:args.limit] if args.limit else items
        rule = rule_from(meta.get("scoring"))
        for mode in args.mode:
            t0 = time.perf_counter()
            texts, info = read_all(python, [str(p) for p, _ in items], mode)
            predictions = [texts.get(str(p), "") for p, _ in items]
            result = score([t for _, t in items], predictions, rule)
            with open(args.out / f"{name}-{mode}.csv", "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["path", "truth", "prediction", "scored_truth", "scored_prediction"])
                for (path, truth), text in zip(items, predictions):
                    writer.writerow([path, truth, text, *rule.pair(truth, text)])
            rows.append((name, mode, result, len(items) / info["seconds"], rule.describe(), info["version"]))
            print(f"{name} ({mode}): {result.count} images, string {result.string_accuracy:.4f}, char "
                  f"{result.char_accuracy:.4f}, {time.perf_counter() - t0:.0f} s; confusions: "
                  + ", ".join(f"{c} x{n}" for c, n in result.confusions[:6]), flush=True)

    print(f"\nRapidOCR {rows[0][5] if rows else ''} (PP-OCR, no training), {os.cpu_count()} CPU cores")
    print(f"{'set':15} {'mode':4} {'images':>6} {'string':>7} {'char':>7} {'img/s':>6}  scoring")
    for name, mode, result, rate, rule_text, _ in rows:
        print(f"{name:15} {mode:4} {result.count:>6} {result.string_accuracy:>7.4f} {result.char_accuracy:>7.4f} "
              f"{rate:>6.1f}  {rule_text}")


if __name__ == "__main__":
    main()
