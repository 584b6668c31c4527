"""Multi-worker training on Kubeflow: the same Trainer, run as a Kubeflow TFJob.

TFX has no TFJob launcher: its Trainer runs `run_fn` once, in the pipeline's
pod. This executor creates a `TFJob` (Kubeflow Training Operator,
kubeflow.org/v1) whose chief and workers each run our Trainer executor in the
pipeline image, waits for it, and fails the pipeline step if it fails. The
operator sets TF_CONFIG; run_fn picks `MultiWorkerMirroredStrategy` (custom_config
"distribution") and only the chief exports. The pipeline switches to it by
configuration: `PipelineSettings(..., tfjob_training=TFJobTraining(...))`.

The step's service account needs create/get/delete on `tfjobs` in the namespace.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import json_utils, name_utils

from mtrec.components.trainer.executor import Executor
from mtrec.components.trainer.multi_worker import replica_roles

if TYPE_CHECKING:
    from kubernetes.client import CustomObjectsApi

log = logging.getLogger(__name__)
CONFIG_KEY = "tfjob"
GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"


@dataclasses.dataclass(frozen=True)
class TFJobTraining:
    """Where and on what the Trainer's TFJob runs."""

    image: str  # the pipeline image (Dockerfile): every replica runs our executor in it
    namespace: str = "kubeflow"
    replicas: int = 2  # one chief plus replicas - 1 workers
    cpu: str = "4"
    memory: str = "16Gi"
    service_account: str | None = None
    poll_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {self.replicas}")

    def custom_config(self) -> dict[str, Any]:
        return {CONFIG_KEY: dataclasses.asdict(self)}


def executor_command(
    input_dict: dict[str, list[types.Artifact]],
    output_dict: dict[str, list[types.Artifact]],
    exec_properties: dict[str, Any],
) -> list[str]:
    """What each replica runs: TFX's run_executor with our Trainer executor."""
    return [
        "python", "-m", "tfx.scripts.run_executor",
        "--executor_class_path", name_utils.get_full_name(Executor),
        "--inputs", artifact_utils.jsonify_artifact_dict(input_dict),
        "--outputs", artifact_utils.jsonify_artifact_dict(output_dict),
        "--exec-properties", json.dumps(exec_properties, sort_keys=True),
    ]  # fmt: skip


def tfjob_manifest(name: str, settings: TFJobTraining, command: list[str]) -> dict[str, Any]:
    """A TFJob with one chief and `settings.replicas - 1` workers, all running `command`."""
    resources = {"cpu": settings.cpu, "memory": settings.memory}
    pod_spec: dict[str, Any] = {
        "containers": [{
            "name": "tensorflow",  # the container name the operator looks for
            "image": settings.image,
            "command": command,
            "resources": {"requests": resources, "limits": resources},
        }],
    }  # fmt: skip
    if settings.service_account:
        pod_spec["serviceAccountName"] = settings.service_account

    def replicas(count: int) -> dict[str, Any]:
        return {"replicas": count, "restartPolicy": "Never", "template": {"spec": pod_spec}}

    # TFJob's replica types are TF_CONFIG's task types, capitalised ("Chief", "Worker").
    specs = {role.capitalize(): replicas(n) for role, n in replica_roles(settings.replicas).items()}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TFJob",
        "metadata": {"name": name, "namespace": settings.namespace},
        "spec": {"runPolicy": {"cleanPodPolicy": "Running"}, "tfReplicaSpecs": specs},
    }


def job_state(job: dict[str, Any]) -> str | None:
    """"Succeeded" or "Failed" once the TFJob has finished, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Succeeded", "Failed") and condition.get("status") == "True":
            return condition["type"]
    return None


def run_tfjob(api: CustomObjectsApi, manifest: dict[str, Any], poll_seconds: float,
              sleep: Callable[[float], None] = time.sleep) -> None:
    """Create the TFJob and wait for it; raise if it fails. `api`: CustomObjectsApi."""
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    log.info("created TFJob %s/%s", namespace, name)
    while True:
        job = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        state = job_state(job)
        if state == "Succeeded":
            log.info("TFJob %s/%s succeeded", namespace, name)
            return
        if state == "Failed":
            message = job["status"]["conditions"][-1].get("message", "")
            raise RuntimeError(f"TFJob {namespace}/{name} failed: {message}")
        sleep(poll_seconds)


def _kubernetes_api() -> CustomObjectsApi:
    # Lazy: kubernetes is needed only by the TFJob launcher pod, not to define the pipeline.
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:  # outside a cluster: the local kubeconfig
        config.load_kube_config()
    return client.CustomObjectsApi()


class TFJobExecutor(base_executor.BaseExecutor):
    """Runs the Trainer as a TFJob and waits for it (the launcher pod trains nothing)."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        custom = json_utils.loads(
            exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null"
        )
        if not isinstance(custom, dict) or CONFIG_KEY not in custom:
            raise ValueError(f"custom_config needs a {CONFIG_KEY!r} entry (TFJobTraining)")
        settings = TFJobTraining(**custom[CONFIG_KEY])
        name = f"mtrec-trainer-{uuid.uuid4().hex[:10]}"
        command = executor_command(input_dict, output_dict, exec_properties)
        run_tfjob(_kubernetes_api(), tfjob_manifest(name, settings, command), settings.poll_seconds)
