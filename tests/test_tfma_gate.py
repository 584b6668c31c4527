"""The Evaluator's eval_config says no, through TFMA's own validator, to a candidate whose
metrics moved past a bound, and yes to one inside every bound.

TFX's Evaluator adds the baseline model spec when a baseline exists
(update_eval_config_with_defaults); TFMA keys the thresholds (candidate values and
candidate-minus-baseline diffs) and checks them in metrics_validator.validate_metrics.
These tests feed that validator metric values directly: the thresholds' signs and
directions are what pipeline.py writes, the checking is TFMA's.
"""

from __future__ import annotations

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_validator

from mtrec.contracts import features as F
from mtrec.contracts.metrics import TFMA_KEYS
from mtrec.pipeline import configs
from mtrec.pipeline.pipeline import eval_config
from mtrec.pipeline.settings import Thresholds

# A candidate's values, and how far each moved from the baseline's (candidate - baseline).
GOOD = {
    (F.OUT_RATING, "root_mean_squared_error"): 0.884,
    (F.OUT_RELEVANCE, "auc"): 0.768,
}


def _with_baseline(thresholds: Thresholds, baseline: bool = True) -> tuple[tfma.EvalConfig, list]:
    """The pipeline's eval_config as TFX's Evaluator completes it when a baseline exists
    (`baseline` False: the first run's, without one), and the metric keys TFMA puts
    thresholds on."""
    config = tfma.utils.update_eval_config_with_defaults(
        eval_config(thresholds, baseline=baseline), has_baseline=baseline,
        rubber_stamp=baseline,
    )
    return config, list(
        tfma.metrics.metric_thresholds_from_metrics_specs(config.metrics_specs, eval_config=config)
    )


def _validate(values: dict, diffs: dict, thresholds: Thresholds,
              baseline: bool = True) -> list[tuple[str, str, bool]]:
    """(output, metric, is_diff) of each threshold TFMA reports failed."""
    config, keyed = _with_baseline(thresholds, baseline)
    metrics = {}
    for key in keyed:
        source = diffs if key.is_diff else values
        metrics[key] = source[(key.output_name, key.name)]
    result = metrics_validator.validate_metrics(((), metrics), config)
    return sorted(
        (f.metric_key.output_name, f.metric_key.name, f.metric_key.is_diff)
        for per_slice in result.metric_validations_per_slice
        for f in per_slice.failures
    )


def test_change_thresholds_are_keyed_against_the_baseline():
    """Both change bounds are live once a baseline exists: the candidate has 2 value and
    2 diff thresholds (TFMA also keys the baseline's, and never checks them)."""
    _, keys = _with_baseline(Thresholds())
    candidate = [k for k in keys if k.model_name == "candidate"]
    assert sorted((k.output_name, k.name, k.is_diff) for k in candidate) == [
        (F.OUT_RATING, "root_mean_squared_error", False),
        (F.OUT_RATING, "root_mean_squared_error", True),
        (F.OUT_RELEVANCE, "auc", False),
        (F.OUT_RELEVANCE, "auc", True),
    ]


@pytest.mark.parametrize(
    "rmse_change,auc_change,failed",
    [
        # Inside every bound: a reseed (largest seed pair: +0.005 RMSE, -0.006 AUC).
        (0.005, -0.006, []),
        # The 1-epoch u1 model against the 8-epoch seeds: AUC 0.019-0.022 lower.
        (0.0, -0.019, [(F.OUT_RELEVANCE, "auc", True)]),
        # The 3-epoch u1 model: RMSE +0.027 (AUC -0.009 alone passes).
        (0.027, -0.009, [(F.OUT_RATING, "root_mean_squared_error", True)]),
        # Better on both: RMSE down, AUC up.
        (-0.01, 0.02, []),
    ],
)
def test_default_change_bounds_refuse_a_worse_model(rmse_change, auc_change, failed):
    diffs = {
        (F.OUT_RATING, "root_mean_squared_error"): rmse_change,
        (F.OUT_RELEVANCE, "auc"): auc_change,
    }
    assert _validate(GOOD, diffs, Thresholds()) == failed


