"""The product modules copied into their installed `mtrec/` layout, for tools that walk folders.

The source tree spreads `mtrec.*` over several top-level folders (setup.py's
package_dir: `models/` is `mtrec.models`, ...). import-linter's graph builder
and mypy both find a package's modules by walking one folder, so
scripts/lint_imports.py and scripts/typecheck.py run them on such a copy.
Tests and conftest files are left out: they are not product code.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_dirs() -> dict[str, str]:
    """setup.py's SUBPACKAGES ({"mtrec.models": "models", ...}) plus mtrec itself."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SUBPACKAGES":
            return {"mtrec": "mtrec", **ast.literal_eval(node.value)}
    raise SystemExit("setup.py has no SUBPACKAGES mapping")


def is_product(path: Path) -> bool:
    return not (path.name.endswith("_test.py") or path.name == "conftest.py")


def installed_layout(target: Path) -> dict[str, str]:
    """Copies the product modules under `target`; returns {copied path: repository path}.

    Both paths are relative (to `target` and to the repository root), so a
    tool's report on the copy can name the files a developer edits.
    """
    copied = {}
    for package, folder in package_dirs().items():
        dest = target.joinpath(*package.split("."))
        for source in (ROOT / folder).rglob("*.py"):
            if is_product(source):
                out = dest / source.relative_to(ROOT / folder)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, out)
                copied[out.relative_to(target).as_posix()] = source.relative_to(ROOT).as_posix()
    return copied
