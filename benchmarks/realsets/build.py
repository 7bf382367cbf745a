"""Build the public real dev sets from fetched git repositories (nothing is downloaded here).

Run:  python benchmarks/realsets/build.py --mirror-root /work/.mirror --out /work/realsets [--only NAME ...]

Each source is a bare git directory under --mirror-root named `owner+name/repo` (as the session's fetch tool
leaves it; `repo/.git` also works). Files are read at the pinned commit with `git archive` / `git show`, so a
rebuild gives the same set. Each set goes to OUT/<name>/: images/, labels.tsv (`path<TAB>text`, as
`synthtext-industrial evaluate --images DIR` reads it), set.json (source, commit, licence, scoring rule) and
sheet.png (48 images with their labels). Sets are for local evaluation only: never commit or ship them,
never train on their labels. See README.md beside this file.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DIGITS, UPPER, contact_sheet  # noqa: E402

SOURCES = {  # set name -> (repository, pinned commit, licence as found in the repository)
    "fuelpump-7seg": ("SachaIZADI/Seven-Segment-OCR", "f2cef3f31e51910432f14874ddfcdeaf5334969f",
                      "none (no licence file): local evaluation only, never redistributed"),
    "fuelpump-frames": ("SachaIZADI/Seven-Segment-OCR", "f2cef3f31e51910432f14874ddfcdeaf5334969f",
                        "none (no licence file): local evaluation only, never redistributed"),
    "plates-lprnet": ("sirius-ai/LPRNet_Pytorch", "7c976664b3f3879efabeaff59c7a117e49d5f29e",
                      "Apache-2.0 (repository LICENSE; the plate crops come from CCPD, which is for "
                      "non-commercial research)"),
    "dotmatrix-pvc": ("LeoPits/OCR-Dot-matrix-text", "759fc6c204fb08c3ecb6ef93675e9fffd8b42a9c",
                      "none (no licence file): local evaluation only, never redistributed"),
    "dotmatrix-meds": ("ameera3/OCR_Expiration_Date", "4b3c2351a83d0ffc7a6214a00af02882986e99d2",
                       "none (no licence file; the README adds a U.S. export-control notice): local evaluation "
                       "only, never redistributed"),
    "datecode-photos": ("MonaKhaled10/Expiration-Date-Recognition", "34d32afa5c14f7b2525ff6cd265697bc447f4de8",
                        "none (no licence file; the photos look like ExpDate's, Seker & Ahn, released for research): "
                        "local evaluation only, never redistributed"),
    "iiit5k-test": ("gsy-cv/IIIT5K", "3d361ac71f783af2f1af3f3e9185a06993d45e3d",
                    "none in the mirror; IIIT5K is released by IIIT Hyderabad for academic research: "
                    "local evaluation only"),
    "meter-digits": ("jomjol/neural-network-digital-counter-readout", "b62679902ce42b5885dd01d09a7cc0b9af40f0dc",
                     "none (no licence file): local evaluation only, never redistributed"),
}


# ----------------------------------------------------------------------------- git access

def git_dir(mirror_root: Path, repo: str) -> Path:
    base = mirror_root / repo.replace("/", "+") / "repo"
    for candidate in (base, base / ".git"):
        if (candidate / "HEAD").exists() and (candidate / "objects").exists():
            return candidate
    raise SystemExit(f"no git directory for {repo} under {base}: fetch github:{repo} first")


def git(gitdir: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], check=True, capture_output=True).stdout


def archive(gitdir: Path, commit: str, paths: list[str]) -> dict[str, bytes]:
    """{path: bytes} for every file under `paths` at `commit`."""
    data = git(gitdir, "archive", "--format=tar", commit, *paths)
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                files[member.name] = tar.extractfile(member).read()
    return files


def decode(data: bytes, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)


# ----------------------------------------------------------------------------- writing a set

class SetWriter:
    def __init__(self, out: Path, name: str):
        self.folder = out / name
        shutil.rmtree(self.folder, ignore_errors=True)
        (self.folder / "images").mkdir(parents=True)
        self.rows: list[tuple[str, str]] = []

    def add(self, stem: str, image: np.ndarray, text: str) -> None:
        relative = f"images/{stem}.png"
        cv2.imwrite(str(self.folder / relative), image)
        self.rows.append((relative, text))

    def finish(self, name: str, scoring: dict, notes: str, skipped: dict[str, int], extra: dict | None = None) -> None:
        repo, commit, licence = SOURCES[name]
        (self.folder / "labels.tsv").write_text("".join(f"{p}\t{t}\n" for p, t in self.rows), encoding="utf-8")
        meta = {"name": name, "source": f"https://github.com/{repo}", "commit": commit, "licence": licence,
                "count": len(self.rows), "scoring": scoring, "notes": notes, "skipped": skipped, **(extra or {})}
        (self.folder / "set.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
        contact_sheet([(self.folder / p, t) for p, t in self.rows], self.folder / "sheet.png")
        print(f"{name}: {len(self.rows)} images -> {self.folder}" + (f" (skipped: {skipped})" if skipped else ""))


def warp_quad(image: np.ndarray, quad: np.ndarray, pad: float = 0.0) -> np.ndarray:
    """The quadrilateral (TL, TR, BR, BL) cut out upright, widened by `pad` x its height on each side."""
    quad = np.asarray(quad, np.float32)
    tl, tr, br, bl = quad
    width = max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))
    height = max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))
    m = pad * height
    out_w, out_h = int(round(width + 2 * m)), int(round(height + 2 * m))
    target = np.float32([[m, m], [m + width, m], [m + width, m + height], [m, m + height]])
    matrix = cv2.getPerspectiveTransform(quad, target)
    return cv2.warpPerspective(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def order_quad(points: np.ndarray) -> np.ndarray:
    """TL, TR, BR, BL for a wide box tilted by less than 45 degrees."""
    by_x = points[np.argsort(points[:, 0])]
    left, right = by_x[:2][np.argsort(by_x[:2, 1])], by_x[2:][np.argsort(by_x[2:, 1])]
    return np.float32([left[0], right[0], right[1], left[1]])


# ----------------------------------------------------------------------------- fuel-pump seven-segment

def find_lcd_window(bgr: np.ndarray) -> np.ndarray | None:
    """Quad of the LCD window (full-resolution pixels): the biggest dark, wide, rectangular region near the
    centre of the photo (the pumps have a grey LCD on a white panel). None when nothing qualifies."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    scale = 800 / gray.shape[1]
    small = cv2.GaussianBlur(cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), (5, 5), 0)
    _, dark = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    dark = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (15, 15)))
    contours, _ = cv2.findContours(dark, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    h, w = small.shape
    best = None
    for contour in contours:
        area = cv2.contourArea(contour)
        if area < 0.03 * h * w:
            continue
        rect = cv2.minAreaRect(contour)
        (cx, cy), (rw, rh), _ = rect
        tl, tr, br, bl = quad = order_quad(cv2.boxPoints(rect))
        wide, high = np.linalg.norm(tr - tl), np.linalg.norm(bl - tl)  # a window lies wide, never upright
        if high < 1 or not 2.6 <= wide / high <= 8.0 or area / (rw * rh) < 0.75:
            continue
        score = area / (1 + np.hypot(cx - w / 2, cy - h / 2) / w)
        if best is None or score > best[0]:
            best = (score, quad)
    return None if best is None else best[1] / scale


def build_fuelpump(gitdir: Path, out: Path) -> None:
    name = "fuelpump-7seg"
    commit = SOURCES[name][1]
    files = archive(gitdir, commit, ["Datasets"])
    writer, skipped = SetWriter(out, name), {"no LCD window found": 0, "label mismatch": 0}
    for quality, row, digits in fuelpump_rows(files, skipped):
        photo = decode(files[f"Datasets/{quality}_digital/{row['image']}"])
        quad = find_lcd_window(photo)
        if quad is None:
            skipped["no LCD window found"] += 1
            continue
        writer.add(f"{quality}_{Path(row['image']).stem[:12]}", warp_quad(photo, quad, pad=0.08), digits)
    writer.finish(name, {"only": DIGITS, "cut_at": ".,", "round_ok": True},
                  "Phone photos of fuel-pump LCDs (dark segments on grey glass). The CSV gives the integer litres "
                  "(cadran_1..4); the display also shows two decimals, which are not labelled, so the prediction "
                  "is cut at its first decimal point before comparing (or rounded: some labels are the rounded "
                  "reading). The LCD window is found automatically "
                  "(find_lcd_window) and cut upright with 8% padding; photos where no window qualifies are "
                  "skipped.", skipped)


def fuelpump_rows(files: dict[str, bytes], skipped: dict[str, int]):
    """(quality, CSV row, digits) for every photo whose digits agree with its used_liter label."""
    for quality in ("HQ", "MQ", "LQ"):
        table = files[f"Datasets/{quality}_digital.csv"].decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        for row in csv.DictReader(io.StringIO(table), delimiter=";"):
            digits = "".join(row[f"cadran_{k}"] for k in range(1, 5) if row[f"cadran_{k}"] != "X")
            if digits != row["used_liter"]:
                skipped["label mismatch"] += 1
                continue
            yield quality, row, digits


# Frames whose automatic window quad (find_lcd_window) is wrong, so the frames set skips them. Checked by hand on
# the first build (before this list existed): the review sheets it writes (review/review-NN.jpg, every frame's quad
# drawn in red on a 400-px tile, 36 frames a sheet, in build order) review-00, review-08 and review-16 whole and
# the first 18 frames of review-04 (126 frames: HQ, MQ and LQ photos) were looked at, and 11 doubtful ones again at
# full resolution. Wrong = the quad is not the LCD window: it takes in the LITRES label below it, or slants off
# the window by more than a digit's stroke. Many quads are a little loose at one corner (minAreaRect fits a
# rectangle to a window seen in perspective); those were kept. Frames outside the reviewed sheets are unchecked.
FRAMES_WRONG_QUAD: dict[str, str] = {
    "HQ_f78fe5a461f2": "rectangle slants below the window's lower edge into the LITRES label (window in perspective)",
    "HQ_9b53257ee7e2": "window and the LITRES label below it boxed as one region",
}
FRAMES_REVIEWED = ("126 of 744 frames (first build's review-00, -08, -16 whole and the first 18 of review-04); "
                   "2 wrong, skipped")


def build_fuelpump_frames(gitdir: Path, out: Path) -> None:
    """Whole photos (long side 1600 px, grayscale JPEG) with the LCD window's quad and the integer litres, as
    labels.jsonl for `synthtext-industrial evaluate READER --frames`."""
    name = "fuelpump-frames"
    files = archive(gitdir, SOURCES[name][1], ["Datasets"])
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "images").mkdir(parents=True)
    skipped = {"no LCD window found": 0, "label mismatch": 0, "window quad wrong (hand-checked)": 0}
    rows, drawn = [], []
    for quality, row, digits in fuelpump_rows(files, skipped):
        frame_id = f"{quality}_{Path(row['image']).stem[:12]}"
        photo = decode(files[f"Datasets/{quality}_digital/{row['image']}"])
        quad = find_lcd_window(photo)
        if quad is None:
            skipped["no LCD window found"] += 1
            continue
        if frame_id in FRAMES_WRONG_QUAD:
            skipped["window quad wrong (hand-checked)"] += 1
            continue
        scale = 1600 / max(photo.shape[:2])
        gray = cv2.resize(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), None, fx=scale, fy=scale,
                          interpolation=cv2.INTER_AREA)
        quad = np.asarray(quad, np.float64) * scale
        relative = f"images/{frame_id}.jpg"
        cv2.imwrite(str(folder / relative), gray, [cv2.IMWRITE_JPEG_QUALITY, 92])
        rows.append(json.dumps({"image": relative, "lines": [
            {"quad": [[round(float(x), 1), round(float(y), 1)] for x, y in quad], "text": digits}]}))
        drawn.append((frame_id, gray, quad, digits))
    (folder / "labels.jsonl").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    repo, commit, licence = SOURCES[name]
    meta = {"name": name, "source": f"https://github.com/{repo}", "commit": commit, "licence": licence,
            "count": len(rows), "format": "labels.jsonl (docs/reader.md)",
            "scoring": {"only": DIGITS, "cut_at": ".,", "round_ok": True,
                        "quad": "the LCD window (inner edge of the bezel), not the text: the digits fill about 60% "
                                "of its height and the unlabelled decimals and blank positions lie inside it, so "
                                "a detector boxing the digits alone can miss IoU 0.5"},
            "quads_reviewed": FRAMES_REVIEWED, "quads_wrong": FRAMES_WRONG_QUAD,
            "notes": "The fuelpump-7seg photos whole: 2048x1152 phone photos resized to 1600x900, grayscale. One line "
                     "per frame: the quad of the LCD window found by find_lcd_window (no annotation gives it) and "
                     "the integer litres of the CSV; the display also shows two decimals, not labelled, so a reading "
                     "is cut at its first decimal point before comparing (or rounded). Frames whose quad was found "
                     "wrong by hand are skipped (FRAMES_WRONG_QUAD in build.py).",
            "skipped": skipped}
    (folder / "set.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for k in range(0, len(drawn), 36):  # review sheets: every frame with its quad, 36 a sheet, in build order
        tiles = []
        for frame_id, gray, quad, digits in drawn[k:k + 36]:
            tile = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
            cv2.polylines(tile, [np.round(quad).astype(np.int32).reshape(-1, 1, 2)], True, (0, 0, 255), 6)
            f = min(400 / gray.shape[1], 300 / gray.shape[0])
            small = cv2.resize(tile, (round(gray.shape[1] * f), round(gray.shape[0] * f)), interpolation=cv2.INTER_AREA)
            tile = np.zeros((304, 404, 3), np.uint8)
            tile[:small.shape[0], :small.shape[1]] = small
            cv2.putText(tile, f"{k + len(tiles)} {frame_id} {digits}", (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (0, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        (folder / "review").mkdir(exist_ok=True)
        tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 6)
        sheet = np.vstack([np.hstack(tiles[r:r + 6]) for r in range(0, len(tiles), 6)])
        cv2.imwrite(str(folder / "review" / f"review-{k // 36:02d}.jpg"), sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"{name}: {len(rows)} frames -> {folder} (skipped: {skipped})")


# ----------------------------------------------------------------------------- licence plates

def build_plates(gitdir: Path, out: Path) -> None:
    name = "plates-lprnet"
    files = archive(gitdir, SOURCES[name][1], ["data/test"])
    writer, skipped = SetWriter(out, name), {"unexpected file name": 0}
    for k, (path, data) in enumerate(sorted(files.items())):
        label = Path(path).stem
        if not re.fullmatch(r"[^\x00-\x7f][A-Z0-9]{5,6}", label):
            skipped["unexpected file name"] += 1
            continue
        writer.add(f"{k:04d}_{label[1:]}", decode(data), label)
    writer.finish(name, {"only": DIGITS + UPPER},
                  "Chinese licence-plate crops (94x24 px, blue plates, white characters; mostly Anhui, from CCPD). "
                  "Label = file name; its first character is a Chinese province character and is not scored "
                  "(only Latin capitals and digits are compared).", skipped)


# ----------------------------------------------------------------------------- dot-matrix on PVC bags

DOTMATRIX_LINES = [  # (photo, quad TL TR BR BL in the 2056x2464 photo, text): cut by hand, see README
    ("Image_readme/A_0.png", [(195, 1400), (1507, 1270), (1515, 1410), (203, 1540)], "LOTTO:L21X45"),
    ("Image_readme/A_0.png", [(218, 1535), (1590, 1400), (1598, 1517), (225, 1647)], "SCAD.:10-2023"),
    ("Image_readme/B_9.png", [(1050, 1646), (1692, 1586), (1698, 1654), (1056, 1722)], "L21X7A"),
    ("Image_readme/B_9.png", [(1032, 1736), (1770, 1658), (1776, 1738), (1038, 1820)], "10-2023"),
]


def build_dotmatrix(gitdir: Path, out: Path) -> None:
    name = "dotmatrix-pvc"
    photos = archive(gitdir, SOURCES[name][1], ["Image_readme/A_0.png", "Image_readme/B_9.png"])
    writer = SetWriter(out, name)
    for k, (photo, quad, text) in enumerate(DOTMATRIX_LINES):
        image = decode(photos[photo], cv2.IMREAD_GRAYSCALE)
        writer.add(f"{Path(photo).stem}_{k}", warp_quad(image, np.float32(quad), pad=0.15), text)
    writer.finish(name, {"only": DIGITS + UPPER + ":.-/"},
                  "Two photos (2056x2464, grey) of inkjet dot-matrix codes on medical PVC bags; four lines cut by "
                  "hand (quads in build.py). The repository labels A_0 only (LOTTO:L21X45SCAD.:10-2023, split here "
                  "into its two lines); B_9's lines were transcribed from the photo. Spaces are not scored. Four "
                  "lines: a smoke test, not a measurement.", {})


# ----------------------------------------------------------------------------- dot-matrix lot/expiry codes on medicine packs

# Labels of the repository's ground truth that the crop contradicts: all 75 crops were compared with their labels on
# contact sheets (300 px wide tiles) and 12 doubtful ones again at 1000 px. crop id -> (text as printed, why).
MEDS_LABEL_FIXES: dict[str, tuple[str, str]] = {
    "ex_41": ("G10088 08/2021", "ground truth says 02/2021; the crop shows 08/2021 (the same 8 glyph as in G10088)"),
}


def build_dotmatrix_meds(gitdir: Path, out: Path) -> None:
    """75 one-line crops of dot-matrix lot/expiry codes with `ex_N-gt.txt` ground truth, from the repository's
    Testing_Framework/images_processed.zip (read from the zip inside the git tree; nothing is unpacked on disk)."""
    name = "dotmatrix-meds"
    member = "Testing_Framework/images_processed.zip"
    data = archive(gitdir, SOURCES[name][1], [member])[member]
    writer, skipped = SetWriter(out, name), {"no ground truth": 0, "unreadable": 0}
    fixed = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zipped:
        names = set(zipped.namelist())
        images = sorted((n for n in names if re.fullmatch(r"images_processed/ex_\d+\.png", n)),
                        key=lambda n: int(re.search(r"\d+", Path(n).stem)[0]))
        for path in images:
            stem = Path(path).stem
            truth = f"images_processed/{stem}-gt.txt"
            if truth not in names:
                skipped["no ground truth"] += 1
                continue
            text = " ".join(zipped.read(truth).decode("utf-8").split())
            image = decode(zipped.read(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                skipped["unreadable"] += 1
                continue
            if stem in MEDS_LABEL_FIXES:
                fixed[stem] = {"was": text, "now": MEDS_LABEL_FIXES[stem][0], "why": MEDS_LABEL_FIXES[stem][1]}
                text = MEDS_LABEL_FIXES[stem][0]
            writer.add(f"{int(stem[3:]):02d}", image, text)
    writer.finish(name, {"ignore_case": True, "only": DIGITS + UPPER + ":.-/"},
                  "75 crops, one line each, of real dot-matrix lot numbers, expiry dates and "
                  "country-of-origin marks on medicine bottles and packs, photographed 'in the wild' for a "
                  "paramedics' OCR project. The raw crops (Testing_Framework/images.zip) are over the snapshot's "
                  "4 MiB limit; these are the repository's own processed versions of the same crops "
                  "(images_processed.zip: grayscale, deskewed, most Otsu-binarised to black dots on white, "
                  "370-2100 px wide). Label = the repository's ex_N-gt.txt (whitespace collapsed); labels "
                  "contradicted by the crop are corrected (label_fixes; MEDS_LABEL_FIXES in build.py). Compared "
                  "case-insensitively (one label is 'India') on letters, digits and ':.-/'; spaces and '#' are not "
                  "scored.", skipped, {"label_fixes": fixed})


# ----------------------------------------------------------------------------- printed date/lot codes in phone photos

DATECODE_LINES = Path(__file__).resolve().parent / "datecode_photos.tsv"


def build_datecode_photos(gitdir: Path, out: Path) -> None:
    """Lines cut from the repository's 36 Test-images (phone photos of food packs); quads and texts from
    datecode_photos.tsv beside this file (texts transcribed by hand, see README)."""
    name = "datecode-photos"
    lines = [row.split("\t") for row in DATECODE_LINES.read_text(encoding="utf-8").splitlines()
             if row and not row.startswith("#")]
    photos = archive(gitdir, SOURCES[name][1], sorted({photo for photo, *_ in lines}))
    writer, count = SetWriter(out, name), {}
    for photo, quad, _, text in lines:
        stem = Path(photo).stem
        count[stem] = count.get(stem, 0) + 1
        corners = np.float32([float(v) for v in quad.split()]).reshape(4, 2)
        writer.add(f"{stem}_{count[stem]}", warp_quad(decode(photos[photo]), corners, pad=0.15), text)
    writer.finish(name, {"ignore_case": True, "only": DIGITS + UPPER + ":/-"},
                  "Phone photos (700-2300 px, colour) of food packs in shops, hand-held, with variable data "
                  "printed on: dot-matrix inkjet dates and lot codes mostly, some thermal-transfer or embossed "
                  f"ones. {len(lines)} lines from all 36 of the repository's Test-images, cut upright with 15% "
                  "padding; the repository has no labels: the texts were transcribed by hand from the photos and "
                  "the quads proposed by RapidOCR's PP-OCR detector (four drawn and one moved by hand, two joined "
                  "from its word boxes), all in datecode_photos.tsv. Lines whose characters could not be read for sure (O or 0, G or 6, "
                  "occluded) were left out. Compared case-insensitively on letters, digits and ':/-': spaces, "
                  "'.' and ',' (date separators printed as one dot or a two-dot comma), brackets and Korean "
                  "(까지 'until') are not scored.", {})


# ----------------------------------------------------------------------------- IIIT5K

def build_iiit5k(gitdir: Path, out: Path) -> None:
    name = "iiit5k-test"
    commit = SOURCES[name][1]
    tags = git(gitdir, "show", f"{commit}:test.tags").decode("utf-8").splitlines()
    files = archive(gitdir, commit, ["test"])
    writer, skipped = SetWriter(out, name), {"missing image": 0}
    for line in tags:
        path, text = line.split(" ", 1)
        if path not in files:
            skipped["missing image"] += 1
            continue
        writer.add(Path(path).stem, decode(files[path]), text)
    writer.finish(name, {"ignore_case": True, "only": DIGITS + UPPER},
                  "IIIT5K test words (3000 scene and born-digital word crops). Compared case-insensitively on "
                  "letters and digits, as is customary.", skipped)


# ----------------------------------------------------------------------------- meter digits

def build_meter_digits(gitdir: Path, out: Path) -> None:
    name = "meter-digits"
    folder = "01_data_raw_all_original"
    files = archive(gitdir, SOURCES[name][1], [folder])
    writer, skipped = SetWriter(out, name), {"not a plain digit label (NaN, half states)": 0, "unreadable": 0}
    for k, (path, data) in enumerate(sorted(files.items())):
        match = re.match(r"([0-9])(?:\.0)?(?:_| ?- ?|\.(?:jpg|png|bmp)$)", Path(path).name)
        if not match:
            skipped["not a plain digit label (NaN, half states)"] += 1
            continue
        image = decode(data)
        if image is None:
            skipped["unreadable"] += 1
            continue
        writer.add(f"{k:04d}", image, match.group(1))
    writer.finish(name, {"only": DIGITS},
                  "Single digits cut from utility meters (rolling counters and LCDs) by AI-on-the-edge devices, "
                  "about 20x32 px. Label = the digit at the start of the file name; NaN (between-digit) and "
                  "fractional names are skipped.", skipped)


BUILDERS = {"fuelpump-7seg": build_fuelpump, "fuelpump-frames": build_fuelpump_frames, "plates-lprnet": build_plates, "dotmatrix-pvc": build_dotmatrix,
            "dotmatrix-meds": build_dotmatrix_meds, "datecode-photos": build_datecode_photos,
            "iiit5k-test": build_iiit5k, "meter-digits": build_meter_digits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror-root", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--out", type=Path, default=Path("/work/realsets"))
    parser.add_argument("--only", nargs="*", choices=sorted(BUILDERS), help="build only these sets")
    args = parser.parse_args()
    repo_root = Path(__file__).resolve().parents[2]
    if args.out.resolve().is_relative_to(repo_root):
        raise SystemExit(f"--out {args.out} is inside the repository; real photos must stay outside it")
    for name in args.only or BUILDERS:
        BUILDERS[name](git_dir(args.mirror_root, SOURCES[name][0]), args.out)


if __name__ == "__main__":
    main()
