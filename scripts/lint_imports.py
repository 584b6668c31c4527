"""Run import-linter (the contracts in import_contracts.toml) over mtrec as it is installed.

grimp, import-linter's graph builder, finds a package's modules by walking its
one folder, but the source tree spreads `mtrec.*` over several top-level
folders (setup.py's package_dir), and it refuses sub-packages as roots. So this
lints a copy of the product modules in the installed layout (product_layout.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from product_layout import installed_layout

CONFIG = Path(__file__).resolve().with_name("import_contracts.toml")


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="mtrec-lint-imports-") as tmp:
        installed_layout(Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        command = [str(Path(sys.executable).with_name("lint-imports")), "--no-logo",
                   "--no-cache", "--config", str(CONFIG), *argv]
        return subprocess.run(command, env=env, cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
