"""README's Serving commands, run as written: `mtrec serve` as a process, then `mtrec query`.

The commands are read from README.md itself, so the documentation and the
behaviour cannot drift apart. Only the port is swapped for a free one (8500
may be taken on a test machine); every other flag is README's. The model
folder is laid out like a local run's push: `outputs/<source>/serving_model/
<pipeline name>/<unix-time version>/`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mtrec.cli import main as mtrec_main
from mtrec.pipeline import configs
from mtrec.serving.client import MtrecClient
from tests import _serving_support as support

README = Path(__file__).resolve().parents[1] / "README.md"
EXECUTABLE = ".venv/bin/mtrec"

pytestmark = pytest.mark.skipif(support.EXTERNAL, reason="starts its own server")


def readme_commands(section: str = "Serving") -> list[list[str]]:
    """The `.venv/bin/mtrec ...` lines of one README section's shell blocks, as argv."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README has no '## {section}' section"
    blocks = re.findall(r"^```sh\n(.*?)^```", match.group(1), re.S | re.M)
    argvs = [shlex.split(line, comments=True) for block in blocks for line in block.splitlines()]
    return [[a for a in argv if a != "&"] for argv in argvs if argv and argv[0] == EXECUTABLE]


def _with_flag(argv: list[str], flag: str, value: str) -> list[str]:
    """`argv` with `flag`'s value replaced, or the flag added."""
    if flag in argv:
        i = argv.index(flag)
        return [*argv[: i + 1], value, *argv[i + 2 :]]
    return [*argv, flag, value]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _thread_affinities(pid: int) -> dict[str, tuple[int, ...]]:
    """Each live thread of `pid` -> its CPUs (a thread that ends meanwhile is skipped)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            out[tid] = tuple(sorted(os.sched_getaffinity(int(tid))))
    return out


def _mtrec() -> list[str]:
    script = Path(sys.executable).with_name("mtrec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mtrec.cli"]


def test_readme_serve_command_serves_the_pushed_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = readme_commands()
    serve = next(argv for argv in commands if argv[1] == "serve")
    queries = [argv for argv in commands if argv[1] == "query"]
    assert queries, "README's Serving section shows no `mtrec query`"
    base_path = serve[serve.index("--model-base-path") + 1]
    # `mtrec run`'s default home is outputs/<source>; its Pusher writes
    # <home>/serving_model/<pipeline name>/<version>/ (pipeline/local_runner.py).
    assert base_path == os.path.join("outputs", "sample", "serving_model", configs.PIPELINE_NAME)
    support.install_version(str(tmp_path / base_path), 1795653487, support.second_model_dir())

    port = str(_free_port())
    argv = _with_flag(serve[1:], "--port", port)
    # The same command pinned to one core (`--cpus`, serving/affinity.py): every
    # thread of the served process must end up there.
    cpu = str(min(os.sched_getaffinity(0)))
    argv = _with_flag(argv, "--cpus", cpu)
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*_mtrec(), *argv], cwd=tmp_path, stdout=log, stderr=log)
    try:
        target = f"127.0.0.1:{port}"
        with MtrecClient(target, timeout=5) as client:
            try:
                assert client.wait_until_available(timeout=120) == 1795653487
            except TimeoutError as exc:
                raise AssertionError(f"{exc}\n--- server log ---\n{log_path.read_text()}") from exc
        pinned = _thread_affinities(proc.pid)
        assert len(pinned) > 2 and set(pinned.values()) == {(int(cpu),)}, pinned
        for query in queries:
            code = mtrec_main(_with_flag(query[1:], "--target", target))
            out = json.loads(capsys.readouterr().out)
            assert code == 0, (query, out)
            kind = query[2]
            if kind in ("recommend", "recommend-from-items"):
                k = int(query[query.index("-k") + 1])
                assert len(out["items"]) == k
            elif kind == "score":
                items = query[query.index("--items") + 1 :]
                assert [it["item_id"] for it in out["items"]] == items
            elif kind == "metadata":
                assert "recommend" in out["signature_def"]
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=60)
    log_text = log_path.read_text()
    assert returncode == 0, log_text
    assert "WARNING mtrec.serving" not in log_text, log_text  # e.g. "no version folders"
