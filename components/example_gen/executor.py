"""ImportExampleGen's executor without the whole-split shuffle, so the copy streams.

The stock ExampleGen reshuffles every split before writing it
(`tfx/components/example_gen/write_split.py`). Beam's local runner holds a
shuffle in memory, so ImportExampleGen's peak memory grew with the data (11.6 GB
at 3M interactions before this executor, 2.7 GB after;
benchmarks/results/scale.md). The examples mtrec imports are already in a seeded
random order (data/examples.py writes a permutation), so that shuffle bought
nothing. Without it, reading and writing fuse into one streaming stage, and the
same input gives the same files.
Splits, output config and artifact properties are the stock component's, plus
one custom property: the split protocol that mtrec's ingestion recorded beside
the splits (contracts.pipeline.SPLIT_PROTOCOL). The Trainer settles the
protocol's model settings from it (models/config.py PROTOCOL_OVERRIDES), at
run time, because data_root is a run-time parameter of the compiled pipeline.
"""

from __future__ import annotations

import os
from typing import Any

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from mtrec.contracts.pipeline import SPLIT_PROTOCOL
from mtrec.data.examples import recorded_split_protocol

_EXAMPLES = standard_component_specs.EXAMPLES_KEY


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
    """Stock ImportExampleGen reading and splitting; an in-order, streaming write."""

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
            raise ValueError("the streaming ImportExampleGen writes TFRecords only, not Parquet")
        file_format = exec_properties.get(
            standard_component_specs.OUTPUT_FILE_FORMAT_KEY,
            example_gen_pb2.FILE_FORMAT_UNSPECIFIED,
        )
        examples = artifact_utils.get_single_instance(output_dict[_EXAMPLES])
        examples.split_names = artifact_utils.encode_split_names(
            utils.generate_output_split_names(input_config, output_config)
        )
        with self._make_beam_pipeline() as pipeline:
            for name, split in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                uri = artifact_utils.get_split_uri(output_dict[_EXAMPLES], name)
                _ = split | f"WriteSplit[{name}]" >> WriteSplitInOrder(uri)
        if payload:
            examples_utils.set_payload_format(examples, payload)
        if file_format:
            examples_utils.set_file_format(examples, write_split.to_file_format_str(file_format))
        examples.set_string_custom_property(
            SPLIT_PROTOCOL,
            recorded_split_protocol(exec_properties[standard_component_specs.INPUT_BASE_KEY]),
        )
