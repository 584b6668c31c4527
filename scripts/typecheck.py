"""Type-check the product code and the benchmarks with mypy ([tool.mypy] in pyproject.toml).

mypy maps a module to a file by walking folders, and the source tree spreads
`mtrec.*` over several top-level folders (setup.py's package_dir). So, like
lint_imports.py, this checks a copy in the installed layout
(product_layout.py), then names each reported file by its repository path,
so `mtrec/models/model.py:97: error` reads `models/model.py:97: error`. The
benchmark scripts import each other as top-level modules, and mtrec from the copy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from product_layout import ROOT, installed_layout

LOCATION = re.compile(r"^(?P<path>[^:\s]+\.py)(?=:)")


def repository_paths(report: str, copied: dict[str, str]) -> str:
    """The report with each location's copied path replaced by the repository's."""
    return "".join(
        LOCATION.sub(lambda m: copied.get(m["path"], m["path"]), line)
        for line in report.splitlines(keepends=True))


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="mtrec-typecheck-") as tmp:
        copied = installed_layout(Path(tmp))
        benchmarks = sorted(ROOT.glob("benchmarks/*.py"))
        copied.update({str(b): b.relative_to(ROOT).as_posix() for b in benchmarks})
        command = [str(Path(sys.executable).with_name("mypy")), "--config-file",
                   str(ROOT / "pyproject.toml"), "--cache-dir", str(Path(tmp) / ".mypy_cache"),
                   "mtrec", *map(str, benchmarks), *argv]
        env = {**os.environ, "MYPYPATH": str(ROOT / "benchmarks")}
        done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
        sys.stdout.write(repository_paths(done.stdout, copied))
        sys.stderr.write(done.stderr)
        return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
