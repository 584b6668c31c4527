"""The report's Training section: the Trainer's table, curves, per-task losses and weights.

Every number here is the model's heads' own, as Keras measures them while training
(the raw rating head, the relevance head over rated and sampled pairs). The served
outputs TFMA measures (page_evaluation.py) differ from them, and each section says which
it shows, so a rating RMSE of 0.720 here and 0.682 there do not read as a contradiction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mtrec.contracts.artifacts import (
    CATALOG_SIZE,
    EVAL_METRIC_PREFIX,
    LIKE_CALIBRATION,
    TRAIN_EXAMPLES,
    TRAIN_SECONDS,
    TRAINED_EPOCHS,
    TRAINED_OPTIMIZER,
)
from mtrec.contracts.pipeline import TRAINER
from mtrec.data.labels import like_rule
from mtrec.report import charts
from mtrec.report.markup import escape, img, like_fit, missing, num, stopped_note, table
from mtrec.report.schema import TrainingSection
from mtrec.summary import training_time

NOT_TASK_LOSSES = ("regularization_loss", "total_loss")  # in the logs next to the tasks'

def heads_note(like: str) -> str:
    """What the heads' own metrics are, said next to them (models/model.py compute_loss
    and served_rating): the served rating and P(like) of the Evaluation section differ.
    `like` is the like label the run used, in words (data.labels.like_rule)."""
    return (
        "These are the heads' own metrics on the eval split, as Keras measures them while "
        "training: rating_rmse and rating_mae of the raw rating head (the served rating "
        "blends it with a neighbour predictor and clips it to the rating range); "
        f"relevance_auc over each rated pair (liked: {like}) and one sampled pair per "
        "rated one (another item of the batch, labelled not liked). The Evaluation "
        "section's TFMA metrics are the served outputs' on rated pairs only, so they differ."
    )


def worse_at_the_end(val: Mapping[str, Sequence[float]], slack: float = 0.02) -> list[str]:
    """A note per validation metric or loss whose last epoch is worse than its best by more
    than `slack` (relative): the pushed model is the last epoch's, so a user should know
    (ml-latest-small: rating RMSE 0.857 at epoch 2, 0.953 at epoch 8)."""
    notes = []
    for name, values in val.items():
        if len(values) < 2 or not any(values) or name in NOT_TASK_LOSSES:
            continue  # the regularization loss grows with the weights: no sign of overfitting
        higher = "auc" in name
        best = max(values) if higher else min(values)
        last = values[-1]
        if abs(best) > 0 and (best - last if higher else last - best) > slack * abs(best):
            epoch = values.index(best) + 1
            notes.append(f"validation {name} was best at epoch {epoch} ({best:.4f}) and ends "
                         f"at {last:.4f} (epoch {len(values)})")
    return notes


# Said under the curves when a validation curve ends worse than its best. They are the
# heads' own numbers, not the served lists, and the two part ways (quality_tuning.md,
# session 29: ml-latest-small's validation cut, rating RMSE worst at 8 epochs while
# served NDCG@10 rose 0.123 / 0.142 / 0.154 at 2 / 4 / 8), so the note sends the user
# to the served comparison instead of advising fewer epochs.
EPOCHS_NOTE = (
    "These are the heads' own losses and metrics "
    "on the eval split, not the served lists, and the two can part ways: on ml-latest-small "
    "these curves worsen after epoch 1-4 while served NDCG@10 still rises up to 8 epochs. "
    "To try fewer, run again with --epochs N: the Evaluation section then compares the "
    "new model's served NDCG@10 and TFMA metrics with the last pushed model's, and one "
    "worse by more than the change thresholds is not pushed."
)


def epochs_note(pushed: bool | None) -> str:
    """EPOCHS_NOTE after which model is the last epoch's: the pushed one, or, when the run
    pushed nothing (a gate refused it), the trained one; None: not recorded."""
    model = ("The trained model" if pushed is None
             else "The pushed model" if pushed else "The trained model (not pushed)")
    return f"{model} is the last epoch's. {EPOCHS_NOTE}"


def heads_table(metrics: Mapping[str, object], like: str | None = None) -> str:
    """The Trainer's final evaluation on the eval split (metrics[eval_<name>]), losses left
    out: the numbers the per-task validation curves end at, written out. `like`: the like
    label in words (data.labels.like_rule); None, the rule without the run's threshold."""
    values = {name.removeprefix(EVAL_METRIC_PREFIX): value for name, value in metrics.items()
              if name.startswith(EVAL_METRIC_PREFIX) and not name.endswith("loss")
              and isinstance(value, float) and math.isfinite(value)}
    if not values:
        return ""
    return ("<p>the heads' own metrics, eval split (Keras, after the last epoch):</p>"
            + table(list(values), [[num(v) for v in values.values()]])
            + f'<p class="muted">{escape(heads_note(like or like_rule({})))}</p>')


