"""Bundled trainers: a CTC line recognizer and an end-to-end spotter, trained straight from dataset shards.

TensorFlow is an optional dependency (`pip install 'synthtext-industrial[tf]'`); importing this package does
not import it, the modules that build and train models do.
"""
