"""Beam's portable runner with external SDK worker pools, started and stopped here.

Flink, Spark and Dataflow run our Python Beam code the same way: the runner
hands each stage to SDK workers that a separate worker-pool process starts
(`--environment_type=EXTERNAL`). Running it locally catches what the
local runner's own process tree hides (unpicklable closures, local-path
assumptions). Beam's own pieces only: the embedded job service
(`--job_endpoint=embed`) and `apache_beam.runners.worker.worker_pool_main`.

The pool starts its SDK workers as `python` from PATH, so the venv's bin/
goes first on the pool's PATH; without it the workers die with "No module
named apache_beam" and the job hangs.

One EXTERNAL environment has one address, so one job uses one pool; with
`pools` > 1, each pool serves its own jobs (`beam_args(ports[i])`).

Each job runs on one SDK worker: the embedded job service runs it with
`FnApiRunner.run_via_runner_api`, which never reads `--direct_num_workers`
(Beam 2.74: only `run_pipeline`, the DirectRunner's entry, does). Until
2026-12-07 `mtrec run --beam-workers N` passed that flag and a worker count was
documented that never ran (one "Starting worker" per job in the run log);
tests/test_beam_portable.py now counts the workers. On Flink, Spark or
Dataflow the runner's own options set the parallelism.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from mtrec.components.trainer.multi_worker import free_ports

log = logging.getLogger(__name__)
POOL_MODULE = "apache_beam.runners.worker.worker_pool_main"


def beam_args(port: int) -> list[str]:
    """Pipeline args that run a job on the embedded job service and the pool at `port`."""
    return [
        "--runner=PortableRunner",
        "--job_endpoint=embed",
        "--environment_type=EXTERNAL",
        f"--environment_config=localhost:{port}",
    ]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker pool on port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"worker pool on port {port} not listening after {timeout:.0f} s")


@contextmanager
def worker_pools(pools: int, timeout: float = 60.0, output: IO[bytes] | None = None
                 ) -> Iterator[list[int]]:
    """Start `pools` worker-pool processes; yield their ports; stop them (and their workers).

    The pools' output (one "Starting worker" line per SDK worker) goes to `output`, or
    to this process's stderr (`mtrec run`: the run log)."""
    if pools < 1:
        raise ValueError(f"pools must be >= 1, got {pools}")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep
           + os.environ.get("PATH", "")}
    ports = free_ports(pools)
    procs = []
    try:
        for port in ports:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", POOL_MODULE, f"--service_port={port}"],
                env=env, start_new_session=True,  # its SDK workers share its process group
                stdout=output, stderr=output,
            ))
        for port, proc in zip(ports, procs, strict=True):
            _wait_for_port(port, proc, timeout)
        log.info("Beam worker pools listening on %s", ports)
        yield ports
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
