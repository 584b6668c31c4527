"""What TFMA's Evaluator wrote, read back for the run's summary and report: the
metrics the summary names, and each failed threshold as a line with its value.

TFMA (TF, Beam) is imported only when an evaluation is read, so the summary and the
report of a run TFMA did not reach never load it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from mtrec.contracts import features as F
from mtrec.contracts.metrics import (
    TFMA_AUC,
    TFMA_CALIBRATION,
    TFMA_KEYS,
    TFMA_MAE,
    TFMA_RMSE,
)

RELEVANCE_AUC = "relevance AUC (like vs not)"
RELEVANCE_CALIBRATION = "relevance calibration (mean P(like) / like rate)"
# (output, TFMA metric key) -> the name the summary and the report show.
TFMA_NAMES = {
    (F.OUT_RATING, TFMA_KEYS[TFMA_RMSE]): "rating RMSE",
    (F.OUT_RATING, TFMA_KEYS[TFMA_MAE]): "rating MAE",
    (F.OUT_RELEVANCE, TFMA_KEYS[TFMA_AUC]): RELEVANCE_AUC,
    (F.OUT_RELEVANCE, TFMA_KEYS[TFMA_CALIBRATION]): RELEVANCE_CALIBRATION,
}


def tfma_failures(evaluation_uri: str) -> list[str]:
    """Each TFMA threshold the model failed, e.g. "rating RMSE change +0.0259 > 0.01"
    (TFMA's own failure messages are empty for change thresholds)."""
    import tensorflow_model_analysis as tfma  # heavy (TF, Beam): only when TFMA ran

    out = []
    for per_slice in tfma.load_validation_result(evaluation_uri).metric_validations_per_slice:
        for failure in per_slice.failures:
            key, bound = failure.metric_key, failure.metric_threshold
            name = TFMA_NAMES.get((key.output_name, key.name), f"{key.output_name} {key.name}")
            value = failure.metric_value.double_value.value
            if key.is_diff:
                change = bound.change_threshold
                lower = change.direction == tfma.MetricDirection.LOWER_IS_BETTER
                limit = f"{'>' if lower else '<'} {change.absolute.value:+g}"
                out.append(f"{name} change {value:+.4f} {limit}")
            else:
                lower_bound = bound.value_threshold.lower_bound
                upper_bound = bound.value_threshold.upper_bound
                limit = (f"< {lower_bound.value:g}" if bound.value_threshold.HasField("lower_bound")
                         and value < lower_bound.value else f"> {upper_bound.value:g}")
                out.append(f"{name} {value:.4f} {limit}")
    return out


def tfma_metrics(evaluation_uri: str) -> dict[str, float | None]:
    """The candidate model's value of each metric in TFMA_NAMES, by its shown name."""
    import tensorflow_model_analysis as tfma  # heavy (TF, Beam): only when TFMA ran

    out: dict[str, float | None] = {}
    for result in tfma.load_metrics(evaluation_uri):
        for kv in result.metric_keys_and_values:
            name = TFMA_NAMES.get((kv.key.output_name, kv.key.name))
            # With a baseline, TFMA also reports the baseline and the diff.
            candidate = kv.key.model_name in ("", "candidate") and not kv.key.is_diff
            if name and candidate and kv.value.HasField("double_value"):
                out[name] = kv.value.double_value.value
    return out


def tfma_values(tfma: Mapping[str, float | None], one_class: str | None) -> str:
    """TFMA's metrics as the summary shows them: a value that is NaN or inf (calibration,
    mean P(like) / like rate, where nothing is liked) reads as undefined, and so does the
    relevance AUC of an eval split of one like class (`one_class`, "only likes (N)":
    data.labels.single_like_class), which TFMA reports as 0 and the pipeline leaves
    unbounded (pipeline/settings.py Thresholds.like_labels)."""
    shown = []
    for name, value in tfma.items():
        if name == RELEVANCE_AUC and one_class:
            shown.append(f"{name}: undefined \u2014 the eval split has {one_class}, so it "
                         "was not bounded; the served-path gate decides")
        elif value is None or not math.isfinite(value):
            shown.append(f"{name}: undefined")
        else:
            shown.append(f"{name} {value:.4f}")
    return ", ".join(shown)


def tfma_failure_lines(failures: list[str], mean_rmse: object) -> list[str]:
    """The TFMA failures as the summary shows them: an RMSE over the bound that is the
    constant's (the ingest report's INGEST_MEAN_RMSE, the RMSE of predicting the
    training mean: pipeline/settings.py) says so, or "> 1.2307" reads as arbitrary."""
    if not isinstance(mean_rmse, float):
        return failures
    constant = f"rating RMSE .* > {re.escape(f'{mean_rmse:g}')}"
    return [f"{line} (predicting every rating as the training mean scores that: the rating "
            "head shows no skill)" if re.fullmatch(constant, line) and "change" not in line
            else line for line in failures]

