"""A dataset's digest: what names the examples folder written from it, so a change to
the data, or to the code that writes examples, never reads an older folder."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from mtrec.data.tables import Dataset
from mtrec.source_fingerprint import fingerprint, package_roots


def examples_code() -> str:
    """The fingerprint of the packages that turn a dataset into examples (data, and the
    feature names in contracts)."""
    return fingerprint(package_roots(("mtrec.contracts", "mtrec.data")), libraries=())


def dataset_digest(dataset: Dataset, options: dict) -> str:
    """16 hex digits over `options` (JSON) and every table of `dataset`, tags included.

    benchmarks/quality_data.py keyed its cache on the ratings alone: after the tags
    rule changed (data/tags.py) a re-run read the examples written before it."""
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    tags = () if dataset.tags is None else (dataset.tags,)
    for frame in (dataset.ratings, dataset.users, dataset.items, *tags):
        flat = frame.copy()
        for col in flat.columns:  # list cells (genres) are not hashable
            if flat[col].map(lambda v: isinstance(v, list)).any():
                flat[col] = flat[col].map("|".join)
        h.update(pd.util.hash_pandas_object(flat, index=False).values.tobytes())
        h.update(",".join(flat.columns).encode())
    return h.hexdigest()[:16]
