"""Multi-worker training on one machine: the Trainer's run_fn in N processes on loopback.

A TFJob (tfjob.py) and a Vertex custom job (vertex.py) run one chief plus
`replicas - 1` workers and set TF_CONFIG for each; run_fn then trains under
`MultiWorkerMirroredStrategy` (gRPC collectives between the processes) and
only the chief exports. This launcher does the same with local processes, so
that path executes here and in `make test` (tests/test_multi_worker.py), not
only as a compiled spec. The roles and TF_CONFIG come from the functions below,
which the TFJob manifest and the Vertex worker pools use too.

    python -m mtrec.components.trainer.multi_worker ARGS.json   # one replica
    launch(TrainerArgs(...), replicas=2, log_dir=...)           # all of them
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import tensorflow as tf
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.public import tfxio

from mtrec.models.trainer import run_fn

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import schema_pb2

CHIEF, WORKER = "chief", "worker"
TF_CONFIG = "TF_CONFIG"


def replica_roles(replicas: int) -> dict[str, int]:
    """How many replicas of each role: one chief, `replicas - 1` workers.

    The chief trains like any worker (it is a replica of the collective) and
    is the one that exports.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    return {CHIEF: 1, WORKER: replicas - 1} if replicas > 1 else {CHIEF: 1}


def cluster_spec(addresses: list[str]) -> dict[str, list[str]]:
    """host:port per replica -> TF's cluster dict; the first address is the chief."""
    roles = replica_roles(len(addresses))
    cluster, start = {}, 0
    for role, count in roles.items():
        cluster[role] = addresses[start : start + count]
        start += count
    return cluster


def tf_config(cluster: dict[str, list[str]], task_type: str, index: int) -> str:
    """The TF_CONFIG one replica reads (what the training operator and Vertex set)."""
    if not 0 <= index < len(cluster.get(task_type, ())):
        raise ValueError(f"no {task_type}:{index} in cluster {cluster}")
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def free_ports(count: int) -> list[int]:
    """Loopback ports free right now (held open together so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]


@dataclasses.dataclass(frozen=True)
class TrainerArgs:
    """The FnArgs fields run_fn reads, as JSON a replica process can load."""

    train_files: list[str]
    eval_files: list[str]
    transform_output: str
    serving_model_dir: str
    model_run_dir: str
    custom_config: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainerArgs:
        return cls(**json.loads(text))


def fn_args(args: TrainerArgs) -> FnArgs:
    """TFX FnArgs over tf.Example TFRecords, read by tfx_bsl as the Trainer's accessor does."""

    def tf_dataset_factory(files: list[str], options: tfxio.TensorFlowDatasetOptions,
                           schema: schema_pb2.Schema | None) -> tf.data.Dataset:
        return tfxio.TFExampleRecord(
            files, schema=schema, telemetry_descriptors=["mtrec"]
        ).TensorFlowDataset(options)

    return FnArgs(
        train_files=args.train_files,
        eval_files=args.eval_files,
        transform_output=args.transform_output,
        transform_graph_path=args.transform_output,
        serving_model_dir=args.serving_model_dir,
        model_run_dir=args.model_run_dir,
        custom_config=args.custom_config,
        # run_fn reads TF datasets only; TFX types the other two factories as required.
        data_accessor=DataAccessor(tf_dataset_factory, None, None),  # type: ignore[arg-type]
    )


def launch(
    args: TrainerArgs, replicas: int, log_dir: str, timeout: float = 600.0
) -> list[int]:
    """Run `replicas` replica processes on loopback; their exit codes, chief first.

    Each writes its log to log_dir/<role>-<index>.log. If one fails or the
    timeout passes, the others are stopped: a collective would wait forever
    for the missing peer.
    """
    os.makedirs(log_dir, exist_ok=True)
    args_file = os.path.join(log_dir, "trainer_args.json")
    with open(args_file, "w") as f:
        f.write(args.to_json())
    return launch_command([sys.executable, "-m", __name__, args_file], replicas, log_dir,
                          timeout)


def launch_command(
    command: list[str], replicas: int, log_dir: str, timeout: float = 600.0
) -> list[int]:
    """`launch` for any command: `replicas` copies, each with its own TF_CONFIG."""
    os.makedirs(log_dir, exist_ok=True)
    cluster = cluster_spec([f"localhost:{p}" for p in free_ports(replicas)])
    procs = []
    for role, addresses in cluster.items():
        for index in range(len(addresses)):
            env = {**os.environ, TF_CONFIG: tf_config(cluster, role, index)}
            log = open(os.path.join(log_dir, f"{role}-{index}.log"), "w")  # noqa: SIM115
            procs.append((subprocess.Popen(command, env=env, stdout=log, stderr=log), log))
    deadline = time.monotonic() + timeout
    try:
        while any(p.poll() is None for p, _ in procs):
            failed = any(p.poll() not in (None, 0) for p, _ in procs)
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            log.close()
    return [p.returncode for p, _ in procs]


def main(argv: list[str]) -> None:
    """One replica: log its role, then run run_fn (TF_CONFIG is already set)."""
    # TensorFlow's absl handler may already sit on the root logger; INFO from
    # ours and from tf.distribute (its collective all-reduce lines) must show.
    logging.basicConfig(level=logging.INFO, force=True)
    tf.get_logger().setLevel(logging.INFO)
    task = json.loads(os.environ.get(TF_CONFIG, "{}")).get("task", {})
    logging.info("replica task %s:%s", task.get("type"), task.get("index"))
    with open(argv[0]) as f:
        run_fn(fn_args(TrainerArgs.from_json(f.read())))


if __name__ == "__main__":
    main(sys.argv[1:])