def test_the_bounds_are_the_settings_values():
    """A drop just past the configured bound fails, just inside it passes, for the default
    and for a user's --relevance-auc-max-decrease; likewise the RMSE increase."""
    bound = configs.RELEVANCE_AUC_MAX_DECREASE
    still = {(F.OUT_RATING, "root_mean_squared_error"): 0.0}
    auc_fail = [(F.OUT_RELEVANCE, "auc", True)]
    for thresholds, limit in [(Thresholds(), bound),
                              (Thresholds(relevance_auc_max_decrease=0.03), 0.03)]:
        inside = {**still, (F.OUT_RELEVANCE, "auc"): -(limit - 0.001)}
        past = {**still, (F.OUT_RELEVANCE, "auc"): -(limit + 0.001)}
        assert _validate(GOOD, inside, thresholds) == []
        assert _validate(GOOD, past, thresholds) == auc_fail
    rmse = configs.RATING_RMSE_MAX_INCREASE
    past_rmse = {(F.OUT_RATING, "root_mean_squared_error"): rmse + 0.001,
                 (F.OUT_RELEVANCE, "auc"): 0.0}
    assert _validate(GOOD, past_rmse, Thresholds()) == [
        (F.OUT_RATING, "root_mean_squared_error", True)
    ]
    # Value bounds still apply: a candidate below the AUC floor fails without a change.
    low = {**GOOD, (F.OUT_RELEVANCE, "auc"): configs.RELEVANCE_AUC_MIN - 0.01}
    unchanged = {**still, (F.OUT_RELEVANCE, "auc"): 0.0}
    assert _validate(low, unchanged, Thresholds()) == [(F.OUT_RELEVANCE, "auc", False)]


def test_the_value_bounds_refuse_a_candidate_just_past_them() -> None:
    """RMSE just above the ceiling (or AUC just below the floor) is refused even when the
    candidate did not move from the baseline; just inside both passes."""
    unchanged = {(F.OUT_RATING, "root_mean_squared_error"): 0.0, (F.OUT_RELEVANCE, "auc"): 0.0}
    rmse_key = (F.OUT_RATING, "root_mean_squared_error")
    for thresholds, ceiling in [(Thresholds(), configs.RATING_RMSE_MAX),
                                (Thresholds(rating_rmse_max=1.2), 1.2)]:
        inside = {**GOOD, rmse_key: ceiling - 0.01}
        past = {**GOOD, rmse_key: ceiling + 0.01}
        assert _validate(inside, unchanged, thresholds) == []
        assert _validate(past, unchanged, thresholds) == [(*rmse_key, False)]


def test_the_first_run_without_a_baseline_is_gated_by_the_value_bounds_alone() -> None:
    """No baseline model (the first run): no change thresholds, and TFMA's validator still
    blesses a good candidate and refuses one past the value bounds."""
    _, keys = _with_baseline(Thresholds(), baseline=False)
    assert sorted((k.output_name, k.name, k.is_diff) for k in keys) == [
        (F.OUT_RATING, "root_mean_squared_error", False),
        (F.OUT_RELEVANCE, "auc", False),
    ]
    assert _validate(GOOD, {}, Thresholds(), baseline=False) == []
    bad = {(F.OUT_RATING, "root_mean_squared_error"): configs.RATING_RMSE_MAX + 0.01,
           (F.OUT_RELEVANCE, "auc"): configs.RELEVANCE_AUC_MIN - 0.01}
    assert _validate(bad, {}, Thresholds(), baseline=False) == [
        (F.OUT_RATING, "root_mean_squared_error", False),
        (F.OUT_RELEVANCE, "auc", False),
    ]
    # A worse model than some earlier one is not refused here: nothing to compare with.
    worse = {**GOOD, (F.OUT_RELEVANCE, "auc"): GOOD[(F.OUT_RELEVANCE, "auc")] - 0.1}
    assert _validate(worse, {}, Thresholds(), baseline=False) == []


def test_the_contract_tfma_keys_are_tfmas_own_names():
    # The summary and the report read TFMA's results by these keys: every class the
    # eval_config names is in TFMA_KEYS, and its key is what TFMA names the metric
    # (TFMA looks a class up among its own metrics first, then Keras').
    config = eval_config(Thresholds())
    classes = {m.class_name for spec in config.metrics_specs for m in spec.metrics}
    assert classes == set(TFMA_KEYS)
    for class_name, key in TFMA_KEYS.items():
        metric = getattr(tfma.metrics, class_name, None) or getattr(tf.keras.metrics, class_name)
        assert metric().name == key, class_name


def test_one_rating_value_drops_the_rating_and_like_bounds_and_keeps_a_gate():
    """Implicit feedback (every rating one value) has no rating or like labels: TFMA
    reports RMSE 0 and AUC 0, which the bounds would refuse for every model. Its only
    bound is then an example count, which refuses an evaluation that saw nothing."""
    assert Thresholds().for_rating_values(5).rating_labels
    assert Thresholds().for_rating_values(None).rating_labels  # a report without the key
    implicit = Thresholds().for_rating_values(1)
    assert not implicit.rating_labels
    _, keys = _with_baseline(implicit)
    candidate = [k for k in keys if k.model_name == "candidate"]
    assert [(k.output_name, k.name, k.is_diff) for k in candidate] == [
        (F.OUT_RATING, "example_count", False)]
    config, keyed = _with_baseline(implicit)
    for count, failures in ((2569, 0), (0, 1)):
        result = metrics_validator.validate_metrics(
            ((), {key: count for key in keyed}), config)
        assert sum(len(s.failures) for s in result.metric_validations_per_slice) == failures
