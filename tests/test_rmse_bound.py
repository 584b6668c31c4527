"""The RMSE bound is at most that of predicting the training mean: a probe's rating head
trained on shuffled ratings scored 1.2397 against the constant's 1.2307, and the absolute
bound (1.5) passed it. Hand-computed values on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from tensorflow_model_analysis.evaluators import metrics_validator

from mtrec.contracts import features as F
from mtrec.data.examples import write_examples
from mtrec.data.labels import mean_rating_rmse
from mtrec.data.tables import SPLIT, Dataset, empty_malformed, make_items, make_users
from mtrec.pipeline.settings import Thresholds
from mtrec.summary import render
from mtrec.tfma_results import tfma_failure_lines
from tests.test_tfma_gate import _with_baseline


def test_the_constants_rmse_is_the_eval_splits_distance_from_the_train_mean():
    # train 4, 2: mean 3; eval 3, 5: errors 0 and 2, RMSE sqrt((0 + 4) / 2)
    ratings, is_eval = np.array([4.0, 2.0, 3.0, 5.0]), np.array([False, False, True, True])
    assert mean_rating_rmse(ratings, is_eval) == {"mean_rating_rmse": pytest.approx(math.sqrt(2))}
    assert mean_rating_rmse(ratings, np.zeros(4, dtype=bool)) == {}  # no eval rating
    assert mean_rating_rmse(ratings, np.ones(4, dtype=bool)) == {}  # no training rating


def test_the_ingest_report_records_it(tmp_path):
    ratings = pd.DataFrame([("a", "x", 4.0, 10, "train"), ("a", "y", 1.0, 20, "eval"),
                            ("b", "z", 2.0, 30, "train"), ("b", "x", 5.0, 40, "eval")],
                           columns=[F.USER_ID, F.ITEM_ID, F.RATING, F.TIMESTAMP, SPLIT])
    users, items = make_users(pd.Series(["a", "b"])), make_items(pd.Series(["x", "y", "z"]))
    report = write_examples(Dataset("official", ratings, users, items, empty_malformed()),
                            tmp_path)
    assert report["mean_rating_rmse"] == pytest.approx(2.0)  # train mean 3: errors 2, 2


@pytest.mark.parametrize("constant, bound", [
    (1.2307, 1.2307), (2.0, 1.5), (float("nan"), 1.5), (None, 1.5)])
def test_the_rmse_bound_is_at_most_the_constants(constant, bound):
    report = {"rating_values": 5} | ({} if constant is None else {"mean_rating_rmse": constant})
    assert Thresholds().for_ingest_report(report).rating_rmse_max == bound


def test_a_rating_head_no_better_than_the_constant_is_refused():
    thresholds = Thresholds().for_ingest_report({"rating_values": 5, "mean_rating_rmse": 1.2307})
    config, keyed = _with_baseline(thresholds, baseline=False)
    for rmse, failures in ((1.2397, 1), (0.9, 0)):
        values = {k: (rmse if k.name == "root_mean_squared_error" else 0.9) for k in keyed}
        result = metrics_validator.validate_metrics(((), values), config)
        assert sum(len(s.failures) for s in result.metric_validations_per_slice) == failures


def test_the_summary_names_the_constant_behind_the_bound():
    said = ("rating RMSE 1.2397 > 1.2307 (predicting every rating as the training mean scores "
            "that: the rating head shows no skill)")
    assert tfma_failure_lines(["rating RMSE 1.2397 > 1.2307"], 1.2307) == [said]
    # The configured bound, a change bound, or no constant recorded: as TFMA said.
    for line in ("rating RMSE 1.6 > 1.5", "rating RMSE change +0.0300 > +0.01"):
        assert tfma_failure_lines([line], 1.2307) == [line]
    assert tfma_failure_lines(["rating RMSE 1.2397 > 1.2307"], None) == [
        "rating RMSE 1.2397 > 1.2307"]
    data = {"counts": {"total": 2, "kept": 2, "rejected": 0}, "rejects_path": "r.csv",
            "report": {"mean_rating_rmse": 1.2307}}
    lines = render({"components": {}, "pushed_to": None, "data": data,
                    "tfma_failed": ["rating RMSE 1.2397 > 1.2307"]}).splitlines()
    assert f"TFMA gate failed: {said}" in lines
