"""The in-pod FnApiRunner's worker count (pipeline/kfp_entrypoint.py), on fake cgroup files.

The compiled default `--direct_num_workers=0` reached Beam unchanged, which reads 0
as `multiprocessing.cpu_count()`: the node's CPUs, not the pod's CPU limit. The
entrypoint now replaces it with the CPUs the container may use.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mtrec.pipeline import kfp_entrypoint as entry
from mtrec.pipeline import kubeflow_v2_runner as kfv2


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "250000 100000"}, 2.5),  # cgroup v2, limits.cpu: 2500m
        ({"cpu.max": "max 100000"}, None),  # v2 without a limit
        ({"cpu.max": "50000"}, 0.5),  # no period: the kernel's 100000
        ({"cpu/cpu.cfs_quota_us": "400000", "cpu/cpu.cfs_period_us": "100000"}, 4.0),  # v1
        ({"cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, None),
        ({"cpu/cpu.cfs_quota_us": "400000"}, None),  # half of v1's pair
        ({"cpu.max": "lots of"}, None),  # unreadable: no limit, never a failed task
        ({}, None),  # no cgroup files (not Linux, or not mounted)
    ],
)
def test_the_cgroup_cpu_limit(tmp_path, files, limit):
    assert entry.cgroup_cpu_limit(str(_write(tmp_path, files))) == limit


def test_usable_cpus_is_the_affinity_capped_by_the_limit_rounded_up(tmp_path, monkeypatch):
    monkeypatch.setattr(entry.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    root = str(tmp_path)
    assert entry.usable_cpus(root) == 64  # no limit: every CPU of the affinity
    _write(tmp_path, {"cpu.max": "400000 100000"})
    assert entry.usable_cpus(root) == 4  # a 4-CPU pod on a 64-CPU node
    _write(tmp_path, {"cpu.max": "250000 100000"})
    assert entry.usable_cpus(root) == 3
    _write(tmp_path, {"cpu.max": "10000 100000"})
    assert entry.usable_cpus(root) == 1  # 100m: still one worker
    monkeypatch.setattr(entry.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    _write(tmp_path, {"cpu.max": "800000 100000"})
    assert entry.usable_cpus(root) == 2  # a cpuset of 2 under a limit of 8


def test_only_an_auto_worker_count_is_replaced(capsys):
    calls = []

    def cpus() -> int:
        calls.append(1)
        return 3

    args = ["--executor_class_path", "x", "--runner=FnApiRunner", "--direct_num_workers=0"]
    assert entry.resolve_num_workers(args, cpus)[-1] == "--direct_num_workers=3"
    assert "--direct_num_workers=0 -> 3" in capsys.readouterr().err
    assert entry.resolve_num_workers(["--direct_num_workers", "0", "--a=b"], cpus) == [
        "--direct_num_workers", "3", "--a=b"]  # fmt: skip
    assert len(calls) == 2 and capsys.readouterr().err
    for kept in (["--direct_num_workers=2"], ["--direct_num_workers", "5"], ["--runner=X"]):
        assert entry.resolve_num_workers(kept, cpus) == kept
    assert len(calls) == 2 and not capsys.readouterr().err  # cgroups read only for a 0


def test_the_entrypoint_hands_tfx_the_resolved_count(monkeypatch):
    """What a compiled task runs: its container args (the default Beam args end them)."""
    seen = {}
    monkeypatch.setattr(entry.app, "run", lambda main, argv, flags_parser: seen.update(argv=argv))
    monkeypatch.setattr(entry, "usable_cpus", lambda: 6)
    entry.run(["prog", "--executor_class_path", "x", *kfv2.DEFAULT_BEAM_ARGS])
    assert f"--direct_num_workers={entry.AUTO_NUM_WORKERS}" in kfv2.DEFAULT_BEAM_ARGS
    assert seen["argv"][-1] == "--direct_num_workers=6"
    assert seen["argv"][:3] == ["prog", "--executor_class_path", "x"]
