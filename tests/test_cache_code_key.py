"""The code fingerprint is part of TFX's cache key (pipeline.key_by_code).

The local runner turned the cache off only for the first run after a code change;
TFX's cache answers from the newest matching execution of any earlier run, so the
run after that one, on data an older run had read, took the older code's
TextEncoder vectors (and ExampleGen, StatisticsGen outputs). These tests compute
the cache key TFX's launcher computes, on the compiled pipeline, and replay that
sequence of runs on the stand-in pipeline of tests/gated_pipeline.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.compiler import compiler
from tfx.orchestration import metadata
from tfx.orchestration.portable import cache_utils, inputs_utils, outputs_utils
from tfx.proto.orchestration import pipeline_pb2
from tfx.types import standard_artifacts

from mtrec.contracts import pipeline as P
from mtrec.pipeline import code_version, local_runner
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.pipeline.pipeline import create_pipeline, key_by_code
from mtrec.pipeline.settings import PipelineSettings
from mtrec.run_state import latest_run
from tests.gated_pipeline import gated_pipeline

# The nodes that read no other node's output: nothing but their own key keeps an
# older code's execution from answering for them.
ROOTS = (P.EXAMPLE_GEN, P.CATALOG_GEN, P.SCHEMA_GEN)


def _compiled(code: str | None) -> dict[str, pipeline_pb2.PipelineNode]:
    pipeline = create_pipeline(PipelineSettings(
        pipeline_root="/tmp/root", examples_root="/tmp/examples",
        schema_path="/tmp/schema.pbtxt", serving_model_dir="/tmp/serving",
    ), code_version=code)
    ir = compiler.Compiler().compile(pipeline)
    return {n.pipeline_node.node_info.id: n.pipeline_node for n in ir.nodes}


def _cache_key(node: pipeline_pb2.PipelineNode, tmp: Path) -> str:
    """The cache context name TFX's launcher gives `node`'s execution, its inputs one
    stored artifact per key (the same in every call)."""
    config = metadata_store_pb2.ConnectionConfig()
    config.fake_database.SetInParent()
    inputs = {}
    for key in node.inputs.inputs:
        artifact = standard_artifacts.Examples()  # the type does not matter here: the same
        artifact.id = 7
        artifact.uri = "/tmp/input"
        inputs[key] = [artifact]
    outputs = outputs_utils.generate_output_artifacts(
        execution_id=1, outputs=node.outputs.outputs, node_dir=str(tmp / "node"))
    with metadata.Metadata(config) as m:
        context = cache_utils.get_cache_context(
            m, node, pipeline_pb2.PipelineInfo(id="mtrec"), input_artifacts=inputs,
            output_artifacts=outputs,
            parameters=inputs_utils.resolve_parameters_with_schema(node.parameters))
    return context.name


def test_pipelines_that_differ_only_in_code_have_different_cache_keys(tmp_path: Path) -> None:
    code_a, again, code_b = _compiled("code A"), _compiled("code A"), _compiled("code B")
    assert {P.TEXT_ENCODER, *ROOTS} <= set(code_a)
    for node_id in (P.TEXT_ENCODER, *ROOTS, P.STATISTICS_GEN, P.TRANSFORM, P.TRAINER):
        key = _cache_key(code_a[node_id], tmp_path)
        assert key == _cache_key(again[node_id], tmp_path), node_id  # deterministic
        assert key != _cache_key(code_b[node_id], tmp_path), node_id
    # Every node that writes artifacts records the code on each of them; the
    # resolver writes none.
    for node_id, node in code_b.items():
        if node_id == P.BASELINE_RESOLVER:
            continue
        assert node.outputs.outputs, node_id
        for output in node.outputs.outputs.values():
            value = output.artifact_spec.additional_custom_properties[P.CODE_VERSION]
            assert value.field_value.string_value == "code B", node_id


def test_without_a_code_version_the_pipeline_is_as_before() -> None:
    """The Kubeflow compile passes none: its IR, and its cache keys, are unchanged."""
    for node in _compiled(None).values():
        for output in node.outputs.outputs.values():
            assert P.CODE_VERSION not in output.artifact_spec.additional_custom_properties


def _run(home: Path, code: str, data: str) -> dict[str, str]:
    from tfx import v1 as tfx

    pipeline = gated_pipeline(home, input_base=data)
    key_by_code(pipeline.components, code)
    tfx.orchestration.LocalDagRunner().run(pipeline)
    nodes = latest_run(str(home / "metadata.sqlite"))
    return {name: node.state for name, node in nodes.items() if name != P.BASELINE_RESOLVER}


def _examples(home: Path) -> metadata_store_pb2.Artifact:
    return latest_run(str(home / "metadata.sqlite"))[P.EXAMPLE_GEN].outputs[P.EXAMPLES][0]


def _code(artifact: metadata_store_pb2.Artifact) -> str:
    return artifact.custom_properties[P.CODE_VERSION].string_value


def test_a_run_never_takes_an_output_of_other_code_from_the_cache(tmp_path: Path) -> None:
    """The probe's sequence: code A on d0; code B on d1; code B on d0. The third run's
    ExampleGen (the TextEncoder's place in the real pipeline: no input that changes
    with the code) took the first run's output, written by code A."""
    _run(tmp_path, "A", "d0")
    first = _examples(tmp_path)
    _run(tmp_path, "B", "d1")
    assert _run(tmp_path, "B", "d0")[P.EXAMPLE_GEN] == "COMPLETE"  # not A's, CACHED
    third = _examples(tmp_path)
    assert third.id != first.id
    assert (_code(first), _code(third)) == ("A", "B")
    # The same code on the same data is still one execution.
    assert set(_run(tmp_path, "B", "d0").values()) == {"CACHED"}
    assert _examples(tmp_path).id == third.id
    assert _run(tmp_path, "A", "d0")[P.EXAMPLE_GEN] == "CACHED"  # code A again: A's output
    assert _examples(tmp_path).id == first.id


def test_the_local_runner_keys_the_pipeline_by_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = LocalPaths(str(tmp_path))
    pipelines = []

    class _Runner:
        def run(self, pipeline) -> None:
            pipelines.append(pipeline)

    monkeypatch.setattr(local_runner.tfx.orchestration, "LocalDagRunner", _Runner)
    local_runner.run(paths, local_runner.settings(
        paths, examples_root=os.fspath(tmp_path / "examples")))
    (pipeline,) = pipelines
    encoder = next(c for c in pipeline.components if c.id == P.TEXT_ENCODER)
    output = encoder.outputs[P.ITEM_TEXT_EMBEDDINGS]
    assert output.additional_custom_properties == {
        P.CODE_VERSION: code_version.pipeline_fingerprint()}
