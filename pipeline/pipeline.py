"""The mtrec TFX pipeline, defined once for every orchestrator.

ImportExampleGen -> StatisticsGen -> SchemaGen (inferred, for reference)
                                  -> ImportSchemaGen (curated) -> ExampleValidator
                                  -> AnomalyGate -> Transform -> Trainer
Trainer -> RetrievalEvaluator -> Cond(blessed): Evaluator (TFMA) -> Pusher (if TFMA blessed)

`create_pipeline` does no I/O and reads no environment: it takes one
`PipelineSettings` (settings.py) that the runners (local_runner.py,
kubeflow_v2_runner.py) fill in with their paths.

With `runtime_parameters=True` (Kubeflow V2 / Vertex), four values become
str RuntimeParameters that default to the compile-time values and can be
overridden per run (names in configs.RUNTIME_PARAMETERS). Only whole exec
properties can be RuntimeParameters, so the Trainer's custom_config (epochs is
its "model" -> "epochs" key), TFMA's EvalConfig (the RMSE/AUC bounds) and the
retrieval thresholds are overridden as JSON strings, not as single numbers.

With a `code_version` (the local runner's fingerprint of mtrec's code and
libraries), every component's outputs carry it, which puts it in TFX's cache
key: see key_by_code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import tensorflow_model_analysis as tfma
from google.protobuf.message import Message
from tfx import v1 as tfx
from tfx.dsl.components.base import base_component, base_node, executor_spec
from tfx.dsl.placeholder import placeholder as ph
from tfx.utils import proto_utils

from mtrec.components.anomaly_gate.component import AnomalyGate
from mtrec.components.atomic_pusher.component import AtomicPusher
from mtrec.components.example_gen.component import LinkedImportExampleGen
from mtrec.components.retrieval_evaluator.component import RetrievalEvaluator
from mtrec.components.text_encoder.component import TextEncoder
from mtrec.components.trainer.component import CatalogTrainer
from mtrec.components.trainer.tfjob import TFJobExecutor
from mtrec.components.trainer.vertex import VertexExecutor
from mtrec.contracts import features as F
from mtrec.contracts import pipeline as P
from mtrec.contracts.metrics import (
    NDCG_CHANGE,
    RETRIEVAL_KS,
    TFMA_AUC,
    TFMA_BINARY_ACCURACY,
    TFMA_CALIBRATION,
    TFMA_EXAMPLE_COUNT,
    TFMA_MAE,
    TFMA_RMSE,
)
from mtrec.contracts.signatures import SERVING_DEFAULT, TRANSFORM_FEATURES
from mtrec.pipeline import configs
from mtrec.pipeline.settings import PipelineSettings, Thresholds

RuntimeParameter = tfx.dsl.experimental.RuntimeParameter


def _parameter(name: str, default: str) -> RuntimeParameter:
    """A str RuntimeParameter: KFP v2 compiles it into a root pipeline input."""
    return RuntimeParameter(name=name, ptype=str, default=default)


def _compact_json(message: Message) -> str:
    """One-line JSON of a proto, as a parameter default that is easy to edit."""
    return json.dumps(json.loads(proto_utils.proto_to_json(message)), sort_keys=True)


def _gated(class_name: str, bound: float, max_worsening: float | None, *,
           higher_is_better: bool) -> tfma.MetricConfig:
    """A metric with a value bound and a change bound against the baseline model.

    `max_worsening` is how far it may move the wrong way from the baseline's value;
    None: no change bound (no baseline model).
    """
    if higher_is_better:
        value = tfma.GenericValueThreshold(lower_bound={"value": bound})
        direction = tfma.MetricDirection.HIGHER_IS_BETTER
    else:
        value = tfma.GenericValueThreshold(upper_bound={"value": bound})
        direction = tfma.MetricDirection.LOWER_IS_BETTER
    threshold = tfma.MetricThreshold(value_threshold=value)
    if max_worsening is not None:
        threshold.change_threshold.CopyFrom(tfma.GenericChangeThreshold(
            direction=direction,
            absolute={"value": -max_worsening if higher_is_better else max_worsening}))
    return tfma.MetricConfig(class_name=class_name, threshold=threshold)


def eval_config(t: Thresholds, *, baseline: bool = True) -> tfma.EvalConfig:
    """TFMA config: per-head metrics, value thresholds and change thresholds.

    Without rating labels (`t.rating_labels` False: implicit feedback) RMSE and AUC
    are reported unbounded, and the one bound is that TFMA saw an eval example. Without
    like labels of both classes in the eval split (`t.like_labels` False) the AUC is
    reported unbounded and the RMSE keeps its bounds.
    Without a baseline model (`baseline` False) there are no change thresholds: TFMA
    would skip them, but a spec that shows them misleads its reader.
    """
    if t.rating_labels:
        rmse = _gated(TFMA_RMSE, t.rating_rmse_max,
                      t.rating_rmse_max_increase if baseline else None, higher_is_better=False)
        auc = (_gated(TFMA_AUC, t.relevance_auc_min,
                      t.relevance_auc_max_decrease if baseline else None, higher_is_better=True)
               if t.like_labels else tfma.MetricConfig(class_name=TFMA_AUC))
        count = tfma.MetricConfig(class_name=TFMA_EXAMPLE_COUNT)
    else:
        rmse = tfma.MetricConfig(class_name=TFMA_RMSE)
        auc = tfma.MetricConfig(class_name=TFMA_AUC)
        count = tfma.MetricConfig(class_name=TFMA_EXAMPLE_COUNT, threshold=tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(lower_bound={"value": 1})))
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=SERVING_DEFAULT,
                preprocessing_function_names=[TRANSFORM_FEATURES],
                label_keys={F.OUT_RATING: F.RATING_XF, F.OUT_RELEVANCE: F.LIKED_XF},
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                output_names=[F.OUT_RATING],
                metrics=[rmse, tfma.MetricConfig(class_name=TFMA_MAE), count],
            ),
            tfma.MetricsSpec(
                output_names=[F.OUT_RELEVANCE],
                metrics=[
                    auc,
                    tfma.MetricConfig(class_name=TFMA_CALIBRATION),
                    tfma.MetricConfig(class_name=TFMA_BINARY_ACCURACY),
                ],
            ),
        ],
    )


def _blessed(gate: Any) -> ph.Predicate:
    """The predicate `gate`'s blessing has blessed = 1 (a Cond's condition)."""
    return gate.outputs[P.BLESSING].future()[0].custom_property(P.BLESSED) == 1


def key_by_code(nodes: Iterable[base_node.BaseNode], code_version: str) -> None:
    """Record `code_version` on every output of every component in `nodes`
    (contracts.pipeline.CODE_VERSION), which makes it part of their cache keys.

    TFX's cache key is a node's inputs, exec properties and output artifacts as
    they will be written, custom properties included (tfx/orchestration/portable/
    cache_utils.py), never its code; and it answers with the newest matching
    execution of any earlier run. The runner turned the cache off for the first run
    after a code change (code_version.py), but a later run on inputs an older run
    had seen took that run's outputs: a TextEncoder's vectors from the code before
    the change. With the fingerprint on the outputs, other code's executions never
    match. The nodes without inputs (the ExampleGens, the curated SchemaGen) would
    suffice, since every other node's inputs then change with them; every component
    gets it, so that no node's key depends on that, and each artifact names the code
    that wrote it. Resolvers write no artifacts.
    """
    for node in nodes:
        if isinstance(node, base_component.BaseComponent):
            for channel in node.outputs.values():
                channel.additional_custom_properties[P.CODE_VERSION] = code_version


def create_pipeline(settings: PipelineSettings, *,
                    code_version: str | None = None) -> tfx.dsl.Pipeline:
    """Build the pipeline from one settings object (pipeline/settings.py).

    `settings.text_encoder=None` turns the language-model item representation
    off. `distribution` reaches run_fn as custom_config["distribution"].
    `vertex_training` / `tfjob_training` run the Trainer on several machines
    (components/trainer/vertex.py, tfjob.py); their distribution defaults to
    multi_worker_mirrored. `runtime_parameters`: see the module docstring.
    `baseline_model=False` drops the latest-blessed-model resolver, and with it
    TFMA's change thresholds and the retrieval gate's NDCG_CHANGE bound (for
    backends without resolver support: KFP OSS). With remote training on several
    replicas, `distribution` "mirrored" is refused: each replica would train alone,
    find no cluster, count as the chief (models/trainer.py is_chief) and export.
    `code_version`: see key_by_code; the runner computes it (code_version.py), as this
    function does no I/O. None (the Kubeflow compile, whose tasks KFP caches by their
    container image among the rest) records none.
    """
    s = settings
    runtime_parameters = s.runtime_parameters
    examples_root = s.examples_root
    trainer_config: dict[str, Any] = {P.CONFIG_MODEL: dict(s.model),
                                      P.CONFIG_DISTRIBUTION: s.distribution}
    remote_training = s.vertex_training or s.tfjob_training
    trainer_executor = None  # the CatalogTrainer's own, in this step's pod
    if remote_training is not None:
        if s.distribution == P.MIRRORED and remote_training.replicas > 1:
            raise ValueError(
                f"distribution {P.MIRRORED!r} with {remote_training.replicas} remote training "
                f"replicas: each would train alone and export as the chief; use "
                f"{P.MULTI_WORKER_MIRRORED!r} (the default there) or one replica"
            )
        if s.distribution is None and remote_training.replicas > 1:
            trainer_config[P.CONFIG_DISTRIBUTION] = P.MULTI_WORKER_MIRRORED
        trainer_config.update(remote_training.custom_config())
        trainer_executor = executor_spec.ExecutorClassSpec(
            VertexExecutor if s.vertex_training else TFJobExecutor
        )
    tfma_config = eval_config(s.thresholds, baseline=s.baseline_model)
    # Stock ImportExampleGen that links the examples ingestion wrote (in random order).
    example_gen = LinkedImportExampleGen(
        # TFX types input_base as str; a RuntimeParameter works there too (test_kubeflow_*).
        input_base=(_parameter(configs.PARAM_DATA_ROOT, examples_root)  # type: ignore[arg-type]
                    if runtime_parameters else examples_root),
        input_config=tfx.proto.Input(
            splits=[
                tfx.proto.Input.Split(name=P.TRAIN_SPLIT, pattern=f"{P.TRAIN_SPLIT}/*"),
                tfx.proto.Input.Split(name=P.EVAL_SPLIT, pattern=f"{P.EVAL_SPLIT}/*"),
            ]
        ),
    ).with_id(P.EXAMPLE_GEN)
    # The whole item table (rated or not): the serving index and the text corpus.
    catalog_gen = LinkedImportExampleGen(
        input_base=example_gen.exec_properties[P.INPUT_BASE],
        input_config=tfx.proto.Input(
            splits=[tfx.proto.Input.Split(name=P.CATALOG_SPLIT,
                                          pattern=f"{P.CATALOG_SPLIT}/*")]
        ),
        output_config=tfx.proto.Output(
            split_config=tfx.proto.SplitConfig(
                splits=[tfx.proto.SplitConfig.Split(name=P.CATALOG_SPLIT, hash_buckets=1)]
            )
        ),
    ).with_id(P.CATALOG_GEN)
    encoder = (
        TextEncoder(item_catalog=catalog_gen.outputs[P.EXAMPLES], **s.text_encoder)
        .with_id(P.TEXT_ENCODER)
        if s.text_encoder is not None
        else None
    )
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs[P.EXAMPLES]
    ).with_id(P.STATISTICS_GEN)
    inferred_schema = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs[P.STATISTICS], infer_feature_shape=True
    )
    schema = tfx.components.ImportSchemaGen(schema_file=s.schema_path).with_id(P.SCHEMA_GEN)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs[P.STATISTICS], schema=schema.outputs[P.SCHEMA]
    ).with_id(P.EXAMPLE_VALIDATOR)
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs[P.ANOMALIES])
    transform = tfx.components.Transform(
        examples=example_gen.outputs[P.EXAMPLES],
        schema=schema.outputs[P.SCHEMA],
        preprocessing_fn=configs.PREPROCESSING_FN,
        # StatisticsGen already describes the input, and nothing reads
        # Transform's own pre/post-transform statistics; computing them cost
        # time and memory that grew with the data (benchmarks/results/scale.md).
        disable_statistics=True,
    ).with_id(P.TRANSFORM)
    transform.add_upstream_node(anomaly_gate)
    trainer = CatalogTrainer(
        run_fn=configs.RUN_FN,
        item_catalog=catalog_gen.outputs[P.EXAMPLES],
        item_text_embeddings=encoder.outputs[P.ITEM_TEXT_EMBEDDINGS] if encoder else None,
        examples=transform.outputs[P.TRANSFORMED_EXAMPLES],
        transform_graph=transform.outputs[P.TRANSFORM_GRAPH],
        schema=schema.outputs[P.SCHEMA],
        train_args=tfx.proto.TrainArgs(splits=[P.TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[P.EVAL_SPLIT]),
        custom_config=(_parameter(configs.PARAM_TRAINER_CONFIG,
                                  json.dumps(trainer_config, sort_keys=True))
                       if runtime_parameters else trainer_config),
        custom_executor_spec=trainer_executor,
    ).with_id(P.TRAINER)
    # The baseline of both gates' change thresholds (skipped without one): the
    # newest model TFMA blessed. TFMA runs only on models the retrieval gate
    # passed (below), so that is the newest model that passed both gates, the
    # one the Pusher pushed. The compiled KFP resolver reads the same: it asks
    # for the newest blessed tfx.ModelBlessing, which only TFMA writes.
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.ModelBlessing,
            producer_component_id=P.EVALUATOR,
            output_key=P.BLESSING,
        ),
    ).with_id(P.BASELINE_RESOLVER) if s.baseline_model else None
    baseline_model = baseline.outputs[P.MODEL] if baseline else None
    retrieval_evaluator = RetrievalEvaluator(
        examples=example_gen.outputs[P.EXAMPLES],
        model=trainer.outputs[P.MODEL],
        # Without a baseline the change bound is skipped at run time: leave it out.
        thresholds={name: bound for name, bound in s.thresholds.retrieval.items()
                    if s.baseline_model or name != NDCG_CHANGE},
        ks=RETRIEVAL_KS,
        eval_split=P.EVAL_SPLIT,
        train_split=P.TRAIN_SPLIT,
        baseline_model=baseline_model,
    ).with_id(P.RETRIEVAL_EVALUATOR)
    if runtime_parameters:
        # The component validates and JSON-encodes a dict; its `thresholds` exec
        # property is a str, so the validated default can become a parameter.
        retrieval_evaluator.exec_properties[P.THRESHOLDS] = _parameter(
            configs.PARAM_RETRIEVAL_THRESHOLDS, retrieval_evaluator.exec_properties[P.THRESHOLDS]
        )
    # The gates form a chain: the served-metric gate, then TFMA, whose blessing
    # the Pusher checks (TFX's Pusher contract: it records pushed = 0 for a model
    # TFMA did not bless). Were TFMA to run on a model the retrieval gate
    # refused, its blessing would make that never-pushed model the next run's
    # baseline (measured: a refused u1 model at NDCG@10 0.530 became the
    # baseline while 0.583 was served, so a regression from the served model
    # could pass). One Cond, not two nested: TFX 1.16 evaluates a node's
    # conditions in no fixed order and fails the node when one reads the output
    # of a skipped node.
    with tfx.dsl.Cond(_blessed(retrieval_evaluator)):
        evaluator = tfx.components.Evaluator(
            examples=example_gen.outputs[P.EXAMPLES],
            model=trainer.outputs[P.MODEL],
            baseline_model=baseline_model,
            eval_config=(_parameter(configs.PARAM_EVAL_CONFIG, _compact_json(tfma_config))
                         if runtime_parameters else tfma_config),
        ).with_id(P.EVALUATOR)
        pusher = AtomicPusher(
            model=trainer.outputs[P.MODEL],
            model_blessing=evaluator.outputs[P.BLESSING],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(
                    base_directory=s.serving_model_dir
                )
            ),
        ).with_id(P.PUSHER)
    components = [
        example_gen,
        catalog_gen,
        *([encoder] if encoder else []),
        statistics_gen,
        inferred_schema,
        schema,
        example_validator,
        anomaly_gate,
        transform,
        trainer,
        *([baseline] if baseline else []),
        retrieval_evaluator,
        evaluator,
        pusher,
    ]
    if code_version is not None:
        key_by_code(components, code_version)
    return tfx.dsl.Pipeline(
        pipeline_name=s.pipeline_name,
        pipeline_root=s.pipeline_root,
        components=components,
        enable_cache=s.enable_cache,
        metadata_connection_config=s.metadata_connection_config,
        beam_pipeline_args=list(s.beam_pipeline_args),
    )
