"""A hash of installed source code and library versions: what a cached result came from.

Three caches key on it: the local runner's (pipeline/code_version.py: TFX's
cache key does not see code), the examples folder's (mtrec/ingest.py) and the
text encoder's vectors and exports under ~/.cache/mtrec
(components/text_encoder/executor.py). A hand-bumped version string in each
place had to be remembered at every change of the code it guards; the source's
own bytes cannot be forgotten.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Iterable
from pathlib import Path

SOURCE_SUFFIXES = (".py", ".pbtxt")


def package_roots(packages: Iterable[str]) -> list[Path]:
    """The folders the packages load from (an editable install's or site-packages')."""
    roots: list[Path] = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.submodule_search_locations is None:
            raise ModuleNotFoundError(f"{name} is not an installed package")
        roots.extend(Path(p) for p in spec.submodule_search_locations)
    return roots


def fingerprint(roots: Iterable[Path], libraries: Iterable[str]) -> str:
    """sha256 of every source file below `roots` (path and bytes; tests, `*_test.py`,
    left out) and of the libraries' installed versions."""
    digest = hashlib.sha256()
    for root in roots:
        files = sorted(p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES
                       and not p.name.endswith("_test.py") and "__pycache__" not in p.parts)
        for path in files:
            digest.update(f"{root.name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    for name in libraries:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{name}=={version}\0".encode())
    return digest.hexdigest()
