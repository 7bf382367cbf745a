"""Line-crop throughput of synthtext-industrial next to TRDG, SynthTIGER and keras-ocr, one CPU core each, one run.

Run by hand:  .venv/bin/python benchmarks/bench_peers.py [--n 40] [--rounds 3] [--peers-dir benchmarks/.peers]

Every generator runs in its own subprocess pinned to one core (--core; default: the idlest core just before the
run, sampled from /proc/stat), one after another, through a small driver in benchmarks/peers/ that seeds its
RNGs, warms up untimed, times its loop and prints one JSON line.
Ours runs in the project's venv; each peer in its own venv under --peers-dir (made on first use, reused after),
because the peers need `pip<24.1`, Pillow<10, NumPy<2 and other old versions. A peer whose install fails (or whose
registry cannot be reached) is skipped with a message. Crops are PNG-encoded in memory (cv2, level 1) by every
crop generator, pages JPEG q95, so the encoding work is the same. Ours counts the full page render + JPEG encode
in its crop time (render_record with crops), so its crops/s is conservative.

Work per generator and round: ours --n pages per recipe, TRDG and SynthTIGER 3*--n crops per configuration,
keras-ocr --n/4 pages (1600x1200). All generators run once per round, --rounds rounds, and each one's best round
is reported (with its slowest), since other work on the machine slows some rounds. Samples of every generator
(first round) go to --samples, with a side-by-side sheet.png.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DRIVERS = REPO / "benchmarks" / "peers"
OLD_STACK = ["pillow<10", "numpy<2", "opencv-python<4.11", "scikit-image<0.25", "scipy<1.15"]
PEER_PACKAGES = {  # venv name -> what to install after pip<24.1
    "trdg": ["trdg==1.8.0", *OLD_STACK],
    "synthtiger": ["synthtiger==1.2.1", *OLD_STACK],
    # keras-ocr's TensorFlow parts are not needed to generate pages; typing_extensions is an undeclared need
    "keras-ocr": ["keras-ocr==0.9.3", "typing_extensions", *OLD_STACK],
}
QUOTED = {  # the issue author's figures, per core
    "trdg plain": "24.6 crops/s",
    "trdg noise": "14.6 crops/s (effects)",
    "trdg image": "14.6 crops/s (effects)",
    "synthtiger default": "2.3 crops/s",
    "keras-ocr": "0.78 pages/s",
}
QUOTED_TRDG_PLAIN, QUOTED_TRDG_EFFECTS, QUOTED_KERAS_PAGES = 24.6, 14.6, 0.78


@dataclass
class Job:
    name: str  # row label
    venv: str  # "ours" or a PEER_PACKAGES key
    driver: str
    config: str
    n: int
    unit: str  # "crops" or "pages": what the driver's `outputs` count


def jobs(n: int, recipes: list[str]) -> list[Job]:
    return ([Job(f"ours {r}", "ours", "drive_ours.py", r, n, "crops") for r in recipes]
            + [Job(f"trdg {c}", "trdg", "drive_trdg.py", c, 3 * n, "crops") for c in ("plain", "noise", "image")]
            + [Job(f"synthtiger {c}", "synthtiger", "drive_synthtiger.py", c, 3 * n, "crops")
               for c in ("default", "no-check")]
            + [Job("keras-ocr", "keras-ocr", "drive_keras_ocr.py", "scene", max(n // 4, 2), "pages")])


# ----------------------------------------------------------------------------- peer venvs

def peer_python(peers_dir: Path, name: str) -> Path:
    return peers_dir / name / "bin" / "python"


def ensure_venv(peers_dir: Path, name: str) -> tuple[bool, float, str]:
    """Make (or reuse) the peer's venv. Returns (usable, seconds spent, message)."""
    venv = peers_dir / name
    stamp = venv / "installed.json"
    wanted = json.dumps(PEER_PACKAGES[name])
    if stamp.exists() and stamp.read_text() == wanted and peer_python(peers_dir, name).exists():
        return True, 0.0, "reused"
    started = time.perf_counter()
    shutil.rmtree(venv, ignore_errors=True)
    python = shutil.which("python3.11") or sys.executable
    pip = [str(peer_python(peers_dir, name)), "-m", "pip", "install", "-q", "--timeout", "30", "--retries", "1"]
    steps = [("making the venv", [python, "-m", "venv", str(venv)]),
             ("installing pip<24.1", [*pip, "pip<24.1"]),
             (f"installing {' '.join(PEER_PACKAGES[name])}", [*pip, *PEER_PACKAGES[name]])]
    for what, command in steps:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in (done.stdout + done.stderr).splitlines()
                      if line.strip() and "is neither a file nor a directory" not in line]
            return False, time.perf_counter() - started, f"{what} failed: " + " / ".join(errors[-2:])
    stamp.write_text(wanted)
    return True, time.perf_counter() - started, "installed"


