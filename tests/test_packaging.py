"""The wheel (what the pipeline image installs) carries every package in the sources."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> its import path in the wheel (setup.py's package_dir).
SOURCES = {
    "mtrec": "mtrec",
    "contracts": "mtrec/contracts",
    "pipeline": "mtrec/pipeline",
    "models": "mtrec/models",
    "components": "mtrec/components",
    "data": "mtrec/data",
    "serving": "mtrec/serving",
}


def test_wheel_has_every_source_package_and_its_data(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "setup.py", src / "setup.py")
    for folder in SOURCES:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "dist"), str(src)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("mtrec-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, package in SOURCES.items():
        for init in (ROOT / folder).glob("**/__init__.py"):
            expected.add(f"{package}/{init.relative_to(ROOT / folder).as_posix()}")
    assert "mtrec/components/example_gen/__init__.py" in expected
    assert expected <= names, sorted(expected - names)
    assert "mtrec/pipeline/schema/schema.pbtxt" in names  # ImportSchemaGen reads it
    assert any(n.startswith("mtrec/data/sample/") and n.endswith(".csv") for n in names)


def test_lock_is_closed_under_dependencies():
    """The image installs the lock with --no-deps, so every requirement must be in it.

    pip freeze leaves out pip, setuptools and wheel; astunparse needs wheel, and
    `pip check` failed in the image until the lock pinned it.
    """
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = ROOT / "requirements" / "lock-py310.txt"
    locked = {
        canonicalize_name(line.split("==")[0])
        for line in lock.read_text().splitlines()
        if line and not line.startswith("#")
    }
    # Every Python 3.10 image and venv has these two; the lock need not pin them.
    provided = {"pip", "setuptools"}
    missing = set()
    for name in locked:
        for spec in metadata.distribution(name).requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                dep = canonicalize_name(req.name)
                if dep not in locked | provided:
                    missing.add(f"{name} -> {dep}")
    assert not missing, sorted(missing)
