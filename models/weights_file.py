"""The weights `mtrec add-items` re-indexes a catalogue with: a TF checkpoint of the
trained model plus its resolved ModelConfig, written by the Trainer and read back by
models/reindex.py (and the benchmarks that re-serve a trained model). Written and read
only here."""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf

from mtrec.contracts.artifacts import WEIGHTS_CHECKPOINT, WEIGHTS_CONFIG_FILE
from mtrec.models.config import RENAMED_TASKS, ModelConfig
from mtrec.models.model import MultiTaskModel


def save_weights(model: MultiTaskModel, weights_dir: str) -> None:
    """A TF checkpoint (optimizer slots included) plus the resolved ModelConfig as JSON."""
    tf.io.gfile.makedirs(weights_dir)
    model.save_weights(os.path.join(weights_dir, WEIGHTS_CHECKPOINT))
    with tf.io.gfile.GFile(os.path.join(weights_dir, WEIGHTS_CONFIG_FILE), "w") as f:
        json.dump(dataclasses.asdict(model.config), f)


def load_config(weights_dir: str) -> ModelConfig:
    """The ModelConfig save_weights wrote (JSON lists back to tuples)."""
    with tf.io.gfile.GFile(os.path.join(weights_dir, WEIGHTS_CONFIG_FILE)) as f:
        values = json.load(f)
    old = set(values.get("tasks", ())) & set(RENAMED_TASKS)
    if old:  # the head's weights sit under its old name: restoring would skip them
        raise ValueError(
            f"{weights_dir} was trained before task {sorted(old)} was renamed "
            f"({RENAMED_TASKS}); run `mtrec run` again, then add items"
        )
    for key in ("loss_weights", "blend"):
        values[key] = tuple(tuple(pair) for pair in values[key])
    return ModelConfig.from_dict(values)


# Checkpoints before 2026-12-07 hold the reported P(like) as [scale, shift] of the head's
# logit under this key (models/like_calibration.py).
_PLATT_KEY = "like_calibration/.ATTRIBUTES/VARIABLE_VALUE"
_LIKE_KEY = "like_weights/.ATTRIBUTES/VARIABLE_VALUE"  # MultiTaskModel.like_weights


def restore_weights(model: MultiTaskModel, weights_dir: str) -> None:
    """Load save_weights' checkpoint into a model built by build_model (no optimizer
    slots); an earlier version's P(like) fit is read into the current form."""
    path = os.path.join(weights_dir, WEIGHTS_CHECKPOINT)
    model.load_weights(path).expect_partial()
    names = dict(tf.train.list_variables(path))
    if _PLATT_KEY in names and _LIKE_KEY not in names:
        scale, shift = tf.train.load_variable(path, _PLATT_KEY)
        model.like_weights.assign([scale, 0.0, shift])


