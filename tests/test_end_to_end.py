"""examples/end_to_end.sh in its smoke size: generate -> train -> evaluate -> export -> standalone inference."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

REPO = Path(__file__).resolve().parents[1]


def test_end_to_end_script_smoke(tmp_path):
    out = tmp_path / "e2e"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "PAGES": "10", "VAL_PAGES": "6",
           "EPOCHS": "1", "STEPS": "3", "MINUTES": "", "WEIGHTS": "last", "REPEATS": "5",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(["bash", str(REPO / "examples" / "end_to_end.sh")], env=env, capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "OK: the standalone script reads the same texts as the Keras model" in done.stdout
    report = json.loads((out / "export" / "report.json").read_text())
    assert [r["format"] for r in report["rows"]] == ["keras", "onnx", "tflite-fp32"] and report["passed"]
    assert (out / "eval" / "predictions.csv").exists()
    keras, standalone = (out / "keras.tsv").read_text(), (out / "standalone.tsv").read_text()
    assert keras == standalone and len(keras.splitlines()) >= 6
    assert "parity: PASSED" in done.stdout
