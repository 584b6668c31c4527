"""`mtrec serve --cpus`: the CPU list, and every thread of the process pinned to it."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import pytest

from mtrec.cli import main as mtrec_main
from mtrec.serving.affinity import parse_cpus
from mtrec.serving.server_args import ServerConfig, add_server_arguments, config_from_args


@pytest.mark.parametrize(("text", "cpus"), [
    ("0", (0,)), ("0,2-3", (0, 2, 3)), (" 3 , 1", (1, 3)), ("1-1,0", (0, 1)),
])
def test_cpu_lists_parse_like_taskset(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpus(text) == cpus


@pytest.mark.parametrize("text", ["", "a", "1-", "-1", "3-1", "0;1"])
def test_a_bad_cpu_list_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--cpus"):
        parse_cpus(text)


def test_the_flag_reaches_the_server_config() -> None:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    args = parser.parse_args(["--model-base-path", "/m", "--cpus", "0-1"])
    assert config_from_args(args).cpus == (0, 1)
    assert config_from_args(parser.parse_args(["--model-base-path", "/m"])).cpus is None



def test_the_flags_defaults_are_the_server_configs() -> None:
    """One set of defaults: `serve` without optional flags makes ServerConfig()'s."""
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    config = config_from_args(parser.parse_args(["--model-base-path", "/m"]))
    assert config == ServerConfig(model_base_path="/m")


_CHILD = textwrap.dedent("""
    import json, os, sys, threading
    from mtrec.serving.affinity import pin_process
    stop = threading.Event()
    before = threading.Thread(target=stop.wait)  # a thread that exists before pinning
    before.start()
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[0]
    # Inherited from a parent pinned elsewhere: pinning may widen it again.
    os.sched_setaffinity(0, {cpus[-1]})
    pin_process((cpu,))
    after = threading.Thread(target=stop.wait)  # one started afterwards
    after.start()
    allowed = {tid: sorted(os.sched_getaffinity(int(tid)))
               for tid in os.listdir("/proc/self/task")}
    stop.set()
    try:
        pin_process((4095,))
        refused = None
    except ValueError as exc:
        refused = str(exc)
    print(json.dumps({"cpu": cpu, "allowed": allowed, "refused": refused}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread affinity is Linux's")
def test_every_thread_before_and_after_is_pinned() -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                         check=True, timeout=60)
    result = json.loads(out.stdout)
    assert len(result["allowed"]) >= 3  # the main thread and both others
    assert all(cpus == [result["cpu"]] for cpus in result["allowed"].values())
    assert "4095" in result["refused"] and "not available" in result["refused"]
    assert os.sched_getaffinity(0)  # this process untouched


def test_serve_refuses_bad_cpus_with_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    before = os.sched_getaffinity(0)
    with pytest.raises(SystemExit) as exited:  # argparse: not a CPU list
        mtrec_main(["serve", "--model-base-path", "/m", "--cpus", "0-x"])
    assert exited.value.code == 2 and "--cpus takes CPU ids" in capsys.readouterr().err
    # A CPU the host does not have: refused before anything starts.
    assert mtrec_main(["serve", "--model-base-path", "/m", "--cpus", "4095"]) == 2
    assert "error: --cpus [4095] not available" in capsys.readouterr().err
    assert os.sched_getaffinity(0) == before
