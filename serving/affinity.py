"""Pin every thread of the serving process to a set of CPUs (`mtrec serve --cpus`).

Why: on a host the server shares (with its clients, or with other jobs), the
kernel moves the server's threads across cores between requests: the gRPC
poller, the RPC worker and TF's threads of one request land on different
cores, each with cold caches. Given cores of its own, the server's request path
stays on warm ones. On the 2-core benchmark box (ML-100K model, server on core
0, the load generator on core 1; benchmarks/results/serving.md, round 7):
`recommend` c=1 p50 1.36 -> 0.86 ms and c=32 QPS 1,557 -> 2,287 against
neither pinned, back to back.

Linux only: affinity is per thread, and a new thread inherits its creator's,
so pinning every existing thread (/proc/self/task) early also covers the
threads gRPC and TF start later.
"""

from __future__ import annotations

import contextlib
import os

_TASKS = "/proc/self/task"


def parse_cpus(text: str) -> tuple[int, ...]:
    """'0', '0,2' or '0-3,6' -> sorted CPU ids; ValueError for anything else."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"--cpus takes CPU ids like 0,2-3, got {text!r}")
        lo, hi = int(first), int(last) if dash else int(first)
        if hi < lo:
            raise ValueError(f"--cpus range {part!r} runs backwards")
        cpus.update(range(lo, hi + 1))
    return tuple(sorted(cpus))


def pin_process(cpus: tuple[int, ...]) -> None:
    """Every thread of this process onto `cpus` (threads started later inherit it)."""
    if not hasattr(os, "sched_setaffinity") or not os.path.isdir(_TASKS):
        raise OSError("--cpus needs Linux (sched_setaffinity and /proc/self/task)")
    # This thread first: it may widen an inherited set (a parent pinned elsewhere),
    # and the kernel refuses CPUs outside the host's or the container's cpuset.
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        raise ValueError(f"--cpus {list(cpus)} not available to this process "
                         f"({exc.strerror}; this host has {os.cpu_count()} CPUs)") from None
    for tid in os.listdir(_TASKS):
        with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
            os.sched_setaffinity(int(tid), cpus)
