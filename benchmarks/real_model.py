"""A real serving model for the serving benchmark: ML-100K u1 through the production path.

The serving numbers must describe the model users get, not the 32-d synthetic
stand-in, so the benchmark trains one with the same code `mtrec run` uses
(the real preprocessing_fn through tf.Transform, `train_and_export`, the
production export) and caches it: a second run with the same data and epochs
reuses it. Training is cut to `epochs` (default 2 of the configured 8): serving
cost depends on the graph and the table sizes, not on how well it fits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
from quality_data import default_data_path, prepare, shuffled, with_protocol  # noqa: I001
from transform_local import as_dataset

from mtrec.models.model import ModelConfig
from mtrec.models.trainer import train_and_export

DONE = "TRAINED"


def real_model(work_root: str, epochs: int = 2, data: str | None = None) -> str:
    """The exported model dir for ML-100K u1 (trained now unless cached under work_root)."""
    prepared, work = prepare("ml-100k", data or default_data_path("ml-100k"), "u1",
                             Path(work_root))
    model_dir = work / f"serving-model-e{epochs}"
    if (model_dir / DONE).exists():
        return str(model_dir)
    config = ModelConfig.from_dict(with_protocol(prepared, {"epochs": epochs}))
    train_and_export(shuffled(prepared.train, config.batch_size, 0),
                     as_dataset(prepared.eval, 4096), as_dataset(prepared.train, 8192),
                     prepared.tft_output, config, str(model_dir))
    (model_dir / DONE).write_text(json.dumps({"epochs": epochs}))
    return str(model_dir)


if __name__ == "__main__":
    import sys

    print(real_model(sys.argv[1] if len(sys.argv) > 1 else os.path.join("/tmp", "serve-real")))
