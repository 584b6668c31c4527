"""Runs the real preprocessing_fn through tf.Transform on Beam for tests.

Several test modules need a transform graph and transformed rows without a
whole TFX pipeline; this is the one place that makes them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from google.protobuf import text_format
from mtrec.models import features as F
from mtrec.models.preprocessing import preprocessing_fn
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "pipeline" / "schema" / "schema.pbtxt"


def raw_feature_spec() -> dict:
    schema = text_format.Parse(SCHEMA_PATH.read_text(), schema_pb2.Schema())
    return schema_utils.schema_as_feature_spec(schema).feature_spec


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


def example_to_row(record: bytes, spec: dict) -> dict:
    feats = tf.train.Example.FromString(record).features.feature
    out = {}
    for name in spec:
        f = feats[name]
        kind = f.WhichOneof("kind")
        out[name] = list(getattr(f, kind).value) if kind else []
    return out


def analyze_and_transform(train_rows: list[dict], other_rows: list[dict], out_dir: str):
    """Analyze on train_rows; return (tft_output, transformed train rows, transformed others)."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(raw_feature_spec())
    )
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(dir=out_dir), force_tf_compat_v1=False):
        (train_xf, _), transform_fn = (
            train_rows,
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        other_xf = []
        if other_rows:
            other_xf, _ = ((other_rows, metadata), transform_fn) | tft_beam.TransformDataset()
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    return tft.TFTransformOutput(out_dir), list(train_xf), list(other_xf)


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


def as_dataset(rows: list[dict], batch_size: int) -> tf.data.Dataset:
    import numpy as np

    columns = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}
    return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)
