"""Trained runs out to the device: `exporter.py` (SavedModel, ONNX, TFLite, metadata.json, the Jetson kit copied
in), `parity.py` (every artefact against the Keras model: report.json) and `jetson_kit/` (the standalone
scripts that run on the device; numpy and OpenCV only). A new export target is a new entry of
`exporter.FORMATS` with its exporter; TensorFlow is imported by the functions that need it, not here."""
