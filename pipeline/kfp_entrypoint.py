"""The command of every KFP v2 task: TFX's container entrypoint, minus its TFX sdist.

`KubeflowV2DagRunner` makes each task run
`python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`.
In a pod, that entrypoint's Beam executors package the installed TFX as an
sdist for remote Beam workers (tfx_packaging.py: 49 MB and ~2 s per Beam
component) even when the Beam args run the FnApiRunner inside the pod, the
default (kubeflow_v2_runner.DEFAULT_BEAM_ARGS), where nothing reads it. This
module runs the same entrypoint inside `without_tfx_package`, which changes
nothing for a remote runner (Dataflow still gets TFX's package unless the
args name the image). `kubeflow_v2_runner` compiles it in as every task's
command (configs.KFP_TASK_COMMAND). tests/test_kfp_local.py runs a compiled
spec and checks the tasks' logs for the packaging step;
tests/test_private_apis.py pins TFX's flag parser, used here as TFX uses it.

It also sizes the in-pod FnApiRunner: the compiled default `--direct_num_workers=0`
means "the CPUs this container may use", which only the pod can know. Beam itself
reads 0 as `multiprocessing.cpu_count()`, the node's CPUs: a pod limited to 4 CPUs
on a 64-CPU node would start 64 worker processes (64 copies of TF in memory),
throttled to 4 CPUs. So 0 is replaced here with `usable_cpus()`.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence

from absl import app
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

from mtrec.pipeline.tfx_packaging import without_tfx_package

NUM_WORKERS_FLAG = "--direct_num_workers"
AUTO_NUM_WORKERS = "0"  # Beam's "auto", resolved here per pod (module docstring)
CGROUP_ROOT = "/sys/fs/cgroup"  # a container sees its own cgroup here (cgroup namespace)
# cgroup v2 writes the CPU limit as "QUOTA PERIOD" ("max" without one); v1 as two files.
CGROUP_V2_CPU_MAX = "cpu.max"
CGROUP_V1_CONTROLLERS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")
CGROUP_V1_QUOTA, CGROUP_V1_PERIOD = "cpu.cfs_quota_us", "cpu.cfs_period_us"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cpus(quota: str, period: str) -> float | None:
    """quota / period in CPUs; None for no quota ("max", -1) or a value we cannot read."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_cpu_limit(root: str = CGROUP_ROOT) -> float | None:
    """This container's CPU limit in CPUs (Kubernetes' `limits.cpu`, which it writes as a
    CFS quota), or None without one. An unreadable or odd file counts as no limit:
    sizing Beam must never fail the task."""
    v2 = _read(os.path.join(root, CGROUP_V2_CPU_MAX))
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return _cpus(quota, period or "100000")  # the kernel's default period
    for controller in CGROUP_V1_CONTROLLERS:
        folder = os.path.join(root, controller)
        v1_quota = _read(os.path.join(folder, CGROUP_V1_QUOTA))
        v1_period = _read(os.path.join(folder, CGROUP_V1_PERIOD))
        if v1_quota is not None and v1_period is not None:
            return _cpus(v1_quota, v1_period)
    return None


def usable_cpus(root: str = CGROUP_ROOT) -> int:
    """The CPUs this process may use: its CPU affinity (the cpuset, e.g. a Kubernetes
    static CPU-manager pod's), capped by the cgroup CPU limit rounded up, at least 1.

    Rounded up as the JVM and .NET do: a worker more than a fractional limit
    (2.5 -> 3) costs some throttling, a worker fewer leaves CPU time unused."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux (kfp_local on a Mac): no affinity to read
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


def resolve_num_workers(args: Sequence[str], cpus: Callable[[], int]) -> list[str]:
    """`args` with Beam's `--direct_num_workers 0` (either form) replaced by `cpus()`."""
    out, resolved = list(args), None
    for i, arg in enumerate(out):
        if arg == f"{NUM_WORKERS_FLAG}={AUTO_NUM_WORKERS}":
            at, value = i, f"{NUM_WORKERS_FLAG}={{}}"
        elif arg == NUM_WORKERS_FLAG and out[i + 1:i + 2] == [AUTO_NUM_WORKERS]:
            at, value = i + 1, "{}"
        else:
            continue
        resolved = cpus() if resolved is None else resolved
        out[at] = value.format(resolved)
    if resolved is not None:
        print(f"mtrec: {NUM_WORKERS_FLAG}={AUTO_NUM_WORKERS} -> {resolved}, the CPUs this "
              f"container may use (Beam would start {multiprocessing.cpu_count()}, the "
              "node's)", file=sys.stderr)
    return out


def run(argv: list[str]) -> None:
    """Runs TFX's entrypoint on `argv` (its flags, then the Beam args)."""
    argv = [argv[0], *resolve_num_workers(argv[1:], usable_cpus)]
    # The runner check reads only Beam's --runner; the executor flags are ignored.
    with without_tfx_package(argv[1:]):
        app.run(
            kubeflow_v2_run_executor.main,
            argv=argv,
            flags_parser=kubeflow_v2_run_executor._parse_flags,
        )


if __name__ == "__main__":
    run(sys.argv)
