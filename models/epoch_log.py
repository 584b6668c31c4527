"""One compact progress line per Trainer epoch.

Keras' own `verbose=2` line printed every compiled metric for the training
pass, and training skips metrics (`compute_metrics=not training` in
MultiTaskModel.compute_loss: AUC and RMSE per batch cost time and the
validation pass measures them anyway), so it read `ranking_auc: 0.0000e+00 -
rating_rmse: 0.0000e+00 ...`, which looks like a broken model. This line shows
what each pass really computed: the training losses (total and per task), and
the validation metrics.
"""

from __future__ import annotations

import time

import tensorflow as tf

from mtrec.progress import report

_VAL = "val_"
_LOSS = "_loss"
# Bookkeeping entries of tfrs.Model.train_step, not task losses.
_NOT_TASKS = ("regularization_loss", "total_loss")


def epoch_line(epoch: int, epochs: int, logs: dict[str, float], seconds: float) -> str:
    """`Trainer epoch 3/8: loss 1.234 (weighted; per task: rating 0.810, ...) | val
    rating_rmse 0.951 | 12.3s`."""
    tasks = [
        f"{key[: -len(_LOSS)]} {float(value):.3f}"
        for key, value in sorted(logs.items())
        if key.endswith(_LOSS) and not key.startswith(_VAL) and key not in _NOT_TASKS
    ]
    # The total is the loss_weights' weighted sum (plus regularisation); the parts are
    # each task's own loss: "loss 6.766 (interest 0.093, ...)" did not add up.
    total = f"loss {float(logs['loss']):.3f}" if "loss" in logs else "loss"
    parts = [total + (f" (weighted; per task: {', '.join(tasks)})" if tasks else "")]
    validation = [
        f"{key[len(_VAL):]} {float(value):.3f}"
        for key, value in sorted(logs.items())
        if key.startswith(_VAL) and not key.endswith("loss")
    ]
    if validation:
        parts.append("val " + ", ".join(validation))
    return f"Trainer epoch {epoch}/{epochs}: " + " | ".join([*parts, f"{seconds:.1f}s"])


class EpochLog(tf.keras.callbacks.Callback):
    """Reports `epoch_line` through mtrec.progress (a console line and a bar).

    Each epoch's seconds run from the previous epoch's end (the first from the start of
    fit), so the lines add up to the fit time the summary shows: timed from
    on_epoch_begin, whatever ran between epochs (other callbacks, a new input iterator)
    was in no line, and on a busy machine the lines summed to 243 s of a 335 s fit.
    """

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self._start = time.monotonic()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._start = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.monotonic()
        line = epoch_line(epoch + 1, self.epochs, logs or {}, now - self._start)
        self._start = now
        report(line, done=epoch + 1, total=self.epochs, label="Trainer epochs")
