"""Compiles the mtrec pipeline for Kubeflow Pipelines v2 and Vertex AI Pipelines.

The same `create_pipeline` as local_runner.py, compiled by TFX's
KubeflowV2DagRunner into a pipeline spec (schema 2.1.0). Everything that
differs from a local run comes from arguments: image, cloud paths, Beam args
(everything after `--`), model and blessing settings.

    python -m mtrec.pipeline.kubeflow_v2_runner \\
        --image REGION-docker.pkg.dev/PROJECT/REPO/mtrec:VERSION \\
        --pipeline_root gs://BUCKET/pipeline_root \\
        --examples_root gs://BUCKET/examples \\
        --serving_model_dir gs://BUCKET/serving_model/mtrec \\
        --output mtrec_pipeline.yaml \\
        -- --runner=DataflowRunner --project=PROJECT --region=REGION \\
           --temp_location=gs://BUCKET/tmp --sdk_container_image=IMAGE

Runtime parameters (root pipeline inputs, overridable per run; all str because
only whole exec properties can be RuntimeParameters in TFX 1.16):
- data_root: input_base of ImportExampleGen and CatalogExampleGen (the v2
  ExampleGen driver reads it at run time).
- trainer_custom_config: the Trainer's whole custom_config as JSON; training
  epochs are its "model" -> "epochs" key. An int `epochs` parameter is not
  possible: custom_config is one JSON exec property and the v2 compiler does
  not substitute RuntimeParameters nested inside it.
- eval_config: the Evaluator's tfma.EvalConfig as JSON (RMSE/AUC value and
  change thresholds live inside this proto, so they cannot be separate floats).
- retrieval_thresholds: RetrievalEvaluator's JSON {"hit_rate@K": bound}.
Compile-time only: the schema path (ImportSchemaGen), serving_model_dir (the
Pusher's destination), Beam args (container arguments), the image.
`--no_runtime_parameters` bakes everything in.
`--vertex_training_region R` makes the Trainer a Vertex AI custom job, and
`--tfjob_namespace NS` a Kubeflow TFJob (chief + workers running the same
image), for training on several machines.

Backends: Vertex AI Pipelines runs the spec as compiled. The Kubeflow
Pipelines (OSS) v2 backend does not implement the resolver tasks TFX compiles
the latest-blessed-model resolver into: compile with `--no_baseline` for it.

Output: `.yaml` writes the PipelineSpec that `kfp.Client` and Vertex accept
(root parameters carry their defaults, `defaultPipelineRoot` is set, and
`--serving_pvc` adds a Kubernetes platform spec mounting a PVC into the
Pusher); `.json` writes TFX's PipelineJob (spec + runtimeConfig) for Vertex.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from tfx import v1 as tfx
from tfx.orchestration import data_types

from mtrec.components.trainer.tfjob import TFJobTraining
from mtrec.components.trainer.vertex import VertexTraining
from mtrec.contracts.pipeline import PUSHER
from mtrec.pipeline import configs
from mtrec.pipeline.pipeline import create_pipeline

# Where the Dockerfile copies the curated schema (pipeline/schema/) in the image.
IMAGE_SCHEMA_PATH = "/opt/mtrec/schema/schema.pbtxt"
# In-container DirectRunner, one worker per CPU of the pod (0 = auto).
DEFAULT_BEAM_ARGS = (*configs.LOCAL_BEAM_ARGS, "--direct_num_workers=0")


@dataclasses.dataclass(frozen=True)
class KubeflowSettings:
    """Everything a Kubeflow/Vertex deployment chooses; the rest is configs.py."""

    image: str
    pipeline_root: str
    examples_root: str
    serving_model_dir: str
    schema_path: str = IMAGE_SCHEMA_PATH
    pipeline_name: str = configs.PIPELINE_NAME
    beam_pipeline_args: tuple[str, ...] = DEFAULT_BEAM_ARGS
    model_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int | None = None
    distribution: str | None = None
    # Train on several machines as a Vertex AI custom job (Vertex backend only).
    vertex_training: VertexTraining | None = None
    # Train on several machines as a Kubeflow TFJob (Kubeflow Training Operator).
    tfjob_training: TFJobTraining | None = None
    # TextEncoder settings (components/text_encoder/config.py); None: no text encoder.
    text_encoder: Mapping[str, Any] | None = dataclasses.field(
        default_factory=lambda: dict(configs.TEXT_ENCODER_CONFIG)
    )
    rating_rmse_max: float = configs.RATING_RMSE_MAX
    rating_rmse_max_increase: float = configs.RATING_RMSE_MAX_INCREASE
    relevance_auc_min: float = configs.RELEVANCE_AUC_MIN
    retrieval_thresholds: Mapping[str, float] | None = None
    runtime_parameters: bool = True
    baseline_model: bool = True  # False for KFP OSS: its backend has no resolver support
    enable_cache: bool = True
    serving_pvc: str | None = None  # PVC mounted into the Pusher (Kubeflow only)
    serving_pvc_mount: str = "/models"


def build_pipeline(settings: KubeflowSettings) -> tfx.dsl.Pipeline:
    """The shared pipeline definition with this deployment's values."""
    model_config = dict(configs.MODEL_CONFIG) | dict(settings.model_config)
    if settings.epochs is not None:
        model_config["epochs"] = settings.epochs
    return create_pipeline(
        pipeline_name=settings.pipeline_name,
        pipeline_root=settings.pipeline_root,
        examples_root=settings.examples_root,
        schema_path=settings.schema_path,
        serving_model_dir=settings.serving_model_dir,
        model_config=model_config,
        rating_rmse_max=settings.rating_rmse_max,
        rating_rmse_max_increase=settings.rating_rmse_max_increase,
        relevance_auc_min=settings.relevance_auc_min,
        retrieval_thresholds=(
            dict(settings.retrieval_thresholds) if settings.retrieval_thresholds else None
        ),
        distribution=settings.distribution,
        vertex_training=settings.vertex_training,
        tfjob_training=settings.tfjob_training,
        text_encoder=None if settings.text_encoder is None else dict(settings.text_encoder),
        runtime_parameters=settings.runtime_parameters,
        baseline_model=settings.baseline_model,
        beam_pipeline_args=list(settings.beam_pipeline_args),
        enable_cache=settings.enable_cache,
    )


