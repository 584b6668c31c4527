"""AnomalyGate: stops the pipeline when ExampleValidator found anomalies.

TFX's ExampleValidator only records anomalies; nothing downstream reads them.
This component fails its execution (and so the run) when the anomalies
artifact is not empty, before Transform and Trainer ever start.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from mtrec.components.anomaly_gate.executor import IGNORED_ANOMALY_TYPES, Executor
from mtrec.contracts.pipeline import ANOMALIES, GATE_RESULT


class AnomalyGateSpec(types.ComponentSpec):
    PARAMETERS = {
        IGNORED_ANOMALY_TYPES: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {ANOMALIES: ChannelParameter(type=standard_artifacts.ExampleAnomalies)}
    OUTPUTS = {GATE_RESULT: ChannelParameter(type=standard_artifacts.ExampleAnomalies)}


class AnomalyGate(base_component.BaseComponent):
    SPEC_CLASS = AnomalyGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, anomalies: types.BaseChannel, ignored_anomaly_types: str = "") -> None:
        """`ignored_anomaly_types`: comma-separated anomaly type names that only warn."""
        super().__init__(
            spec=AnomalyGateSpec(
                anomalies=anomalies,
                ignored_anomaly_types=ignored_anomaly_types,
                result=types.Channel(type=standard_artifacts.ExampleAnomalies),
            )
        )
