#!/usr/bin/env bash
# Build a TensorRT FP16 engine from the exported ONNX model with trtexec (on the Jetson itself: engines are
# specific to the GPU and the TensorRT version that built them).
#   ./build_engine.sh [MAX_BATCH]        -> @MODEL@_fp16.engine next to this script
# JetPack 4.6 (TensorRT 8.2) takes --workspace=MiB; JetPack 5/6 (TensorRT 8.5+) --memPoolSize=workspace:MiB.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ONNX="${ONNX:-$HERE/../@MODEL@.onnx}"
ENGINE="${ENGINE:-$HERE/@MODEL@_fp16.engine}"
MAX_BATCH="${1:-8}"
TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"
SHAPE="@HEIGHT@x@WIDTH@x1"   # input "image": float32 [batch, @HEIGHT@, @WIDTH@, 1], pixels 0-255
if "$TRTEXEC" --help 2>&1 | grep -q memPoolSize; then WORKSPACE="--memPoolSize=workspace:${WORKSPACE_MIB:-256}"
else WORKSPACE="--workspace=${WORKSPACE_MIB:-256}"; fi
"$TRTEXEC" --onnx="$ONNX" --saveEngine="$ENGINE" --fp16 "$WORKSPACE" \
  --minShapes=image:1x$SHAPE --optShapes=image:1x$SHAPE --maxShapes=image:${MAX_BATCH}x$SHAPE \
  --shapes=image:1x$SHAPE --warmUp=500 --iterations=200 --avgRuns=100
echo "engine: $ENGINE  (trtexec printed its latency above: see 'GPU Compute Time' median)"
