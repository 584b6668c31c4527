"""TFJob launcher: the manifest each replica runs, and waiting on the job's conditions."""

from __future__ import annotations

import json

import pytest
from tfx.types import standard_artifacts

from mtrec.components.trainer.tfjob import (
    TFJobTraining,
    executor_command,
    job_state,
    run_tfjob,
    tfjob_manifest,
)

IMAGE = "europe-docker.pkg.dev/p/r/mtrec:1"


def _command() -> list[str]:
    model = standard_artifacts.Model()
    model.uri = "gs://b/model"
    return executor_command({}, {"model": [model]}, {"custom_config": '{"model": {}}'})


def test_manifest_runs_our_trainer_executor_on_a_chief_and_workers():
    settings = TFJobTraining(image=IMAGE, namespace="team", replicas=3, service_account="sa")
    manifest = tfjob_manifest("mtrec-trainer-x", settings, _command())
    assert manifest["kind"] == "TFJob" and manifest["apiVersion"] == "kubeflow.org/v1"
    assert manifest["metadata"] == {"name": "mtrec-trainer-x", "namespace": "team"}
    specs = manifest["spec"]["tfReplicaSpecs"]
    assert {k: v["replicas"] for k, v in specs.items()} == {"Chief": 1, "Worker": 2}
    pod = specs["Worker"]["template"]["spec"]
    assert pod["serviceAccountName"] == "sa"
    (container,) = pod["containers"]
    assert container["name"] == "tensorflow" and container["image"] == IMAGE
    command = container["command"]
    assert command[:3] == ["python", "-m", "tfx.scripts.run_executor"]
    assert command[command.index("--executor_class_path") + 1] == (
        "mtrec.components.trainer.executor.Executor"
    )
    outputs = json.loads(command[command.index("--outputs") + 1])
    assert outputs["model"][0]["artifact"]["uri"] == "gs://b/model"
    single = tfjob_manifest("j", TFJobTraining(image=IMAGE, replicas=1), _command())
    assert list(single["spec"]["tfReplicaSpecs"]) == ["Chief"]


class _Api:
    """Records the calls a CustomObjectsApi would get; answers with given statuses."""

    def __init__(self, statuses):
        self.statuses, self.created, self.polls = list(statuses), [], 0

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.created.append((group, version, namespace, plural, body["metadata"]["name"]))

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.polls += 1
        return {"status": self.statuses.pop(0)}


def _conditions(*pairs):
    return {"conditions": [{"type": t, "status": s, "message": f"{t} msg"} for t, s in pairs]}


def test_waits_until_the_job_succeeds_and_raises_when_it_fails():
    manifest = tfjob_manifest("j", TFJobTraining(image=IMAGE, namespace="ns"), ["true"])
    running = _conditions(("Created", "True"), ("Running", "True"))
    api = _Api([{}, running, _conditions(("Running", "False"), ("Succeeded", "True"))])
    sleeps = []
    run_tfjob(api, manifest, poll_seconds=7, sleep=sleeps.append)
    assert api.created == [("kubeflow.org", "v1", "ns", "tfjobs", "j")]
    assert api.polls == 3 and sleeps == [7, 7]

    failing = _Api([running, _conditions(("Running", "False"), ("Failed", "True"))])
    with pytest.raises(RuntimeError, match="TFJob ns/j failed: Failed msg"):
        run_tfjob(failing, manifest, poll_seconds=0, sleep=lambda _: None)
    assert job_state({"status": running}) is None


def test_replicas_must_be_positive():
    with pytest.raises(ValueError, match="replicas"):
        TFJobTraining(image=IMAGE, replicas=0)
