"""Re-runs on the pipeline's evaluation topology (README): the cache and the baseline.

Stand-in components in the shape of pipeline/pipeline.py: Trainer ->
RetrievalEvaluator -> Cond(blessed): Evaluator -> Pusher (if blessed), both
evaluators with the newest model TFMA's Evaluator blessed as their baseline
(the same LatestBlessedModelStrategy resolver). The real pipeline takes
minutes per run; the caching and resolution rules are TFX's and depend only on
this shape, so several runs are checked here in seconds
(tests/test_pipeline_e2e.py checks the second run of the real pipeline).
"""

from pathlib import Path
from typing import Any

from tfx import v1 as tfx
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import component_spec
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.standard_artifacts import Model, ModelBlessing, PushedModel

from mtrec.run_state import latest_pushed_run, latest_run
from tests.tiny_components import Train

component = tfx.dsl.components.component
InputArtifact = tfx.dsl.components.InputArtifact
OutputArtifact = tfx.dsl.components.OutputArtifact
Parameter = tfx.dsl.components.Parameter


@component
def Push(
    model: InputArtifact[Model],
    model_blessing: InputArtifact[ModelBlessing],
    pushed_model: OutputArtifact[PushedModel],
) -> None:
    """Pushes only what TFMA blessed, as TFX's Pusher (and the AtomicPusher) do."""
    pushed_model.set_int_custom_property(
        "pushed", model_blessing.get_int_custom_property("blessed"))


@component
def TrainVersion(model: OutputArtifact[Model], version: Parameter[int] = 0) -> None:
    """A "model" per `version`: a new version is a new training (not cached)."""
    (Path(model.uri) / "saved_model.pb").write_text(f"model {version}")


class _EvalSpec(component_spec.ComponentSpec):
    PARAMETERS = {"bless": ExecutionParameter(type=int)}
    INPUTS = {
        "model": ChannelParameter(type=Model),
        "baseline_model": ChannelParameter(type=Model, optional=True),
    }
    OUTPUTS = {"blessing": ChannelParameter(type=ModelBlessing)}


class _EvalExecutor(base_executor.BaseExecutor):
    """Blesses like TFMA's Evaluator: the properties LatestBlessedModelStrategy reads."""

    def Do(self, input_dict: dict, output_dict: dict, exec_properties: dict) -> None:
        model, blessing = input_dict["model"][0], output_dict["blessing"][0]
        blessing.set_int_custom_property("blessed", exec_properties["bless"])
        blessing.set_int_custom_property("current_model_id", model.id)
        blessing.set_string_custom_property("current_model", model.uri)
        baseline = input_dict.get("baseline_model") or []
        blessing.set_int_custom_property("baseline_model_id", baseline[0].id if baseline else 0)


class _Eval(base_component.BaseComponent):
    SPEC_CLASS = _EvalSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(_EvalExecutor)

    def __init__(self, model: Any, baseline_model: Any = None, bless: int = 1) -> None:
        blessing = tfx.dsl.Channel(type=ModelBlessing)
        super().__init__(spec=_EvalSpec(model=model, baseline_model=baseline_model,
                                        blessing=blessing, bless=bless))


def _blessed(gate: Any) -> Any:
    return gate.outputs["blessing"].future()[0].custom_property("blessed") == 1


def _pipeline(tmp: Path, version: int | None = None, retrieval_bless: int = 1) -> tfx.dsl.Pipeline:
    trainer = (Train() if version is None else TrainVersion(version=version)).with_id("Trainer")
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=Model),
        model_blessing=tfx.dsl.Channel(
            type=ModelBlessing, producer_component_id="Evaluator", output_key="blessing"
        ),
    ).with_id("latest_blessed_model_resolver")
    retrieval = _Eval(trainer.outputs["model"], baseline.outputs["model"],
                      bless=retrieval_bless).with_id("RetrievalEvaluator")
    with tfx.dsl.Cond(_blessed(retrieval)):
        evaluator = _Eval(trainer.outputs["model"], baseline.outputs["model"]).with_id("Evaluator")
        pusher = Push(model=trainer.outputs["model"],
                      model_blessing=evaluator.outputs["blessing"]).with_id("AtomicPusher")
    return tfx.dsl.Pipeline(
        pipeline_name="mtrec",
        pipeline_root=str(tmp / "pipeline_root"),
        components=[trainer, baseline, retrieval, evaluator, pusher],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(tmp / "metadata.sqlite")
        ),
    )


def _run(tmp: Path, **pipeline: Any) -> dict[str, str]:
    tfx.orchestration.LocalDagRunner().run(_pipeline(tmp, **pipeline))
    nodes = latest_run(str(tmp / "metadata.sqlite"))
    return {n: run.state for n, run in nodes.items() if n != "latest_blessed_model_resolver"}


def _baseline_id(tmp: Path, gate: str = "Evaluator") -> int:
    blessing = latest_run(str(tmp / "metadata.sqlite"))[gate].outputs["blessing"][0]
    return blessing.custom_properties["baseline_model_id"].int_value


def _model_id(tmp: Path) -> int:
    return latest_run(str(tmp / "metadata.sqlite"))["Trainer"].outputs["model"][0].id


def _served_model_id(tmp: Path) -> int:
    return latest_pushed_run(str(tmp / "metadata.sqlite"))["Trainer"].outputs["model"][0].id


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
    assert _baseline_id(tmp_path) == _model_id(tmp_path)

    third = _run(tmp_path)
    assert set(third.values()) == {"CACHED"}


def test_a_model_the_retrieval_gate_refused_never_becomes_the_baseline(tmp_path: Path) -> None:
    """The baseline is the model that was pushed, not a newer one that only one
    gate passed: a regression from the served model must not pass the change
    thresholds by comparing against a worse, unpushed model."""
    _run(tmp_path, version=1)
    pushed = _model_id(tmp_path)

    refused = _run(tmp_path, version=2, retrieval_bless=0)
    assert refused["RetrievalEvaluator"] == "COMPLETE"
    assert "Evaluator" not in refused and "AtomicPusher" not in refused  # skipped
    assert _baseline_id(tmp_path, "RetrievalEvaluator") == pushed
    assert _served_model_id(tmp_path) == pushed  # what `mtrec add-items` re-indexes

    third = _run(tmp_path, version=3)
    assert set(third.values()) == {"COMPLETE"}
    assert _model_id(tmp_path) not in (pushed, 0)
    assert _baseline_id(tmp_path, "RetrievalEvaluator") == pushed
    assert _baseline_id(tmp_path) == pushed
    assert _served_model_id(tmp_path) == _model_id(tmp_path)
