"""A real serving model for the serving benchmark: ML-100K u1 through the production path.

The serving numbers must describe the model users get, not the 32-d synthetic
stand-in, so the benchmark trains one with the same code `mtrec run` uses
(the real preprocessing_fn through tf.Transform, `train_and_export`, the
production export). Training is cut to `epochs` (default 2 of the configured
8): serving cost depends on the graph and the table sizes, not on how well it
fits. The trained weights are cached under work_root; the export is redone on
every run (~30 s), the way `mtrec add-items` re-exports (build_model +
restore_weights + export_serving_model), so a cached model never hides a change
to the export code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
from quality_data import Prepared, default_data_path, prepare, shuffled, with_protocol
from transform_local import as_dataset

from mtrec.models.config import ModelConfig
from mtrec.models.export import export_serving_model
from mtrec.models.serving_tables import build_serving_tables
from mtrec.models.towers import VocabSizes
from mtrec.models.trainer import build_model, train_and_export
from mtrec.models.weights_file import load_config, restore_weights

DONE = "TRAINED"


def weights_dir(work: Path, epochs: int) -> Path:
    return work / f"serving-weights-e{epochs}"


def export_from_weights(prepared: Prepared, weights_dir: str, export_dir: str,
                        cache_users: bool = True, **config_overrides: Any) -> str:
    """The production export of the weights save_weights wrote, to export_dir (replaced);
    `config_overrides`: ModelConfig fields to change (e.g. answer_cache_max_entries=0)."""
    config = dataclasses.replace(load_config(weights_dir), **config_overrides)
    sizes = VocabSizes.from_transform_output(prepared.tft_output)
    tables = build_serving_tables(as_dataset(prepared.train, 8192), sizes)
    model = build_model(sizes, config, prepared.tft_output, tables)
    model({k: v[:2] for k, v in prepared.train.items()})  # build every layer, then restore
    restore_weights(model, weights_dir)
    shutil.rmtree(export_dir, ignore_errors=True)
    export_serving_model(model, prepared.tft_output, tables, export_dir, cache_users=cache_users)
    return export_dir


def real_model(work_root: str, epochs: int = 2, data: str | None = None) -> str:
    """The exported model dir for ML-100K u1 (weights trained now unless cached under
    work_root; exported now with the current code)."""
    prepared, work = prepare("ml-100k", data or default_data_path("ml-100k"), "u1",
                             Path(work_root))
    weights = weights_dir(work, epochs)
    if not (weights / DONE).exists():
        config = ModelConfig.from_dict(with_protocol(prepared, {"epochs": epochs}))
        train_and_export(shuffled(prepared.train, config.batch_size, 0),
                         as_dataset(prepared.eval, 4096), as_dataset(prepared.train, 8192),
                         prepared.tft_output, config, str(work / "serving-model-trained"),
                         weights_dir=str(weights))
        (weights / DONE).write_text(json.dumps({"epochs": epochs}))
    return export_from_weights(prepared, str(weights), str(work / f"serving-model-e{epochs}"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("work_root", nargs="?", default=os.path.join("/tmp", "serve-real"),
                        help="where the weights are cached and the model is exported")
    print(real_model(parser.parse_args().work_root))
