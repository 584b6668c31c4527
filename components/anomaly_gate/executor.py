"""Reads ExampleValidator's anomalies per split and fails on any that matter."""

from __future__ import annotations

import logging
import os
from typing import Any

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from mtrec.contracts.pipeline import ANOMALIES, GATE_RESULT

log = logging.getLogger(__name__)
ANOMALIES_FILE = "SchemaDiff.pb"
# Exec property: comma-separated anomaly types (e.g. "FEATURE_TYPE_LOW_FRACTION_PRESENT")
# that only warn.
IGNORED_ANOMALY_TYPES = "ignored_anomaly_types"


class SchemaAnomaliesError(RuntimeError):
    """The data does not match the curated schema; training would be unsafe."""


def read_anomalies(artifact: types.Artifact) -> dict[str, anomalies_pb2.Anomalies]:
    """Anomalies proto per split of an ExampleAnomalies artifact."""
    result = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), ANOMALIES_FILE)
        result[split] = anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))
    return result


def describe(anomalies: dict[str, anomalies_pb2.Anomalies], ignored: set[str]
             ) -> tuple[list[str], list[str]]:
    """One line per (split, feature) anomaly: (those that stop the run, the ignored ones)."""
    lines: list[str] = []
    warnings: list[str] = []
    for split, proto in sorted(anomalies.items()):
        for feature, info in sorted(proto.anomaly_info.items()):
            kinds = {anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason}
            line = (f"[{split}] feature '{feature}': {info.short_description} "
                    f"({info.description}) types={sorted(kinds)}")
            (warnings if kinds and kinds <= ignored else lines).append(line)
        if proto.HasField("dataset_anomaly_info"):
            info = proto.dataset_anomaly_info
            lines.append(f"[{split}] dataset: {info.short_description} ({info.description})")
    return lines, warnings


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        source = artifact_utils.get_single_instance(input_dict[ANOMALIES])
        ignored = {
            t.strip() for t in (exec_properties.get(IGNORED_ANOMALY_TYPES) or "").split(",")
            if t.strip()
        }
        problems, warnings = describe(read_anomalies(source), ignored)
        for line in warnings:
            log.warning("AnomalyGate: ignored (ignored_anomaly_types): %s", line)
        result = artifact_utils.get_single_instance(output_dict[GATE_RESULT])
        result.split_names = source.split_names
        io_utils.copy_dir(source.uri, result.uri)
        result.set_int_custom_property("anomaly_count", len(problems))
        if problems:
            raise SchemaAnomaliesError(
                f"ExampleValidator found {len(problems)} schema anomalies; stopping before "
                "Transform/Trainer:\n  " + "\n  ".join(problems)
            )
        log.info("AnomalyGate: no anomalies in splits %s", source.split_names)
