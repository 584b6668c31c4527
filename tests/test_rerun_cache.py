"""What a re-run takes from the TFX cache, on the pipeline's evaluation topology (README).

Stand-in components in the shape of pipeline/pipeline.py: Trainer -> Evaluator
and RetrievalEvaluator (both with the latest blessed model as their baseline,
through the same LatestBlessedModelStrategy resolver) -> Cond(both blessed)
-> Pusher. The real pipeline takes minutes per run; the caching rules
are TFX's and depend only on this shape, so the second and third runs are
checked here in seconds (tests/test_pipeline_e2e.py checks the second run of
the real pipeline).
"""

from pathlib import Path
from typing import Any

from tfx import v1 as tfx
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.placeholder import placeholder as ph
from tfx.types import component_spec
from tfx.types.component_spec import ChannelParameter
from tfx.types.standard_artifacts import Model, ModelBlessing, PushedModel

from mtrec.run_state import latest_run
from tests.tiny_components import Train

component = tfx.dsl.components.component
InputArtifact = tfx.dsl.components.InputArtifact
OutputArtifact = tfx.dsl.components.OutputArtifact


@component
def Push(model: InputArtifact[Model], pushed_model: OutputArtifact[PushedModel]) -> None:  # noqa: N802
    pushed_model.set_int_custom_property("pushed", 1)


class _EvalSpec(component_spec.ComponentSpec):
    PARAMETERS: dict[str, Any] = {}
    INPUTS = {
        "model": ChannelParameter(type=Model),
        "baseline_model": ChannelParameter(type=Model, optional=True),
    }
    OUTPUTS = {"blessing": ChannelParameter(type=ModelBlessing)}


class _EvalExecutor(base_executor.BaseExecutor):
    """Blesses like TFMA's Evaluator: the properties LatestBlessedModelStrategy reads."""

    def Do(self, input_dict: dict, output_dict: dict, exec_properties: dict) -> None:  # noqa: N802
        model, blessing = input_dict["model"][0], output_dict["blessing"][0]
        blessing.set_int_custom_property("blessed", 1)
        blessing.set_int_custom_property("current_model_id", model.id)
        blessing.set_string_custom_property("current_model", model.uri)
        baseline = input_dict.get("baseline_model") or []
        blessing.set_int_custom_property("baseline_model_id", baseline[0].id if baseline else 0)


class _Eval(base_component.BaseComponent):
    SPEC_CLASS = _EvalSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(_EvalExecutor)

    def __init__(self, model: Any, baseline_model: Any = None) -> None:
        blessing = tfx.dsl.Channel(type=ModelBlessing)
        super().__init__(
            spec=_EvalSpec(model=model, baseline_model=baseline_model, blessing=blessing)
        )


def _pipeline(tmp: Path) -> tfx.dsl.Pipeline:
    trainer = Train().with_id("Trainer")
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=Model),
        model_blessing=tfx.dsl.Channel(
            type=ModelBlessing, producer_component_id="Evaluator", output_key="blessing"
        ),
    ).with_id("latest_blessed_model_resolver")
    evaluator = _Eval(trainer.outputs["model"], baseline.outputs["model"]).with_id("Evaluator")
    retrieval = _Eval(trainer.outputs["model"], baseline.outputs["model"]).with_id(
        "RetrievalEvaluator"
    )
    blessed = ph.logical_and(
        evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1,
        retrieval.outputs["blessing"].future()[0].custom_property("blessed") == 1,
    )
    with tfx.dsl.Cond(blessed):
        pusher = Push(model=trainer.outputs["model"]).with_id("AtomicPusher")
    return tfx.dsl.Pipeline(
        pipeline_name="mtrec",
        pipeline_root=str(tmp / "pipeline_root"),
        components=[trainer, baseline, evaluator, retrieval, pusher],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(tmp / "metadata.sqlite")
        ),
    )


def _run(tmp: Path) -> dict[str, str]:
    tfx.orchestration.LocalDagRunner().run(_pipeline(tmp))
    nodes = latest_run(str(tmp / "metadata.sqlite"))
    return {n: run.state for n, run in nodes.items() if n != "latest_blessed_model_resolver"}


def _baseline_id(tmp: Path) -> int:
    blessing = latest_run(str(tmp / "metadata.sqlite"))["Evaluator"].outputs["blessing"][0]
    return blessing.custom_properties["baseline_model_id"].int_value


def test_second_run_re_evaluates_against_the_first_model_third_run_is_all_cached(
    tmp_path: Path,
) -> None:
    first = _run(tmp_path)
    assert set(first.values()) == {"COMPLETE"}
    assert _baseline_id(tmp_path) == 0  # no blessed model yet: no baseline

    second = _run(tmp_path)
    # The resolver now finds the first run's blessed model: both evaluators'
    # inputs changed (a baseline, which is the same model), so they run again,
    # and the Pusher, whose inputs include their new blessings, runs again too.
    assert second == {"Trainer": "CACHED", "RetrievalEvaluator": "COMPLETE",
                      "Evaluator": "COMPLETE", "AtomicPusher": "COMPLETE"}
    model_id = latest_run(str(tmp_path / "metadata.sqlite"))["Trainer"].outputs["model"][0].id
    assert _baseline_id(tmp_path) == model_id

    third = _run(tmp_path)
    assert set(third.values()) == {"CACHED"}
