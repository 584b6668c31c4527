"""Where one local home keeps its data, artifacts, metadata and models.

Apart from the runner (local_runner.py) so that the commands that only read or
tidy a home (`mtrec report`, `mtrec prune`, `mtrec add-items`) name its paths
without loading TFX: `mtrec --help` stays under a second.
"""

from __future__ import annotations

import dataclasses
import os

from mtrec.contracts import signatures as S
from mtrec.contracts.artifacts import EXAMPLES_DIR, MLMD_FILE


def within(uri: str, root: str) -> bool:
    """Whether `uri` lies inside `root` (a realpath): artifacts outside a home's pipeline
    root are another home's (a home moved or copied since it ran)."""
    return os.path.realpath(uri).startswith(root + os.sep)


@dataclasses.dataclass(frozen=True)
class LocalPaths:
    """Where one local deployment keeps its data, artifacts, metadata and models."""

    home: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.home, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.home, MLMD_FILE)

    @property
    def examples_dir(self) -> str:
        """Ingestion's `examples/<digest>/` folders, each one ExampleGen input_base."""
        return os.path.join(self.home, EXAMPLES_DIR)

    @property
    def code_path(self) -> str:
        """The pipeline code's fingerprint as of the last finished run, or of the home's
        first run from its start (code_version)."""
        return os.path.join(self.home, ".mtrec-code")

    @property
    def serving_model_dir(self) -> str:
        return os.path.join(self.home, "serving_model", S.MODEL_NAME)
