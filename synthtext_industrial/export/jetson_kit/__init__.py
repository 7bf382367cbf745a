"""The files copied into EXPORT/jetson/. `infer.py` needs only numpy and OpenCV at import, so the trainers
import its post-processing too: training, evaluation, parity and the device decode boxes with one code."""