def runtime_parameter_defaults(pipeline: tfx.dsl.Pipeline) -> dict[str, Any]:
    """{name: default} of every RuntimeParameter among the components' exec properties."""
    return {
        value.name: value.default
        for component in pipeline.components
        for value in component.exec_properties.values()
        if isinstance(value, data_types.RuntimeParameter)
    }


def compile_pipeline(settings: KubeflowSettings, output_path: str) -> dict[str, Any]:
    """Compile to `output_path` (.yaml: PipelineSpec, .json: PipelineJob); return the job."""
    yaml_output = output_path.endswith((".yaml", ".yml"))
    mount = settings.serving_pvc_mount.rstrip("/") + "/"
    if settings.serving_pvc and not yaml_output:
        raise ValueError("--serving_pvc needs a .yaml output (a KFP platform spec)")
    if settings.serving_pvc and not settings.serving_model_dir.startswith(mount):
        raise ValueError(f"serving_model_dir must lie under the PVC mount {mount}")
    pipeline = build_pipeline(settings)
    defaults = runtime_parameter_defaults(pipeline)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=settings.image, use_pipeline_spec_2_1=True
        )
    )
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    spec = job["pipelineSpec"]
    # TFX puts defaults only in runtimeConfig; kfp.Client needs them in the spec.
    root_params = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for name, default in defaults.items():
        root_params[name].update(defaultValue=default, isOptional=True)
    spec["defaultPipelineRoot"] = settings.pipeline_root
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    with open(output_path, "w", encoding="utf-8") as f:
        if yaml_output:
            documents = [spec]
            if settings.serving_pvc:
                pvc = pvc_platform_spec(settings.serving_pvc, settings.serving_pvc_mount)
                documents.append(pvc)
            yaml.safe_dump_all(documents, f, sort_keys=True)
        else:
            json.dump(job, f, sort_keys=True, indent=2)
    return job


def pvc_platform_spec(pvc_name: str, mount_path: str) -> dict[str, Any]:
    """KFP Kubernetes platform spec (as kfp-kubernetes `mount_pvc` writes it) for the Pusher."""
    mount = {"constant": pvc_name, "mountPath": mount_path}
    executors = {f"{PUSHER}_executor": {"pvcMount": [mount]}}
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}


