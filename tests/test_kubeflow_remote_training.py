"""The Trainer compiled as a remote job: a Vertex AI multi-worker job or a Kubeflow TFJob.

`mtrec compile` flags choose the Trainer's executor and its custom_config;
test_kfp_local.py runs both executors on two local replicas.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from mtrec.cli import main as cli_main
from mtrec.components.trainer.tfjob import TFJobTraining
from mtrec.components.trainer.vertex import VertexTraining
from mtrec.pipeline import configs  # conftest imported mtrec first (Keras 2)
from mtrec.pipeline import kubeflow_v2_runner as kfv2
from mtrec.pipeline.pipeline import create_pipeline
from tests.kubeflow_support import (
    CLI_ARGS,
    IMAGE,
    NO_TEXT,
    compile_spec,
    containers_of,
    parse_compile,
)


def _remote_trainer(tmp_path, *flags) -> tuple[str, dict]:
    """Compile with `flags`; return the Trainer's executor class and custom_config."""
    out = tmp_path / "mtrec.json"
    compile_spec([*CLI_ARGS[:6], *NO_TEXT, "--output", str(out),
                  "--serving-model-dir", "gs://bucket/s", *flags])
    spec = json.loads(out.read_text())["pipelineSpec"]
    args = containers_of(spec)["Trainer_executor"]["args"]
    default = spec["root"]["inputDefinitions"]["parameters"][configs.PARAM_TRAINER_CONFIG]
    return args[args.index("--executor_class_path") + 1], json.loads(default["defaultValue"])


def test_vertex_training_makes_the_trainer_a_multi_worker_vertex_job(tmp_path):
    executor, custom = _remote_trainer(
        tmp_path, "--vertex-training-region", "europe-west4", "--vertex-project", "proj",
        "--vertex-training-replicas", "3",
    )
    assert executor == "mtrec.components.trainer.vertex.VertexExecutor"
    assert custom["distribution"] == "multi_worker_mirrored"
    assert custom["ai_platform_enable_vertex"] is True
    assert custom["ai_platform_vertex_region"] == "europe-west4"
    # TFX's runner pops the project from the training args before it submits.
    assert custom["ai_platform_training_args"]["project"] == "proj"
    pools = custom["ai_platform_training_args"]["job_spec"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]
    assert {p["container_spec"]["image_uri"] for p in pools} == {IMAGE}


def test_vertex_training_without_a_project_is_refused_with_the_flag_to_add(tmp_path, capsys):
    out = tmp_path / "mtrec.json"
    argv = [*CLI_ARGS[:6], *NO_TEXT, "--serving-model-dir", "gs://bucket/s", "--output", str(out),
            "--vertex-training-region", "europe-west4"]  # fmt: skip
    assert cli_main(["compile", *argv]) == 2
    assert "--vertex-project" in capsys.readouterr().err and not out.exists()


def test_tfjob_training_makes_the_trainer_a_kubeflow_tfjob(tmp_path):
    executor, custom = _remote_trainer(
        tmp_path, "--tfjob-namespace", "team", "--tfjob-replicas", "4", "--no-baseline"
    )
    assert executor == "mtrec.components.trainer.tfjob.TFJobExecutor"
    assert custom["distribution"] == "multi_worker_mirrored"
    assert custom["tfjob"]["namespace"] == "team" and custom["tfjob"]["replicas"] == 4
    assert custom["tfjob"]["image"] == IMAGE


def test_vertex_and_tfjob_training_are_exclusive():
    settings, _ = parse_compile([*CLI_ARGS[:6], *NO_TEXT, "--serving-model-dir", "gs://bucket/s"])
    with pytest.raises(ValueError, match="not both"):  # at definition time
        dataclasses.replace(
            settings.pipeline,
            vertex_training=VertexTraining(region="r", image=IMAGE, project="p"),
            tfjob_training=TFJobTraining(image=IMAGE),
        )


def test_mirrored_on_several_remote_replicas_is_refused_at_definition_time():
    """Each replica would build its own MirroredStrategy, find no cluster, count as
    the chief and export: N independent trainings into one model folder. It compiled."""
    settings, _ = parse_compile([*CLI_ARGS[:6], *NO_TEXT, "--serving-model-dir", "gs://bucket/s"])
    mirrored = dataclasses.replace(settings.pipeline, distribution="mirrored")
    for remote in ({"tfjob_training": TFJobTraining(image=IMAGE, replicas=4)},
                   {"vertex_training": VertexTraining(region="r", image=IMAGE, project="p",
                                                      replicas=4)}):
        with pytest.raises(ValueError, match="'mirrored' with 4 remote training replicas"):
            create_pipeline(dataclasses.replace(mirrored, **remote))
    one = dataclasses.replace(mirrored, tfjob_training=TFJobTraining(image=IMAGE, replicas=1))
    assert create_pipeline(one).components  # one replica: mirrored over its devices


def test_compile_pipeline_checks_the_remote_training_settings_too(tmp_path):
    """A library caller of compile_pipeline gets the checks `mtrec compile` runs on its flags."""
    settings, _ = parse_compile([*CLI_ARGS[:6], *NO_TEXT, "--serving-model-dir", "gs://bucket/s"])
    bad = dataclasses.replace(settings, pipeline=dataclasses.replace(
        settings.pipeline, tfjob_training=TFJobTraining(image=IMAGE, memory="lots")))
    with pytest.raises(ValueError, match="--tfjob-memory 'lots' is not a Kubernetes quantity"):
        kfv2.compile_pipeline(bad, str(tmp_path / "spec.yaml"))
    assert not (tmp_path / "spec.yaml").exists()