# ----------------------------------------------------------------------------- running the drivers

def idlest_core(seconds: float = 0.3) -> int:
    """The core with the most idle time over a short window (other work on a shared machine moves around)."""
    def idle_ticks() -> dict[int, int]:
        ticks = {}
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu") and line[3].isdigit():
                fields = line.split()
                ticks[int(fields[0][3:])] = int(fields[4]) + int(fields[5])  # idle + iowait
        return ticks
    allowed = os.sched_getaffinity(0)
    before = idle_ticks()
    time.sleep(seconds)
    after = idle_ticks()
    return max(sorted(allowed), key=lambda core: after.get(core, 0) - before.get(core, 0))


def pin_to(core: int):
    return lambda: os.sched_setaffinity(0, {core})


def run_job(job: Job, python: Path, core: int | None, samples: Path | None) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    env.pop("PYTHONPATH", None)
    command = [str(python), str(DRIVERS / job.driver), "--n", str(job.n), "--config", job.config, "--seed", "0"]
    if samples:
        command += ["--samples", str(samples / job.name.replace(" ", "_"))]
    core = idlest_core() if core is None else core
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=DRIVERS, preexec_fn=pin_to(core),
                          timeout=1800)
    results = [line[len("RESULT "):] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not results:
        tail = (done.stdout + done.stderr).strip().splitlines()[-4:]
        raise RuntimeError(f"driver exited {done.returncode}: " + " / ".join(tail))
    return json.loads(results[-1])


# ----------------------------------------------------------------------------- report

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def print_table(rows: list[tuple[Job, dict]]) -> None:
    print(f"\n{'generator':22} {'version':>8} {'outputs':>8} {'seconds':>8} {'crops/s/core':>13} {'pages/s':>8} "
          f"{'worst':>7} {'crop HxW':>10} {'Mpx/s':>6}  issue's figure (quoted, not measured here)")
    for job, r in rows:
        rate = r["outputs"] / r["seconds"]
        crops = rate if job.unit == "crops" else None
        pages = r["pages"] / r["seconds"] if r["pages"] else None
        size = f"{r['mean_height']:.0f}x{r['mean_width']:.0f}" if job.unit == "crops" else "page"
        mpx = f"{rate * r['mean_height'] * r['mean_width'] / 1e6:6.2f}" if job.unit == "crops" else ""
        note = QUOTED.get(job.name, "")
        if job.name == "keras-ocr":
            note += (f"; {r['empty_pages']} of {r['pages']} pages got no text (no uniform area); pages with text: "
                     f"{(r['pages'] - r['empty_pages']) / max(r['text_page_seconds'], 1e-9):.2f}/s")
        if r.get("failed"):
            note += f"; {r['failed']} crops dropped by the generator"
        crops_text = f"{crops:.1f}" if crops else "-"
        pages_text = f"{pages:.2f}" if pages else "-"
        print(f"{job.name:22} {r.get('version', ''):>8} {r['outputs']:8d} {r['seconds']:8.2f} {crops_text:>13} "
              f"{pages_text:>8} {r['worst_rate']:7.2f} {size:>10} {mpx:>6}  {note}")
    print("(best of the rounds; worst = the slowest round's crops/s, or pages/s for keras-ocr; Mpx/s = crop pixels/s)")


def ratio_line(label: str, ours: float | None, theirs: float | None, quoted: float, goal: float | None) -> None:
    if ours is None:
        print(f"{label:36} ours not measured")
        return
    measured = f"{ours / theirs:5.1f}x measured here" if theirs else "peer not measured here"
    verdict = ""
    if goal and theirs:
        verdict = f" (goal >= {goal:.0f}x: {'met' if ours / theirs >= goal else 'NOT met'})"
    print(f"{label:36} {measured}{verdict}; {ours / quoted:5.1f}x the issue's quoted {quoted}")


def print_ratios(rows: list[tuple[Job, dict]]) -> None:
    rate = {job.name: r["outputs"] / r["seconds"] for job, r in rows}
    pages = {job.name: r["pages"] / r["seconds"] for job, r in rows if r["pages"]}
    ours_crops, ours_pages = rate.get("ours default"), pages.get("ours default")
    effects = [rate[k] for k in ("trdg noise", "trdg image") if k in rate]
    print("\nratios (ours = recipes/default.yaml; TRDG with effects = the faster of its noise/image configurations)")
    ratio_line("ours vs TRDG plain, crops/s", ours_crops, rate.get("trdg plain"), QUOTED_TRDG_PLAIN, None)
    ratio_line("ours vs TRDG with effects, crops/s", ours_crops, max(effects) if effects else None,
               QUOTED_TRDG_EFFECTS, 10)
    ratio_line("ours vs keras-ocr, pages/s", ours_pages, pages.get("keras-ocr"), QUOTED_KERAS_PAGES, 50)
    if "ours lines" in rate:  # crops without pages around them: like for like with TRDG's line images
        print("recipes/lines.yaml (one line per 512x128 image, the default recipe's codes and effects):")
        ratio_line("ours lines vs TRDG with effects", rate["ours lines"], max(effects) if effects else None,
                   QUOTED_TRDG_EFFECTS, 10)


def write_sheet(samples: Path, rows: list[tuple[Job, dict]]) -> Path:
    """One row per generator: its first crops at 64 px high; then pages (ours and keras-ocr) at 300 px high."""
    strips = []
    folders = [(job.name, samples / job.name.replace(" ", "_")) for job, _ in rows]
    crop_rows = [(name, sorted(folder.glob("*.png"))[:4], 64) for name, folder in folders]
    page_rows = [(f"{name} page", sorted(folder.glob("*.jpg"))[:2], 300) for name, folder in folders]
    for name, files, height in [row for row in crop_rows + page_rows if row[1]]:
        tiles = [cv2.imread(str(f)) for f in files]
        tiles = [cv2.resize(t, (max(1, round(t.shape[1] * height / t.shape[0])), height)) for t in tiles if t is not None]
        label = np.full((height, 210, 3), 255, np.uint8)
        cv2.putText(label, name, (6, height // 2 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 200), 2)
        gap = np.full((height, 8, 3), 255, np.uint8)
        strips.append(np.hstack([label] + [x for t in tiles for x in (t, gap)]))
    width = max(s.shape[1] for s in strips)
    sheet = np.vstack([np.pad(s, ((4, 4), (0, width - s.shape[1]), (0, 0)), constant_values=255) for s in strips])
    path = samples / "sheet.png"
    cv2.imwrite(str(path), sheet)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40,
                        help="per round: pages of ours per recipe; TRDG/SynthTIGER get 3n crops, keras-ocr n/4 pages")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each generator's best is reported")
    parser.add_argument("--peers-dir", type=Path, default=REPO / "benchmarks" / ".peers",
                        help="where the peers' venvs live (made on first use)")
    parser.add_argument("--recipes", default="default,lines,laser-metal", help="comma-separated bundled recipes")
    parser.add_argument("--core", type=int, default=None,
                        help="pin every generator to this core (default: before each run, the idlest core)")
    parser.add_argument("--samples", type=Path, default=Path("/tmp/bench_peers_samples"),
                        help="folder for sample outputs and sheet.png ('' for none)")
    args = parser.parse_args()
    samples = args.samples if str(args.samples) not in ("", ".") else None
    if samples:
        shutil.rmtree(samples, ignore_errors=True)

    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, {platform.platform()}; "
          f"each generator pinned to one core ({'the idlest at its start' if args.core is None else args.core}), "
          f"one at a time; load average {os.getloadavg()[0]:.2f}")
    args.peers_dir.mkdir(parents=True, exist_ok=True)
    pythons = {"ours": Path(sys.executable)}
    for name in PEER_PACKAGES:
        usable, seconds, message = ensure_venv(args.peers_dir, name)
        print(f"peer venv {name:11} {message}" + (f" ({seconds:.0f} s)" if seconds else ""))
        if usable:
            pythons[name] = peer_python(args.peers_dir, name)
        else:
            print(f"  -> skipping {name} (is the package registry reachable?)")

    rounds: dict[str, list[dict]] = {}
    to_run = [job for job in jobs(args.n, args.recipes.split(",")) if job.venv in pythons]
    for round_index in range(args.rounds):  # interleaved, so a burst of load elsewhere hits one round, not one peer
        for job in to_run:
            if job.name in rounds and not rounds[job.name]:
                continue  # failed before
            try:
                result = run_job(job, pythons[job.venv], args.core, samples if round_index == 0 else None)
                rounds.setdefault(job.name, []).append(result)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                print(f"  -> {job.name} failed, skipped: {error}")
                rounds[job.name] = []
        print(f"  round {round_index + 1}/{args.rounds} done, load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for job in to_run:
        if rounds.get(job.name):
            results = sorted(rounds[job.name], key=lambda r: r["outputs"] / r["seconds"])
            rows.append((job, dict(results[-1], worst_rate=results[0]["outputs"] / results[0]["seconds"])))
    print_table(rows)
    if "keras-ocr" not in pythons:
        print(f"{'keras-ocr':22} not measured; the issue's figure, quoted, not measured here: {QUOTED['keras-ocr']}")
    print_ratios(rows)
    if samples and rows:
        print(f"\nsamples: {samples}/<generator>/, side by side: {write_sheet(samples, rows)}")


if __name__ == "__main__":
    main()
