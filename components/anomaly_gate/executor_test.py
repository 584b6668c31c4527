"""AnomalyGate fails on anomalies, names them, and passes clean data."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from mtrec.components.anomaly_gate.component import AnomalyGate
from mtrec.components.anomaly_gate.executor import (
    ANOMALIES_FILE,
    Executor,
    SchemaAnomaliesError,
)


def _anomalies(tmp_path, per_split: dict[str, anomalies_pb2.Anomalies]):
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(tmp_path / "anomalies")
    artifact.split_names = artifact_utils.encode_split_names(list(per_split))
    for split, proto in per_split.items():
        folder = os.path.join(artifact.uri, f"Split-{split}")
        os.makedirs(folder)
        with open(os.path.join(folder, ANOMALIES_FILE), "wb") as f:
            f.write(proto.SerializeToString())
    return artifact


def _run(tmp_path, per_split, ignored=""):
    result = standard_artifacts.ExampleAnomalies()
    result.uri = str(tmp_path / "result")
    Executor().Do(
        {"anomalies": [_anomalies(tmp_path, per_split)]},
        {"result": [result]},
        {"ignored_anomaly_types": ignored},
    )
    return result


def _age_out_of_range() -> anomalies_pb2.Anomalies:
    proto = anomalies_pb2.Anomalies()
    info = proto.anomaly_info["age"]
    info.short_description = "Out-of-range values"
    info.description = "Unexpectedly large value: 500."
    info.reason.add(type=anomalies_pb2.AnomalyInfo.INT_TYPE_BIG_INT)
    return proto


def test_clean_data_passes_and_is_recorded(tmp_path):
    result = _run(tmp_path, {"train": anomalies_pb2.Anomalies(), "eval": anomalies_pb2.Anomalies()})
    assert result.get_int_custom_property("anomaly_count") == 0


def test_anomaly_stops_with_the_feature_named(tmp_path):
    with pytest.raises(SchemaAnomaliesError, match=r"\[eval\] feature 'age'.*Unexpectedly large"):
        _run(tmp_path, {"train": anomalies_pb2.Anomalies(), "eval": _age_out_of_range()})


def test_ignored_anomaly_types_only_warn(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        result = _run(tmp_path, {"train": _age_out_of_range()}, ignored="INT_TYPE_BIG_INT")
    assert result.get_int_custom_property("anomaly_count") == 0
    (warning,) = [r.getMessage() for r in caplog.records if "AnomalyGate" in r.getMessage()]
    assert "[train] feature 'age'" in warning and "INT_TYPE_BIG_INT" in warning


def _mixed_reasons() -> anomalies_pb2.Anomalies:
    """'age' is out of range (ignored type) and mostly missing (not ignored)."""
    proto = _age_out_of_range()
    proto.anomaly_info["age"].reason.add(
        type=anomalies_pb2.AnomalyInfo.FEATURE_TYPE_LOW_FRACTION_PRESENT)
    return proto


def _no_reason() -> anomalies_pb2.Anomalies:
    """An anomaly whose reason list is empty: nothing says it is of an ignored type."""
    proto = _age_out_of_range()
    del proto.anomaly_info["age"].reason[:]
    return proto


def _dataset_anomaly() -> anomalies_pb2.Anomalies:
    """Too few examples: a dataset-level anomaly, whatever its type, always stops."""
    proto = anomalies_pb2.Anomalies()
    info = proto.dataset_anomaly_info
    info.short_description = "Low num examples in dataset."
    info.description = "The dataset has 3 examples, fewer than expected."
    info.reason.add(type=anomalies_pb2.AnomalyInfo.DATASET_LOW_NUM_EXAMPLES)
    return proto


@pytest.mark.parametrize(
    "proto,ignored,named",
    [
        # One ignored reason does not excuse another (`kinds <= ignored`, not `&`).
        (_mixed_reasons, "INT_TYPE_BIG_INT",
         r"\[train\] feature 'age'.*FEATURE_TYPE_LOW_FRACTION_PRESENT"),
        # No reason at all is not "every reason ignored" (the `kinds and` guard).
        (_no_reason, "INT_TYPE_BIG_INT,FEATURE_TYPE_LOW_FRACTION_PRESENT",
         r"\[train\] feature 'age'.*types=\[\]"),
        # Dataset-level anomalies are never ignored.
        (_dataset_anomaly, "DATASET_LOW_NUM_EXAMPLES", r"\[train\] dataset: Low num examples"),
    ],
    ids=["one-reason-not-ignored", "no-reason", "dataset-level"],
)
def test_anomalies_not_wholly_ignored_still_stop_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
    proto: Callable[[], anomalies_pb2.Anomalies], ignored: str, named: str,
) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(SchemaAnomaliesError) as info:
        _run(tmp_path, {"train": proto(), "eval": anomalies_pb2.Anomalies()}, ignored=ignored)
    assert "found 1 schema anomalies" in str(info.value)
    assert re.search(named, str(info.value)), str(info.value)
    assert not [r for r in caplog.records if "ignored (ignored_anomaly_types)" in r.getMessage()]


def test_component_wires_its_channels():
    from tfx.types import channel_utils

    anomalies = channel_utils.as_channel([standard_artifacts.ExampleAnomalies()])
    gate = AnomalyGate(anomalies=anomalies)
    assert gate.outputs["result"].type == standard_artifacts.ExampleAnomalies
