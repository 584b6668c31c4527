"""StreamingImportExampleGen: same splits and records as the stock component, in input order."""

from __future__ import annotations

import glob
import json
import os

import tensorflow as tf
from tfx.components.example_gen.import_example_gen import executor as stock
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from mtrec.components.example_gen.component import StreamingImportExampleGen
from mtrec.components.example_gen.executor import Executor
from mtrec.contracts.artifacts import INGEST_REPORT_FILE
from mtrec.contracts.pipeline import SPLIT_PROTOCOL
from mtrec.data.splits import RANDOM_PROTOCOL, UNKNOWN_PROTOCOL


def _write(path: str, rows: list[bytes]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path, "GZIP") as writer:
        for row in rows:
            writer.write(row)


def _example(i: int) -> bytes:
    feature = {"user_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"u%d" % i]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _run(executor, input_base: str, out: str) -> tuple[dict[str, list[bytes]], str | None]:
    """(the records of each split, the artifact's split protocol or None)."""
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name=s, pattern=f"{s}/*") for s in ("train", "eval")]
    )
    examples = standard_artifacts.Examples()
    examples.uri = out
    exec_properties = {
        standard_component_specs.INPUT_BASE_KEY: input_base,
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
        standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(
            example_gen_pb2.Output()
        ),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    executor.Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    assert examples_utils.get_payload_format(examples) == example_gen_pb2.FORMAT_TF_EXAMPLE
    records = {}
    for split in ("train", "eval"):
        files = sorted(glob.glob(os.path.join(out, f"Split-{split}", "*.gz")))
        records[split] = [r.numpy() for r in tf.data.TFRecordDataset(files, "GZIP")]
    protocol = (examples.get_string_custom_property(SPLIT_PROTOCOL)
                if examples.has_custom_property(SPLIT_PROTOCOL) else None)
    return records, protocol


def test_writes_the_stock_splits_and_records_in_input_order(tmp_path):
    rows = {"train": [_example(i) for i in range(300)], "eval": [_example(i) for i in range(7)]}
    for split, split_rows in rows.items():
        _write(str(tmp_path / "in" / split / "data.tfrecord.gz"), split_rows)
    ours, protocol = _run(Executor(), str(tmp_path / "in"), str(tmp_path / "ours"))
    theirs, _ = _run(stock.Executor(), str(tmp_path / "in"), str(tmp_path / "stock"))
    for split, split_rows in rows.items():
        assert ours[split] == split_rows  # no shuffle: the input's (already random) order
        assert sorted(theirs[split]) == sorted(split_rows)
    assert protocol == UNKNOWN_PROTOCOL  # no ingest report beside these splits


def test_records_the_split_protocol_that_ingestion_wrote(tmp_path):
    _write(str(tmp_path / "in" / "train" / "data.tfrecord.gz"), [_example(0), _example(1)])
    _write(str(tmp_path / "in" / "eval" / "data.tfrecord.gz"), [_example(2)])
    (tmp_path / "in" / INGEST_REPORT_FILE).write_text(
        json.dumps({"split_protocol": RANDOM_PROTOCOL}))
    _, protocol = _run(Executor(), str(tmp_path / "in"), str(tmp_path / "out"))
    assert protocol == RANDOM_PROTOCOL


def test_component_is_the_stock_import_example_gen_with_our_executor():
    component = StreamingImportExampleGen(input_base="/data")
    assert component.executor_spec.executor_class is Executor
    assert "examples" in component.outputs
