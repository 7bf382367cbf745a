#!/usr/bin/env bash
# The whole chain on one machine: generate -> train -> evaluate -> export -> standalone inference, and check that
# the standalone script (numpy + OpenCV + onnxruntime only) reads what the Keras model reads.
#
#   examples/end_to_end.sh                 # a small real run: 600 pages, up to 10 minutes of training
#   PAGES=12 VAL_PAGES=6 EPOCHS=1 STEPS=4 MINUTES= WEIGHTS=last examples/end_to_end.sh   # the CI smoke version
#
# Settings (environment): RECIPE, OUT, PAGES, VAL_PAGES, EPOCHS, STEPS (per epoch; empty: one pass), MINUTES,
# WEIGHTS (best|last), FORMATS, REPEATS (timed runs per format), PYTHON. Run from a checkout or an install with the [tf,export] extras.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
RECIPE="${RECIPE:-$HERE/recipes/default.yaml}"
OUT="${OUT:-out/end_to_end}"
PAGES="${PAGES:-600}"
VAL_PAGES="${VAL_PAGES:-120}"
EPOCHS="${EPOCHS:-40}"
STEPS="${STEPS:-}"
MINUTES="${MINUTES-10}"
WEIGHTS="${WEIGHTS:-best}"
FORMATS="${FORMATS:-onnx,tflite-fp32}"
export TF_CPP_MIN_LOG_LEVEL=2
si() { "$PYTHON" -m synthtext_industrial.cli "$@"; }

rm -rf "$OUT"
mkdir -p "$OUT"
echo "== 1. generate $PAGES training and $VAL_PAGES validation pages from $RECIPE"
si generate "$RECIPE" -n "$PAGES" -o "$OUT/train" --seed 0 --shard-size 500
si generate "$RECIPE" -n "$VAL_PAGES" -o "$OUT/val" --seed 1 --shard-size 500

echo "== 2. train the small recognizer"
si train recognizer --data "$OUT/train" --val "$OUT/val" --epochs "$EPOCHS" --out "$OUT/run" \
  ${STEPS:+--steps-per-epoch "$STEPS"} ${MINUTES:+--max-minutes "$MINUTES"}

echo "== 3. evaluate on the validation pages"
si evaluate "$OUT/run" --data "$OUT/val" -o "$OUT/eval"

echo "== 4. export ($FORMATS) with a parity report"
si export "$OUT/run" -o "$OUT/export" --formats "$FORMATS" --data "$OUT/val" --weights "$WEIGHTS" --repeats "${REPEATS:-200}"

echo "== 5. standalone inference on generated line images, against the Keras model"
"$PYTHON" - "$OUT/val" "$OUT/lines" <<'PY'
import sys
from pathlib import Path
import cv2
from synthtext_industrial.train.evaluate import dataset_lines
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
for k, (_, image, _) in enumerate(dataset_lines(sys.argv[1], limit=8)):
    cv2.imwrite(str(out / f"line{k}.png"), image)
PY
"$PYTHON" "$OUT/export/jetson/infer.py" "$OUT"/lines/*.png | cut -f1,2 > "$OUT/standalone.tsv"
si predict "$OUT/run" --weights "$WEIGHTS" "$OUT"/lines/*.png | cut -f1,2 > "$OUT/keras.tsv"
cat "$OUT/standalone.tsv"
if ! diff "$OUT/keras.tsv" "$OUT/standalone.tsv"; then
  echo "FAIL: the standalone script and the Keras model read differently" >&2
  exit 1
fi
echo "OK: the standalone script reads the same texts as the Keras model ($(wc -l < "$OUT/keras.tsv") lines)"
