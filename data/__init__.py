"""Data ingestion: load a source, clean it, write TFRecords for ExampleGen.

    dataset = load_dataset("ml-100k", "/data/ml-100k", split="u1")
    result = clean(dataset)
    write_examples(result.dataset, "/out/examples")

`write_examples` is imported lazily: it needs TensorFlow, the rest only pandas.
"""

from __future__ import annotations

from typing import Any

from mtrec.data.cleaning import (
    CleanResult,
    DataQualityError,
    clean,
    pseudonymize_users,
    write_rejects,
)
from mtrec.data.download import ChecksumError, DownloadError, download
from mtrec.data.generic import load_generic
from mtrec.data.loaders import SOURCES, load_dataset
from mtrec.data.movielens import load_ml1m, load_ml100k, load_ml_latest_small
from mtrec.data.synthetic import GroundTruth, generate, generate_with_truth, ground_truth
from mtrec.data.tables import Dataset

__all__ = [
    "SOURCES",
    "ChecksumError",
    "CleanResult",
    "DataQualityError",
    "Dataset",
    "DownloadError",
    "GroundTruth",
    "clean",
    "download",
    "generate",
    "generate_with_truth",
    "ground_truth",
    "load_dataset",
    "load_generic",
    "load_ml100k",
    "load_ml1m",
    "load_ml_latest_small",
    "pseudonymize_users",
    "write_examples",
    "write_rejects",
]


def __getattr__(name: str) -> Any:
    if name == "write_examples":
        from mtrec.data.examples import write_examples

        return write_examples
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
