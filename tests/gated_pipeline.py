"""A pipeline in the shape of pipeline/pipeline.py's evaluation topology, in seconds.

Stand-in components: ExampleGen (one input_base) and Trainer -> RetrievalEvaluator
-> Cond(blessed): Evaluator -> Pusher (if blessed), both evaluators with the newest
model TFMA's Evaluator blessed as their baseline (the same
LatestBlessedModelStrategy resolver). The real pipeline takes minutes per run;
caching, resolution and pruning follow TFX's rules and this shape alone, so the
re-run tests (test_rerun_cache.py) and `mtrec prune`'s (test_prune.py) run several
pipeline runs each on it. No `from __future__ import annotations`: TFX parses
these annotations at decoration time.
"""

from pathlib import Path
from typing import Any

from tfx import v1 as tfx
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import component_spec
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.standard_artifacts import Examples, Model, ModelBlessing, PushedModel

from mtrec.contracts import pipeline as P
from mtrec.run_state import latest_run
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
    base_directory: Parameter[str] = "",
) -> None:
    """Pushes only what TFMA blessed, as TFX's Pusher (and the AtomicPusher) do; with a
    `base_directory`, as the next numbered version there, recorded where TFX records it."""
    blessed = model_blessing.get_int_custom_property(P.BLESSED)
    pushed_model.set_int_custom_property(P.PUSHED, blessed)
    if blessed and base_directory:
        base = Path(base_directory)
        version = max([int(v.name) for v in base.glob("[0-9]*")] + [0]) + 1
        (base / str(version)).mkdir(parents=True)
        (base / str(version) / "saved_model.pb").write_text(model.uri)
        pushed_model.set_string_custom_property(P.PUSHED_DESTINATION, str(base / str(version)))


@component
def TrainVersion(model: OutputArtifact[Model], version: Parameter[int] = 0) -> None:
    """A "model" per `version`: a new version is a new training (not cached)."""
    (Path(model.uri) / "saved_model.pb").write_text(f"model {version}")


@component
def ReadExamples(examples: OutputArtifact[Examples], input_base: Parameter[str]) -> None:
    """Records its `input_base` as ImportExampleGen does (an exec property)."""
    (Path(examples.uri) / "data").write_text(input_base)


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


def gated_pipeline(home: Path, version: int | None = None, retrieval_bless: int = 1,
                   input_base: str = "", serving_dir: str = "") -> tfx.dsl.Pipeline:
    """The topology above in `home` (pipeline_root/, metadata.sqlite). `version` None
    trains the one cached model; `input_base` adds the ExampleGen stand-in."""
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
                      model_blessing=evaluator.outputs["blessing"],
                      base_directory=serving_dir).with_id("AtomicPusher")
    examples = [ReadExamples(input_base=input_base).with_id(P.EXAMPLE_GEN)] if input_base else []
    return tfx.dsl.Pipeline(
        pipeline_name="mtrec",
        pipeline_root=str(home / "pipeline_root"),
        components=[*examples, trainer, baseline, retrieval, evaluator, pusher],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(home / "metadata.sqlite")
        ),
    )


def run_gated(home: Path, **pipeline: Any) -> dict[str, str]:
    """Run it once; each node's state in that run (the resolver left out)."""
    tfx.orchestration.LocalDagRunner().run(gated_pipeline(home, **pipeline))
    nodes = latest_run(str(home / "metadata.sqlite"))
    return {n: run.state for n, run in nodes.items() if n != "latest_blessed_model_resolver"}