def training_section(training: TrainingSection, stopped: Mapping[str, str] | None = None
                     ) -> str:
    metrics = training.get("metrics")
    curves = training.get("curves") or {}
    config = training.get("config")
    if stopped and TRAINER in stopped and not (metrics or curves or config):
        return stopped_note("training results", TRAINER, stopped)
    out = []
    if metrics:
        out.append(table(["examples", "epochs", "optimizer", "time", "catalogue",
                          "P(like) calibration"], [[
            num(metrics.get(TRAIN_EXAMPLES)), num(metrics.get(TRAINED_EPOCHS)),
            num(metrics.get(TRAINED_OPTIMIZER)),
            training_time(metrics) if TRAIN_SECONDS in metrics else "–",
            num(metrics.get(CATALOG_SIZE)), like_fit(metrics.get(LIKE_CALIBRATION))]]))
        out.append(heads_table(metrics, training.get("like_rule")))
    train, val = curves.get("train") or {}, curves.get("validation") or {}
    losses = {f"{phase} {name}": values
              for phase, series in (("train", train), ("validation", val))
              for name, values in series.items() if name == "loss"}
    out.append(img(charts.curves("loss per epoch (weighted sum of task losses)", losses,
                                  "loss"), "loss curves") if losses else missing("loss curves"))
    per_task = {name: values for name, values in val.items()
                if not name.endswith("loss") and any(values)}
    out.append(img(charts.curves("validation metric per task, per epoch (the heads' own)",
                                  per_task, "AUC: higher is better\nRMSE, MAE: lower is better"),
                    "per-task validation curves") if per_task
               else missing("per-task validation metrics"))
    worse = worse_at_the_end(val)
    if worse:
        out.append('<p class="warn">' + escape("; ".join(worse) + ". "
                                                + epochs_note(training.get("pushed"))) + "</p>")
    # The model tracks each task's unweighted loss (`<task>_loss`, train and validation),
    # and the regularization and total losses, which are no task's (left out).
    task_losses = {f"{phase} {name.removesuffix('_loss')}": values
                   for phase, series in (("train", train), ("validation", val))
                   for name, values in series.items()
                   if name.endswith("_loss") and name not in NOT_TASK_LOSSES and any(values)}
    if task_losses:
        out.append(img(charts.curves("loss per task, per epoch (unweighted)", task_losses,
                                     "loss", log=True), "per-task loss curves"))
    elif losses:  # curves of a model trained before per-task losses were logged
        out.append(missing("per-task losses (models trained before they were tracked)"))
    else:
        out.append(missing("per-task losses"))
    if config:
        tasks = config.get("tasks") or list(config["loss_weights"])  # a task left out: no bar
        weights = {t: w for t, w in config["loss_weights"].items() if t in tasks}
        out.append(img(charts.loss_weights(weights), "loss weights"))
        if config.get("uncertainty_weighting"):
            out.append(missing("learned uncertainty weights"))
        else:
            out.append("<p>uncertainty weighting: off (fixed weights above)</p>")
    else:
        out.append(missing("loss weights (the Trainer's saved config)"))
    return "".join(out)
