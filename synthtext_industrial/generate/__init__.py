"""Turn a recipe into a sharded dataset: parallel, reproducible, resumable.

- `run.py`: `generate()`: plan the shards, resume or refuse an existing folder, write the manifest;
- `writer.py`: a sample rendered into a record, records into a shard, a shard uploaded to a URL;
- `engines.py`: the local process pool and the Dask engine;
- `faults.py`: fault points and Ctrl-C handling (what the robustness tests pull on).

The format of what is written (manifest, shards, errors) is `synthtext_industrial.store`'s.
"""
from ..store.format import DatasetError
from .engines import ENGINES
from .faults import FAULT_ENV
from .run import RESUME_CHECKS, DatasetRefused, Summary, generate

__all__ = ["ENGINES", "FAULT_ENV", "RESUME_CHECKS", "DatasetError", "DatasetRefused", "Summary", "generate"]
