"""Run import-linter (the contracts in import_contracts.toml) over mtrec as it is installed.

grimp, import-linter's graph builder, finds a package's modules by walking its
one folder, but the source tree spreads `mtrec.*` over several top-level
folders (setup.py's package_dir), and it refuses sub-packages as roots. So this
copies the product modules into the installed layout in a temporary folder
(tests and conftest files left out: they are not product code) and lints that.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path(__file__).resolve().with_name("import_contracts.toml")


def package_dirs() -> dict[str, str]:
    """setup.py's SUBPACKAGES ({"mtrec.models": "models", ...}) plus mtrec itself."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SUBPACKAGES":
            return {"mtrec": "mtrec", **ast.literal_eval(node.value)}
    raise SystemExit("setup.py has no SUBPACKAGES mapping")


def is_product(path: Path) -> bool:
    return not (path.name.endswith("_test.py") or path.name == "conftest.py")


def installed_layout(target: Path) -> None:
    for package, folder in package_dirs().items():
        dest = target.joinpath(*package.split("."))
        for source in (ROOT / folder).rglob("*.py"):
            if is_product(source):
                out = dest / source.relative_to(ROOT / folder)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, out)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="mtrec-lint-imports-") as tmp:
        installed_layout(Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        command = [str(Path(sys.executable).with_name("lint-imports")), "--no-logo",
                   "--no-cache", "--config", str(CONFIG), *argv]
        return subprocess.run(command, env=env, cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
