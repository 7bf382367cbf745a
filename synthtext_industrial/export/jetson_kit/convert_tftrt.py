#!/usr/bin/env python3
"""Convert the exported SavedModel with TF-TRT (FP16), as the published system did, on a Jetson with TensorFlow.

Needs NVIDIA's TensorFlow wheel for JetPack (it bundles TF-TRT); not needed for infer.py, which uses ONNX.
    python3 convert_tftrt.py [--savedmodel ../savedmodel] [--out ../savedmodel_tftrt_fp16]
The converted model keeps the `serving_default` signature (uint8 [B, H, W, 1] -> logits, labels, scores, text).
"""
import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--savedmodel", default=str(HERE.parent / "savedmodel"))
    parser.add_argument("--out", default=str(HERE.parent / "savedmodel_tftrt_fp16"))
    parser.add_argument("--max-batch", type=int, default=8)
    args = parser.parse_args()
    from tensorflow.python.compiler.tensorrt import trt_convert as trt

    meta = json.loads((HERE.parent / "metadata.json").read_text())
    h, w = meta["input"]["height"], meta["input"]["width"]
    params = trt.TrtConversionParams(precision_mode=trt.TrtPrecisionMode.FP16, max_workspace_size_bytes=1 << 28)
    converter = trt.TrtGraphConverterV2(input_saved_model_dir=args.savedmodel, conversion_params=params,
                                        use_dynamic_shape=True, dynamic_shape_profile_strategy="Optimal")
    converter.convert()

    def shapes():  # build engines now for batch 1 and the largest batch, not on the first request
        for batch in (1, args.max_batch):
            yield (np.zeros((batch, h, w, 1), np.uint8),)

    converter.build(input_fn=shapes)
    converter.save(args.out)
    print(f"TF-TRT FP16 SavedModel: {args.out}")


if __name__ == "__main__":
    main()
