"""The mtrec TFX pipeline, defined once for every orchestrator.

ImportExampleGen -> StatisticsGen -> SchemaGen (inferred, for reference)
                                  -> ImportSchemaGen (curated) -> ExampleValidator
                                  -> AnomalyGate -> Transform -> Trainer
Trainer -> Evaluator (TFMA) + RetrievalEvaluator -> Cond(both blessed) -> Pusher

`create_pipeline` does no I/O and reads no environment: the runners
(local_runner.py, kubeflow_v2_runner.py) own every path and setting.
"""

from __future__ import annotations

from typing import Any

import tensorflow_model_analysis as tfma
from mtrec.components.anomaly_gate.component import AnomalyGate
from mtrec.components.atomic_pusher.component import AtomicPusher
from mtrec.components.retrieval_evaluator.component import RetrievalEvaluator
from mtrec.models import features as F
from mtrec.pipeline import configs
from tfx import v1 as tfx
from tfx.dsl.placeholder import placeholder as ph


def eval_config(
    rating_rmse_max: float, rating_rmse_max_increase: float, relevance_auc_min: float
) -> tfma.EvalConfig:
    """TFMA config: per-head metrics, value thresholds and change thresholds."""
    lower = tfma.MetricDirection.LOWER_IS_BETTER
    higher = tfma.MetricDirection.HIGHER_IS_BETTER
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                preprocessing_function_names=["transform_features"],
                label_keys={F.OUT_RATING: F.RATING_XF, F.OUT_RELEVANCE: F.LIKED_XF},
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                output_names=[F.OUT_RATING],
                metrics=[
                    tfma.MetricConfig(
                        class_name="RootMeanSquaredError",
                        threshold=tfma.MetricThreshold(
                            value_threshold=tfma.GenericValueThreshold(
                                upper_bound={"value": rating_rmse_max}
                            ),
                            change_threshold=tfma.GenericChangeThreshold(
                                direction=lower, absolute={"value": rating_rmse_max_increase}
                            ),
                        ),
                    ),
                    tfma.MetricConfig(class_name="MeanAbsoluteError"),
                    tfma.MetricConfig(class_name="ExampleCount"),
                ],
            ),
            tfma.MetricsSpec(
                output_names=[F.OUT_RELEVANCE],
                metrics=[
                    tfma.MetricConfig(
                        class_name="AUC",
                        threshold=tfma.MetricThreshold(
                            value_threshold=tfma.GenericValueThreshold(
                                lower_bound={"value": relevance_auc_min}
                            ),
                            change_threshold=tfma.GenericChangeThreshold(
                                direction=higher, absolute={"value": -0.05}
                            ),
                        ),
                    ),
                    tfma.MetricConfig(class_name="Calibration"),
                    tfma.MetricConfig(class_name="BinaryAccuracy"),
                ],
            ),
        ],
    )


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    examples_root: str,
    schema_path: str,
    serving_model_dir: str,
    model_config: dict[str, Any] | None = None,
    rating_rmse_max: float = configs.RATING_RMSE_MAX,
    rating_rmse_max_increase: float = configs.RATING_RMSE_MAX_INCREASE,
    relevance_auc_min: float = configs.RELEVANCE_AUC_MIN,
    retrieval_thresholds: dict[str, float] | None = None,
    beam_pipeline_args: list[str] | None = None,
    metadata_connection_config=None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """Build the pipeline. `examples_root` holds train/ and eval/ TFRecord folders."""
    example_gen = tfx.components.ImportExampleGen(
        input_base=examples_root,
        input_config=tfx.proto.Input(
            splits=[
                tfx.proto.Input.Split(name=configs.TRAIN_SPLIT, pattern=f"{configs.TRAIN_SPLIT}/*"),
                tfx.proto.Input.Split(name=configs.EVAL_SPLIT, pattern=f"{configs.EVAL_SPLIT}/*"),
            ]
        ),
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    inferred_schema = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    )
    schema = tfx.components.ImportSchemaGen(schema_file=schema_path).with_id("CuratedSchemaGen")
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema.outputs["schema"]
    )
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"])
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema.outputs["schema"],
        preprocessing_fn=configs.PREPROCESSING_FN,
    )
    transform.add_upstream_node(anomaly_gate)
    trainer = tfx.components.Trainer(
        run_fn=configs.RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[configs.TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[configs.EVAL_SPLIT]),
        custom_config={"model": dict(model_config or configs.MODEL_CONFIG)},
    )
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.ModelBlessing,
            producer_component_id="Evaluator",
            output_key="blessing",
        ),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config(rating_rmse_max, rating_rmse_max_increase, relevance_auc_min),
    )
    retrieval_evaluator = RetrievalEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        thresholds=dict(retrieval_thresholds or configs.RETRIEVAL_THRESHOLDS),
        ks=configs.RETRIEVAL_KS,
        eval_split=configs.EVAL_SPLIT,
        train_split=configs.TRAIN_SPLIT,
    )
    blessed = ph.logical_and(
        evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1,
        retrieval_evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1,
    )
    with tfx.dsl.Cond(blessed):
        pusher = AtomicPusher(
            model=trainer.outputs["model"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)
            ),
        )
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[
            example_gen,
            statistics_gen,
            inferred_schema,
            schema,
            example_validator,
            anomaly_gate,
            transform,
            trainer,
            baseline,
            evaluator,
            retrieval_evaluator,
            pusher,
        ],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
