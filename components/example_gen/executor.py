"""ImportExampleGen's executor for examples mtrec has already written: it links them.

mtrec's ingestion writes every split as gzipped TFRecords of tf.Examples, in a
seeded random order (data/examples.py), under `examples/<digest>/`. The stock
ExampleGen reads them back, reshuffles every split and writes each record again
(`tfx/components/example_gen/write_split.py`), which bought nothing here and
cost a second copy of the data on disk and a pass over it: ImportExampleGen took
12.9 s at 100K interactions and 173 s at 5M, 7-10% of the pipeline
(benchmarks/results/scale.md's 2026-11-26 series; 0.1-0.2 s linked, 2026-12-07).
So when each output split is one input split's files as they are, this executor
puts those files in the artifact's split folders: hard links on a local disk (no
bytes written; the artifact stays valid if `examples/` is removed), copies
elsewhere (`gs://`: no records decoded or compressed again). Every file must be
gzipped and its first record a tf.Example; a plain TFRecord file or a
hash-bucket split of one input takes the Beam path, which streams without the
stock shuffle (that shuffle held a whole split in memory: 11.6 GB at 3M
interactions before, 2.7 GB after).
The records and the artifact's properties are the same either way, and
each file's records keep their order (executor_test.py).

Splits, output config and artifact properties are the stock component's, plus
one custom property: the split protocol that mtrec's ingestion recorded beside
the splits (contracts.pipeline.SPLIT_PROTOCOL). The Trainer settles the
protocol's model settings from it (models/config.py PROTOCOL_OVERRIDES), at
run time, because data_root is a run-time parameter of the compiled pipeline.
"""

from __future__ import annotations

import gzip
import logging
import os
from typing import Any

import apache_beam as beam
import tensorflow as tf
from google.protobuf.message import DecodeError
from tfx import types
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from mtrec.contracts.pipeline import SPLIT_PROTOCOL
from mtrec.data.artifact_io import link_files, read_files
from mtrec.data.examples import recorded_split_protocol

_EXAMPLES = standard_component_specs.EXAMPLES_KEY
# Output file formats that linked gzipped TFRecords are (unspecified: ExampleGen's default).
_GZIP_TFRECORDS = (example_gen_pb2.FILE_FORMAT_UNSPECIFIED, example_gen_pb2.FORMAT_TFRECORDS_GZIP)
_TF_EXAMPLES = (None, example_gen_pb2.FORMAT_TF_EXAMPLE)  # None: ExampleGen's default


@beam.ptransform_fn
def WriteSplitInOrder(split: beam.PCollection, output_split_path: str) -> beam.pvalue.PDone:
    """WriteSplit (same file names and compression) minus its Reshuffle."""
    return (
        split
        | "MaybeSerialize" >> beam.ParDo(write_split.MaybeSerialize())
        | "Write"
        >> beam.io.WriteToTFRecord(
            os.path.join(output_split_path, write_split.DEFAULT_FILE_NAME),
            file_name_suffix=".gz",
        )
    )


class Executor(import_executor.Executor):
    """Stock ImportExampleGen splits and properties; linked files, or an in-order write."""

    # False: write every record through Beam even where the files could be linked
    # (the path before linking; benchmarks/example_gen.py and the tests compare the two).
    LINK = True

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
        )
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config
        )
        payload = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        if payload == example_gen_pb2.PayloadFormat.FORMAT_PARQUET:
            raise ValueError("mtrec's ImportExampleGen writes TFRecords only, not Parquet")
        file_format = exec_properties.get(
            standard_component_specs.OUTPUT_FILE_FORMAT_KEY,
            example_gen_pb2.FILE_FORMAT_UNSPECIFIED,
        )
        examples = artifact_utils.get_single_instance(output_dict[_EXAMPLES])
        split_names = utils.generate_output_split_names(input_config, output_config)
        examples.split_names = artifact_utils.encode_split_names(split_names)
        input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        linkable = self.LINK and file_format in _GZIP_TFRECORDS and payload in _TF_EXAMPLES
        plan = link_plan(input_base, input_config, output_config) if linkable else None
        if plan is not None:
            for name, files in plan.items():
                link_files(files, artifact_utils.get_split_uri(output_dict[_EXAMPLES], name))
            logging.info("linked %s", {name: len(files) for name, files in plan.items()})
        else:
            with self._make_beam_pipeline() as pipeline:
                splits = self.GenerateExamplesByBeam(pipeline, exec_properties)
                for name, split in splits.items():
                    uri = artifact_utils.get_split_uri(output_dict[_EXAMPLES], name)
                    _ = split | f"WriteSplit[{name}]" >> WriteSplitInOrder(uri)
        if payload:
            examples_utils.set_payload_format(examples, payload)
        if file_format:
            examples_utils.set_file_format(examples, write_split.to_file_format_str(file_format))
        examples.set_string_custom_property(SPLIT_PROTOCOL, recorded_split_protocol(input_base))


def link_plan(input_base: str, input_config: example_gen_pb2.Input,
              output_config: example_gen_pb2.Output) -> dict[str, list[str]] | None:
    """Each output split's input files, when they can be the split as they are; else None.

    They can when every output split is one input split (no hash-bucket split of
    one input into several) and every file is a gzipped TFRecord whose first
    record is a tf.Example, each a file (not a folder) under a name of its own
    within its split. A split pattern that matches nothing is an error, as in the
    stock executor.
    """
    names = utils.generate_output_split_names(input_config, output_config)
    if len(names) != len(input_config.splits):
        return None
    plan = {}
    for name, split in zip(names, input_config.splits, strict=True):
        pattern = os.path.join(input_base, split.pattern)
        files = sorted(tf.io.gfile.glob(pattern))
        if not files:
            raise ValueError(f"split {split.name!r}: no input files match {pattern}")
        basenames = {os.path.basename(f) for f in files}
        if (len(basenames) != len(files) or any(tf.io.gfile.isdir(f) for f in files)
                or not all(_gzipped_examples(f) for f in files)):
            return None
        plan[name] = files
    return plan


def _gzipped_examples(path: str) -> bool:
    """A gzipped TFRecord file whose first record is a tf.Example, or one with no records."""
    with tf.io.gfile.GFile(path, "rb") as f:
        try:
            with gzip.GzipFile(fileobj=f) as stream:
                if not stream.read(1):  # an empty file, or gzip of nothing
                    return True
        except (OSError, EOFError):  # not gzip, or cut short
            return False
    try:
        records = [r.numpy() for r in read_files([path]).take(1)]
        if records:
            tf.train.Example.FromString(records[0])
    except (tf.errors.DataLossError, DecodeError):
        return False
    return bool(records)  # bytes but no whole record: not TFRecords
