"""What every stage shares: recipe config types (`config`), random streams (`streams`), bundled assets
(`assets`), homographies (`geometry`), the ground-truth records (`groundtruth`), and the numpy/OpenCV code shared with the
Jetson kit (`portable`: model input, box decoding, line rectification, constrained CTC decoding). Imports nothing else
of the package."""