def _json_dict(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def parse_args(argv: Sequence[str]) -> tuple[KubeflowSettings, str]:
    """Flags before `--` are ours; everything after `--` is passed to Beam unchanged."""
    argv = list(argv)
    beam_args = argv[argv.index("--") + 1 :] if "--" in argv else list(DEFAULT_BEAM_ARGS)
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(
        description="Compile the mtrec pipeline for Kubeflow Pipelines v2 / Vertex AI.",
        epilog="Beam args follow `--`, e.g. -- --runner=DataflowRunner --project=P ...",
    )
    p.add_argument("--image", required=True, help="container image with mtrec (Dockerfile)")
    p.add_argument("--pipeline_root", required=True, help="artifact root, e.g. gs://B/root")
    p.add_argument(
        "--examples_root",
        required=True,
        help="default of the data_root parameter: holds train/ and eval/",
    )
    p.add_argument(
        "--serving_model_dir",
        required=True,
        help="Pusher base directory read by TF Serving (gs://... or a PVC path)",
    )
    p.add_argument("--schema_path", default=IMAGE_SCHEMA_PATH)
    p.add_argument("--pipeline_name", default=configs.PIPELINE_NAME)
    p.add_argument(
        "--output",
        default=f"{configs.PIPELINE_NAME}_pipeline.yaml",
        help=".yaml (kfp.Client, Vertex) or .json (Vertex PipelineJob)",
    )
    p.add_argument(
        "--model_config",
        type=_json_dict,
        default={},
        help="JSON model hyper-parameters, e.g. '{\"embedding_dim\": 32}'",
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--distribution", choices=configs.DISTRIBUTIONS, default=None)
    p.add_argument(
        "--vertex_training_region",
        default=None,
        help="run the Trainer as a Vertex AI custom job in this region (chief + workers "
        "in --image; distribution defaults to multi_worker_mirrored)",
    )
    p.add_argument("--vertex_training_replicas", type=int, default=2, help="chief + workers")
    p.add_argument("--vertex_machine_type", default="n1-standard-8")
    p.add_argument(
        "--tfjob_namespace",
        default=None,
        help="run the Trainer as a Kubeflow TFJob in this namespace (chief + workers in "
        "--image; distribution defaults to multi_worker_mirrored)",
    )
    p.add_argument("--tfjob_replicas", type=int, default=2, help="chief + workers")
    p.add_argument("--tfjob_cpu", default="4")
    p.add_argument("--tfjob_memory", default="16Gi")
    p.add_argument(
        "--text_encoder",
        type=_json_dict,
        default=dict(configs.TEXT_ENCODER_CONFIG),
        help="JSON TextEncoder settings (components/text_encoder/config.py)",
    )
    p.add_argument("--no_text_encoder", action="store_true", help="no language-model item text")
    p.add_argument("--rating_rmse_max", type=float, default=configs.RATING_RMSE_MAX)
    p.add_argument(
        "--rating_rmse_max_increase", type=float, default=configs.RATING_RMSE_MAX_INCREASE
    )
    p.add_argument("--relevance_auc_min", type=float, default=configs.RELEVANCE_AUC_MIN)
    p.add_argument(
        "--retrieval_thresholds",
        type=_json_dict,
        default=None,
        help="JSON, e.g. '{\"hit_rate@100\": 0.05}'",
    )
    p.add_argument(
        "--no_runtime_parameters",
        action="store_true",
        help="bake every value into the spec instead of pipeline inputs",
    )
    p.add_argument(
        "--no_baseline",
        action="store_true",
        help="no latest-blessed-model resolver (needed on KFP OSS, whose v2 "
        "backend does not implement resolver tasks); drops TFMA change thresholds",
    )
    p.add_argument("--disable_cache", action="store_true")
    p.add_argument(
        "--serving_pvc",
        default=None,
        help="PVC to mount into the Pusher (Kubeflow; .yaml output only)",
    )
    p.add_argument("--serving_pvc_mount", default="/models")
    a = p.parse_args(own)
    settings = KubeflowSettings(
        image=a.image,
        pipeline_root=a.pipeline_root,
        examples_root=a.examples_root,
        serving_model_dir=a.serving_model_dir,
        schema_path=a.schema_path,
        pipeline_name=a.pipeline_name,
        beam_pipeline_args=tuple(beam_args),
        model_config=a.model_config,
        epochs=a.epochs,
        distribution=a.distribution,
        vertex_training=(
            VertexTraining(
                region=a.vertex_training_region,
                image=a.image,
                replicas=a.vertex_training_replicas,
                machine_type=a.vertex_machine_type,
            )
            if a.vertex_training_region
            else None
        ),
        tfjob_training=(
            TFJobTraining(
                image=a.image,
                namespace=a.tfjob_namespace,
                replicas=a.tfjob_replicas,
                cpu=a.tfjob_cpu,
                memory=a.tfjob_memory,
            )
            if a.tfjob_namespace
            else None
        ),
        text_encoder=None if a.no_text_encoder else a.text_encoder,
        rating_rmse_max=a.rating_rmse_max,
        rating_rmse_max_increase=a.rating_rmse_max_increase,
        relevance_auc_min=a.relevance_auc_min,
        retrieval_thresholds=a.retrieval_thresholds,
        runtime_parameters=not a.no_runtime_parameters,
        baseline_model=not a.no_baseline,
        enable_cache=not a.disable_cache,
        serving_pvc=a.serving_pvc,
        serving_pvc_mount=a.serving_pvc_mount,
    )
    return settings, a.output


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO)
    settings, output = parse_args(sys.argv[1:] if argv is None else argv)
    compile_pipeline(settings, output)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
