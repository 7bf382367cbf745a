"""Read line images with RapidOCR (PP-OCR weights shipped in the wheel); runs inside the peer venv.

Input: a JSON list of image paths on stdin. Output: one line `RESULT {"path": ..., "text": ..., "score": ...}`
per image, then `DONE {"version": ..., "seconds": ...}`. Mode `rec`: recognition only (the images are line
crops); mode `det`: detection + recognition, the found boxes' texts joined left to right.
"""
import argparse
import importlib.metadata
import json
import sys
import time

import cv2
from rapidocr_onnxruntime import RapidOCR


def read_rec(engine, image):
    result, _ = engine(image, use_det=False, use_cls=False, use_rec=True)
    if not result:
        return "", 0.0
    text, score = result[0][0], result[0][1]
    return text, float(score)


def read_det(engine, image):
    result, _ = engine(image)
    if not result:
        return "", 0.0
    boxes = sorted(result, key=lambda r: min(p[0] for p in r[0]))
    return "".join(r[1] for r in boxes), min(float(r[2]) for r in boxes)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["rec", "det"], default="rec")
    args = parser.parse_args()
    paths = json.load(sys.stdin)
    engine = RapidOCR()
    read = read_rec if args.mode == "rec" else read_det
    t0 = time.perf_counter()
    for path in paths:
        image = cv2.imread(path)
        text, score = read(engine, image) if image is not None else ("", 0.0)
        print("RESULT " + json.dumps({"path": path, "text": text, "score": score}, ensure_ascii=False), flush=True)
    print("DONE " + json.dumps({"version": importlib.metadata.version("rapidocr-onnxruntime"),
                                "seconds": time.perf_counter() - t0}), flush=True)


if __name__ == "__main__":
    main()
