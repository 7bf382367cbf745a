"""Readers for training, at their documented import path: `synthtext_industrial.store.readers`, re-exported.

    from synthtext_industrial.data import LmdbDataset, collate_fn, ragged_batch, tf_dataset
"""
from .store import readers
from .store.readers import (AUTOTUNE, CROP_FEATURES, PAGE_FEATURES, Feature, LmdbDataset, collate_fn,
                            dtrb_character, dtrb_options, feature_spec, ragged_batch, tf_dataset)

__all__ = ["AUTOTUNE", "CROP_FEATURES", "PAGE_FEATURES", "Feature", "LmdbDataset", "collate_fn", "dtrb_character",
           "dtrb_options", "feature_spec", "ragged_batch", "tf_dataset"]


def __getattr__(name: str):
    """PAGE_FEATURE_SPEC and CROP_FEATURE_SPEC, built (importing TensorFlow) on first use, as in `readers`."""
    return getattr(readers, name)
