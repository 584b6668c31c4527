"""Compiles the mtrec pipeline for Kubeflow Pipelines v2 and Vertex AI Pipelines.

The same `create_pipeline` as local_runner.py, compiled by TFX's
KubeflowV2DagRunner into a pipeline spec (schema 2.1.0). Everything that
differs from a local run comes from `KubeflowSettings`: image, cloud paths,
Beam args, model and blessing settings. The command line is `mtrec compile`
(mtrec/commands/compile.py):

    mtrec compile \\
        --image REGION-docker.pkg.dev/PROJECT/REPO/mtrec:VERSION \\
        --pipeline-root gs://BUCKET/pipeline_root \\
        --examples-root gs://BUCKET/examples \\
        --serving-model-dir gs://BUCKET/serving_model/mtrec \\
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
`--no-runtime-parameters` bakes everything in.
`--vertex-training-region R --vertex-project P` makes the Trainer a Vertex AI custom job, and
`--tfjob-namespace NS` a Kubeflow TFJob (chief + workers running the same
image), for training on several machines.

Backends: Vertex AI Pipelines runs the spec as compiled. The Kubeflow
Pipelines (OSS) v2 backend does not implement the resolver tasks TFX compiles
the latest-blessed-model resolver into: compile with `--no-baseline` for it
(`--serving-pvc` and `--tfjob-namespace`, which only it runs, need that).
Run as a module (`python -m mtrec.pipeline.kubeflow_v2_runner`, the command before
`mtrec compile`), it exits with status 2 and prints the `mtrec compile` line.

Output: `.yaml` writes the PipelineSpec that `kfp.Client` and Vertex accept
(root parameters carry their defaults, `defaultPipelineRoot` is set, and
`--serving-pvc` adds a Kubernetes platform spec mounting a PVC into the
Pusher); `.json` writes TFX's PipelineJob (spec + runtimeConfig) for Vertex.
Image, pipeline name, paths, output and the remote-training flags are checked
first (kubeflow_checks.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any

import yaml
from tfx import v1 as tfx
from tfx.orchestration import data_types

from mtrec.contracts.pipeline import PUSHER
from mtrec.pipeline import configs
from mtrec.pipeline import kubeflow_checks as checks
from mtrec.pipeline.kfp_entrypoint import AUTO_NUM_WORKERS
from mtrec.pipeline.kubeflow_beam_args import with_default_runner
from mtrec.pipeline.pipeline import create_pipeline
from mtrec.pipeline.settings import PipelineSettings

IMAGE_SCHEMA_PATH = configs.IMAGE_SCHEMA_PATH
# In-container FnApiRunner (configs.LOCAL_RUNNER), one worker per CPU the pod may use:
# Beam reads 0 as the node's CPU count, so each task's entrypoint (kfp_entrypoint.py)
# replaces it at run time with the container's CPU affinity and cgroup CPU limit.
DEFAULT_BEAM_ARGS = (*configs.LOCAL_BEAM_ARGS, f"--direct_num_workers={AUTO_NUM_WORKERS}")


@dataclasses.dataclass(frozen=True)
class KubeflowSettings:
    """A Kubeflow/Vertex deployment: the pipeline's settings plus image and Pusher volume."""

    pipeline: PipelineSettings
    image: str
    serving_pvc: str | None = None  # PVC mounted into the Pusher (Kubeflow only)
    serving_pvc_mount: str = "/models"


def kubeflow_settings(
    *,
    image: str,
    pipeline_root: str,
    examples_root: str,
    serving_model_dir: str,
    serving_pvc: str | None = None,
    serving_pvc_mount: str = "/models",
    **fields: Any,
) -> KubeflowSettings:
    """KubeflowSettings with this deployment's defaults: the image's schema path,
    in-container Beam args (their runner kept when `beam_pipeline_args` name none) and
    runtime parameters on. `fields` are any other PipelineSettings fields (model,
    thresholds, ...)."""
    fields.setdefault("schema_path", IMAGE_SCHEMA_PATH)
    fields["beam_pipeline_args"] = with_default_runner(
        fields.get("beam_pipeline_args"), DEFAULT_BEAM_ARGS
    )
    fields.setdefault("runtime_parameters", True)
    pipeline = PipelineSettings(
        pipeline_root=pipeline_root,
        examples_root=examples_root,
        serving_model_dir=serving_model_dir,
        **fields,
    )
    return KubeflowSettings(pipeline, image, serving_pvc, serving_pvc_mount)


