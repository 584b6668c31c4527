"""Test fixtures over benchmarks/transform_local (the real preprocessing_fn on Beam).

Several test modules need a transform graph and transformed rows without a
whole TFX pipeline; this is the one place that makes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tensorflow as tf

from mtrec.contracts import features as F

# Test and benchmark support, kept out of the installed mtrec packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from transform_local import (  # noqa: F401  (re-exported for the tests)
    SCHEMA_PATH,
    analyze_and_transform,
    as_dataset,
    example_to_row,
    raw_feature_spec,
    transform_examples,
)


def row(user, item, rating=4.0, ts=1_000_000_000, age=30, gender="M", occupation="writer",
        title="A Film", genres=("Drama",), description="", year=1995, history=()) -> dict:
    """One raw interaction as a tf.Transform instance dict."""
    return {
        F.USER_ID: [user.encode()], F.ITEM_ID: [item.encode()], F.RATING: [float(rating)],
        F.TIMESTAMP: [ts], F.AGE: [age], F.GENDER: [gender.encode()],
        F.OCCUPATION: [occupation.encode()], F.TITLE: [title.encode()],
        F.GENRES: [g.encode() for g in genres], F.DESCRIPTION: [description.encode()],
        F.YEAR: [year], F.HISTORY: [h.encode() for h in history],
    }


def synthetic_transformed(out_dir: str, n_users=60, n_items=80, n_ratings=2500):
    """Synthetic data -> write_examples -> Transform. Returns (tft_output, train, eval) rows."""
    import glob

    from mtrec.data import generate
    from mtrec.data.examples import write_examples

    dataset = generate(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=1)
    write_examples(dataset, f"{out_dir}/examples")
    spec = raw_feature_spec()

    def rows(split):
        files = sorted(glob.glob(f"{out_dir}/examples/{split}/*"))
        records = tf.data.TFRecordDataset(files, compression_type="GZIP")
        return [example_to_row(r.numpy(), spec) for r in records]

    return analyze_and_transform(rows("train"), rows("eval"), f"{out_dir}/transform")
