"""VertexTraining: the custom job TFX's Vertex client would submit runs our executor."""

from __future__ import annotations

import json

import pytest
from tfx.extensions.google_cloud_ai_platform import training_clients
from tfx.types import standard_artifacts

from mtrec.components.trainer.executor import Executor
from mtrec.components.trainer.vertex import VertexExecutor, VertexTraining

IMAGE = "europe-docker.pkg.dev/p/r/mtrec:1"


def _training(region: str, replicas: int, project: str = "proj") -> VertexTraining:
    return VertexTraining(region=region, image=IMAGE, project=project, replicas=replicas)


def test_job_runs_our_executor_on_a_chief_and_workers():
    config = _training("europe-west4", replicas=4).custom_config()
    assert VertexExecutor()._GetExecutorClass() is Executor
    # The job TFX's Vertex client builds from this config (no GCP call: no client).
    client = training_clients.VertexJobClient.__new__(training_clients.VertexJobClient)
    model = standard_artifacts.Model()
    model.uri = "gs://b/model"
    job = client.create_training_job(
        {}, {"model": [model]}, {"custom_config": json.dumps(config)},
        "mtrec.components.trainer.executor.Executor",
        config["ai_platform_training_args"], None, None,
    )  # fmt: skip
    pools = job["job_spec"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 3]
    for pool in pools:
        command = pool["container_spec"]["command"]
        assert pool["container_spec"]["image_uri"] == IMAGE
        assert "tfx.scripts.run_executor" in command
        assert command[command.index("--executor_class_path") + 1] == (
            "mtrec.components.trainer.executor.Executor"
        )


def test_one_replica_has_no_worker_pool_and_zero_replicas_or_no_project_is_rejected():
    config = _training("us-central1", replicas=1).custom_config()
    assert len(config["ai_platform_training_args"]["job_spec"]["worker_pool_specs"]) == 1
    with pytest.raises(ValueError, match="replicas"):
        _training("us-central1", replicas=0)
    with pytest.raises(ValueError, match="--vertex-project"):
        _training("us-central1", replicas=2, project="")