def check_settings(settings: KubeflowSettings) -> None:
    """Raises ValueError (one line, naming the flag) for a value no cluster could run."""
    p = settings.pipeline
    checks.check_deployment(
        image=settings.image,
        pipeline_name=p.pipeline_name,
        paths=checks.storage_paths(
            p.pipeline_root, p.examples_root, p.serving_model_dir, p.schema_path
        ),
        serving_pvc=settings.serving_pvc,
        serving_pvc_mount=settings.serving_pvc_mount,
    )
    vertex, tfjob = p.vertex_training, p.tfjob_training
    checks.check_remote_training(
        distribution=p.distribution,
        vertex_region=vertex.region if vertex else None,
        vertex_project=vertex.project if vertex else None,
        vertex_replicas=vertex.replicas if vertex else 1,
        tfjob_namespace=tfjob.namespace if tfjob else None,
        tfjob_replicas=tfjob.replicas if tfjob else 1,
        tfjob_cpu=tfjob.cpu if tfjob else None,
        tfjob_memory=tfjob.memory if tfjob else None,
    )
    checks.check_kfp_backend(serving_pvc=settings.serving_pvc,
                             tfjob_namespace=tfjob.namespace if tfjob else None,
                             baseline=p.baseline_model)


def build_pipeline(settings: KubeflowSettings) -> tfx.dsl.Pipeline:
    """The shared pipeline definition with this deployment's values."""
    return create_pipeline(settings.pipeline)


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
    check_settings(settings)
    checks.check_output(output_path, serving_pvc=settings.serving_pvc)
    yaml_output = output_path.endswith((".yaml", ".yml"))
    pipeline = build_pipeline(settings)
    defaults = runtime_parameter_defaults(pipeline)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=settings.image,
            default_commands=list(configs.KFP_TASK_COMMAND),
            use_pipeline_spec_2_1=True,
        )
    )
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    spec = job["pipelineSpec"]
    # TFX puts defaults only in runtimeConfig; kfp.Client needs them in the spec.
    root_params = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for name, default in defaults.items():
        root_params[name].update(defaultValue=default, isOptional=True)
    spec["defaultPipelineRoot"] = settings.pipeline.pipeline_root
    if yaml_output:
        documents = [spec]
        if settings.serving_pvc:
            documents.append(pvc_platform_spec(settings.serving_pvc, settings.serving_pvc_mount))
        text = yaml.safe_dump_all(documents, sort_keys=True)
    else:
        text = json.dumps(job, sort_keys=True, indent=2)
    try:  # serialized first: a failure leaves no half-written spec
        os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
        with open(output_path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as err:
        raise ValueError(f"--output {output_path!r}: {err.strerror or err}") from err
    return job


def pvc_platform_spec(pvc_name: str, mount_path: str) -> dict[str, Any]:
    """KFP Kubernetes platform spec (as kfp-kubernetes `mount_pvc` writes it) for the Pusher."""
    mount = {"constant": pvc_name, "mountPath": mount_path}
    executors = {f"{PUSHER}_executor": {"pvcMount": [mount]}}
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}


def moved_message(argv: Sequence[str]) -> str:
    """What `python -m mtrec.pipeline.kubeflow_v2_runner ARGV` (the command before
    `mtrec compile`) says: the `mtrec compile` line of its flags, dashed."""
    own = list(argv[:argv.index("--")] if "--" in argv else argv)
    flags = [_dashed(arg) for arg in own]
    command = shlex.join(["mtrec", "compile", *flags, *argv[len(own):]])
    return (f"error: this module no longer compiles; the command is `{command}` (its flags "
            "are now dashed, --snake_case -> --kebab-case, and --disable_cache is "
            "--no-cache; mtrec compile --help lists them)")


def _dashed(arg: str) -> str:
    if not arg.startswith("--"):
        return arg  # a value
    name, equals, value = arg.partition("=")
    return {"--disable_cache": "--no-cache"}.get(name, name.replace("_", "-")) + equals + value


if __name__ == "__main__":  # the old command did nothing and exited 0
    print(moved_message(sys.argv[1:]), file=sys.stderr)
    sys.exit(2)
