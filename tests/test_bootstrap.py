"""scripts/bootstrap.sh: one console line per set-up step, pip's output in a log.

Runs the real script on a copy of the repository's set-up files whose lock
file pip rejects at once (no index is contacted): the step fails, the console
names it and the log, and the script exits non-zero.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_failing_step_is_named_with_its_log_and_pip_output_stays_in_the_log(
    tmp_path: Path,
) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "bootstrap.sh", tmp_path / "scripts" / "bootstrap.sh")
    shutil.copy(REPO / "setup.py", tmp_path / "setup.py")
    (tmp_path / "requirements").mkdir()
    nodeps = REPO / "requirements" / "models-nodeps.txt"  # part of the install stamp
    shutil.copy(nodeps, tmp_path / "requirements" / nodeps.name)
    (tmp_path / "requirements" / "lock-py310.txt").write_text("not a requirement ===!\n")
    done = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "bootstrap.sh")], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "MTREC_PYTHON": sys.executable}, timeout=300,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "==> setting up .venv with "
        f"{sys.executable} (first run takes a few minutes; log: .venv/bootstrap.log)",
        "==> creating the virtual environment",
        "==> installing the locked stack (requirements/lock-py310.txt)",
    ]
    assert done.stderr.startswith(
        "error: set-up step failed: installing the locked stack "
        "(requirements/lock-py310.txt) (full log: .venv/bootstrap.log)"
    )
    log = (tmp_path / ".venv" / "bootstrap.log").read_text()
    assert "not a requirement" in log
