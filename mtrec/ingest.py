"""Load -> clean -> (pseudonymise) -> write examples, before ExampleGen runs.

Examples land in a content-addressed folder (`examples/<digest>/`): the same
cleaned data and options always give the same folder, so ExampleGen and
everything after it come from the TFX cache on a re-run, and a change of data
gives a new folder instead of overwriting files an earlier run used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from mtrec.data import clean, load_dataset, pseudonymize_users, write_rejects
from mtrec.data.tables import Dataset

REPORT_FILE = "ingest_report.json"


@dataclasses.dataclass(frozen=True)
class IngestResult:
    examples_root: str
    rejects_path: str
    counts: dict  # per-reason reject counts, "total", "kept", "rejected"
    report: dict  # rows per split, users, items (from write_examples)


def _digest(dataset: Dataset, options: dict) -> str:
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for frame in (dataset.ratings, dataset.users, dataset.items):
        flat = frame.copy()
        for col in flat.columns:  # list cells (genres) are not hashable
            if flat[col].map(lambda v: isinstance(v, list)).any():
                flat[col] = flat[col].map("|".join)
        h.update(pd.util.hash_pandas_object(flat, index=False).values.tobytes())
        h.update(",".join(flat.columns).encode())
    return h.hexdigest()[:16]


def ingest(
    source: str,
    path: str | None,
    home: str,
    *,
    split: str | None = None,
    eval_fraction: float = 0.2,
    max_reject_fraction: float = 0.5,
    pseudonymize_key: bytes | None = None,
) -> IngestResult:
    """Prepare `home/examples/<digest>/{train,eval,catalog}` and `home/rejects.csv`."""
    from mtrec.data.examples import write_examples  # needs TensorFlow

    result = clean(load_dataset(source, path, split), max_reject_fraction=max_reject_fraction)
    os.makedirs(home, exist_ok=True)
    rejects_path = str(write_rejects(result, os.path.join(home, "rejects.csv")))
    dataset = result.dataset
    if pseudonymize_key:
        dataset = pseudonymize_users(dataset, pseudonymize_key)
    options = {"eval_fraction": eval_fraction, "pseudonymized": bool(pseudonymize_key)}
    target = Path(home, "examples", _digest(dataset, options))
    if not (target / REPORT_FILE).exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=target.parent))
        try:
            write_examples(dataset, staging, eval_fraction=eval_fraction)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    report = json.loads((target / REPORT_FILE).read_text())
    return IngestResult(str(target), rejects_path, dict(result.counts), report)
