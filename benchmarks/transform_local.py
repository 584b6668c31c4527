"""Run the real `preprocessing_fn` through tf.Transform on Beam, in-process.

Tests and benchmarks need a transform graph and transformed rows without a
whole TFX pipeline (minutes of orchestration per run); this module is the one
place that makes them, with the same preprocessing_fn and raw schema as the
pipeline's Transform component, so what they measure is what the pipeline runs.

- `analyze_and_transform`: in-memory instance dicts (small test fixtures);
- `transform_examples`: gzipped tf.Example TFRecords (as written by
  `mtrec.data.examples.write_examples`) through TFXIO, which is fast enough
  for MovieLens-size data; transformed splits come back as column arrays.
"""

from __future__ import annotations

import glob
import os
import pickle
import tempfile
from pathlib import Path

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.options.pipeline_options import PipelineOptions
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from mtrec.models.preprocessing import preprocessing_fn
from mtrec.pipeline import configs

# models/ and pipeline/ are siblings both in the repository and under mtrec/.
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "pipeline" / "schema" / "schema.pbtxt"


def raw_schema() -> schema_pb2.Schema:
    return text_format.Parse(SCHEMA_PATH.read_text(), schema_pb2.Schema())


def raw_feature_spec() -> dict:
    return schema_utils.schema_as_feature_spec(raw_schema()).feature_spec


def example_to_row(record: bytes, spec: dict) -> dict:
    """A serialized tf.Example as a tf.Transform instance dict (lists of values)."""
    feats = tf.train.Example.FromString(record).features.feature
    out = {}
    for name in spec:
        f = feats[name]
        kind = f.WhichOneof("kind")
        out[name] = list(getattr(f, kind).value) if kind else []
    return out


def analyze_and_transform(
    train_rows: list[dict], other_rows: list[dict], out_dir: str
) -> tuple[tft.TFTransformOutput, list[dict], list[dict]]:
    """Analyze on train_rows; return (tft_output, transformed train rows, transformed others).

    An explicit pipeline on the pipeline's local runner: a bare `rows | transform`
    would run on a DirectRunner Beam creates itself, which first tries Prism
    (pipeline/configs.py). The transformed rows come back through pickle files.
    """
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=out_dir))
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(raw_feature_spec())
    )
    options = PipelineOptions(list(configs.IN_PROCESS_BEAM_ARGS))
    with beam.Pipeline(options=options) as pipeline, tft_beam.Context(
        temp_dir=str(scratch), force_tf_compat_v1=False
    ):
        train = pipeline | "CreateTrain" >> beam.Create(train_rows)
        (train_xf, _), transform_fn = (
            train,
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        _keep(train_xf, "train", scratch)
        if other_rows:
            other = pipeline | "CreateOther" >> beam.Create(other_rows)
            other_xf, _ = ((other, metadata), transform_fn) | tft_beam.TransformDataset()
            _keep(other_xf, "other", scratch)
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    # As the Transform component does: the raw schema next to the graph, which
    # the serving signatures read to parse requests.
    raw_dir = os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR)
    metadata_io.write_metadata(metadata, raw_dir)
    train_out = pickle.loads((scratch / "train.pkl").read_bytes())
    other_out = pickle.loads((scratch / "other.pkl").read_bytes()) if other_rows else []
    return tft.TFTransformOutput(out_dir), train_out, other_out


def _keep(rows: beam.PCollection, name: str, folder: Path) -> None:
    """Write the PCollection `rows` as one pickled list, folder/<name>.pkl."""
    _ = (rows | f"List{name}" >> beam.combiners.ToList()
         | f"Pickle{name}" >> beam.Map(lambda r: (folder / f"{name}.pkl").write_bytes(
             pickle.dumps(r))))


def transform_examples(
    examples_dir: str, out_dir: str, splits: tuple[str, ...] = ("train", "eval")
) -> tuple[tft.TFTransformOutput, dict[str, dict[str, np.ndarray]]]:
    """Analyze `examples_dir/<splits[0]>`, transform every split, return column arrays.

    Only the first split feeds the analyzers (vocabularies, means), exactly like
    the pipeline's Transform with its train split: nothing held out can shape
    the vocabularies. Transformed rows are written as gzipped TFRecords under
    out_dir/transformed/<split> and read back as {feature: array} per split.
    """
    from tfx_bsl.public import tfxio

    schema = raw_schema()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The pipeline's local runner, in process: not Beam's default DirectRunner,
    # which first tries Prism (pipeline/configs.py).
    options = PipelineOptions(list(configs.IN_PROCESS_BEAM_ARGS))

    def source(split: str) -> tfxio.TFExampleRecord:
        pattern = os.path.join(examples_dir, split, "*")
        return tfxio.TFExampleRecord(pattern, schema=schema, telemetry_descriptors=["mtrec"])

    with beam.Pipeline(options=options) as pipeline, tft_beam.Context(
        temp_dir=tempfile.mkdtemp(dir=out), force_tf_compat_v1=False
    ):
        first = source(splits[0])
        raw = pipeline | f"Read{splits[0]}" >> first.BeamSource()
        transform_fn = (
            raw,
            first.TensorAdapterConfig(),
        ) | tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(out / "transform"))
        for split in splits:
            io = source(split)
            data = pipeline | f"ReRead{split}" >> io.BeamSource()
            transformed, metadata = (
                (data, io.TensorAdapterConfig()),
                transform_fn,
            ) | f"Transform{split}" >> tft_beam.TransformDataset()
            coder = tft.coders.ExampleProtoCoder(metadata.schema)
            _ = (
                transformed
                | f"Encode{split}" >> beam.Map(coder.encode)
                | f"Write{split}"
                >> beam.io.WriteToTFRecord(
                    str(out / "transformed" / split / "part"), file_name_suffix=".tfrecord"
                )
            )
    # The Transform component records the raw schema next to the transform graph;
    # the serving signatures read it (raw_feature_spec) to parse requests.
    metadata_io.write_metadata(
        dataset_metadata.DatasetMetadata(schema),
        str(out / "transform" / tft.TFTransformOutput.RAW_METADATA_DIR),
    )
    tft_output = tft.TFTransformOutput(str(out / "transform"))
    return tft_output, {s: read_transformed(tft_output, out / "transformed" / s) for s in splits}


def read_transformed(tft_output: tft.TFTransformOutput, directory: str | Path) -> dict:
    """Every transformed example in `directory` as {feature: [n, ...] array}."""
    files = sorted(glob.glob(os.path.join(str(directory), "*")))
    spec = tft_output.transformed_feature_spec()
    dataset = tf.data.TFRecordDataset(files).batch(8192)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in spec}
    for batch in dataset.map(lambda x: tf.io.parse_example(x, spec)).as_numpy_iterator():
        for key, value in batch.items():
            parts[key].append(value)
    return {k: np.concatenate(v) for k, v in parts.items() if v}


def as_dataset(columns: dict[str, np.ndarray] | list[dict], batch_size: int) -> tf.data.Dataset:
    """Batched tf.data over column arrays (or transformed row dicts)."""
    if isinstance(columns, list):
        columns = {k: np.stack([np.asarray(r[k]) for r in columns]) for k in columns[0]}
    return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)
