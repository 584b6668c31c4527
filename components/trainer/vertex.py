"""Multi-worker training on Vertex AI: the same Trainer, run as a Vertex custom job.

TFX's stock Trainer runs `run_fn` once, in its own pod. For several machines,
this executor submits a Vertex AI custom job instead (TFX's Vertex training
client): a chief pool and a worker pool, every replica running our Trainer
executor in the pipeline image, with TF_CONFIG set by Vertex. run_fn then picks
`MultiWorkerMirroredStrategy` (custom_config "distribution") and only the chief
exports. The pipeline switches to it by configuration: `PipelineSettings(...,
vertex_training=VertexTraining(...))`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfx.extensions.google_cloud_ai_platform import constants
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor

from mtrec.components.trainer.executor import Executor
from mtrec.components.trainer.multi_worker import replica_roles


@dataclasses.dataclass(frozen=True)
class VertexTraining:
    """Where and on what the Trainer's Vertex custom job runs."""

    region: str
    image: str  # the pipeline image (Dockerfile): the job runs our executor in it
    # The GCP project the custom job is created in. TFX's runner pops it from the
    # training args before submitting (runner.start_cloud_training): without it
    # the Trainer step fails with KeyError 'project' on Vertex.
    project: str
    replicas: int = 2  # one chief plus replicas - 1 workers
    machine_type: str = "n1-standard-8"

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {self.replicas}")
        if not self.project:
            raise ValueError("VertexTraining needs the GCP project of its custom job "
                             "(mtrec compile --vertex-project)")

    def custom_config(self) -> dict[str, Any]:
        """The Trainer custom_config keys TFX's Vertex training client reads."""

        def pool(count: int) -> dict[str, Any]:
            return {
                "machine_spec": {"machine_type": self.machine_type},
                "replica_count": count,
                "container_spec": {"image_uri": self.image},
            }

        # Vertex's first pool is the chief, the second the workers (TF_CONFIG's roles).
        pools = [pool(n) for n in replica_roles(self.replicas).values()]
        return {
            constants.ENABLE_VERTEX_KEY: True,
            constants.VERTEX_REGION_KEY: self.region,
            vertex_executor.TRAINING_ARGS_KEY: {
                "project": self.project,
                "job_spec": {"worker_pool_specs": pools},
            },
        }


class VertexExecutor(vertex_executor.GenericExecutor):
    """Submits the Vertex job; each replica runs `Executor` (catalogue + text inputs)."""

    def _GetExecutorClass(self) -> type[Executor]:
        return Executor
