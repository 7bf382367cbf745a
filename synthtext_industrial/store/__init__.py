"""The dataset on disk: its format, its shards, and reading it back. Imports no stage and no generator.

- `format.py`: manifest schema, crop format, `DatasetError`, `CorruptRecord`, reading a manifest;
- `shards.py`: the one place that knows every shard format (paths, writers, hashes, records back out);
  `lmdb_store.py` and `tfrecord_store.py` are the two formats;
- `remote.py`: an fsspec URL as the output folder (object stores);
- `readers.py`: `LmdbDataset` and `tf_dataset` for training (also importable as `synthtext_industrial.data`);
- `verify.py`: `verify` and `inspect` (`describe`) of a dataset folder.

A new shard format: its writer and reader module here, and its branches in shards.py (FORMATS in format.py).
"""
