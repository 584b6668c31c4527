"""Tiny TFX components shared by the console and re-run-cache tests.

They run real LocalDagRunner pipelines in seconds: a "model" that is one file
lets those tests exercise MLMD, caching and the console without training.
No `from __future__ import annotations` here: TFX parses these annotations
at decoration time and refuses them as strings.
"""

from pathlib import Path

from tfx import v1 as tfx
from tfx.types.standard_artifacts import Model


@tfx.dsl.components.component
def Train(model: tfx.dsl.components.OutputArtifact[Model]) -> None:  # TFX's naming
    (Path(model.uri) / "saved_model.pb").write_text("model")
