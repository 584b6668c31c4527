"""Gate edge cases: an eval split of one like class, eval splits that cannot tell models
apart, refusals within noise, and the report's like threshold and push wording.

Pure functions and hand-made data (milliseconds): the like threshold's one rule, the
ingest report's like counts, the TFMA bounds they drop, and the lines the summary and
the report show.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tensorflow_model_analysis.evaluators import metrics_validator

from mtrec.components.retrieval_evaluator.gate_notes import (
    failure_lines,
    failure_tag,
    undecidable,
    within_noise,
)
from mtrec.contracts import features as F
from mtrec.data.examples import write_examples
from mtrec.data.labels import like_counts, like_rule, like_threshold, single_like_class
from mtrec.data.tables import SPLIT, Dataset, empty_malformed, make_items, make_users
from mtrec.pipeline.pipeline import eval_config
from mtrec.pipeline.settings import Thresholds
from mtrec.report.page_evaluation import evaluation_section, tfma_table
from mtrec.report.page_training import epochs_note, heads_table, training_section
from mtrec.summary import not_pushed_reason, render
from mtrec.tfma_results import tfma_values
from tests.test_tfma_gate import _with_baseline

AUC = "relevance AUC (like vs not)"
CALIBRATION = "relevance calibration (mean P(like) / like rate)"


# ----------------------------------------------------------- the like threshold, once
@pytest.mark.parametrize("highest, threshold", [(5.0, 4.0), (4.0, 4.0), (3.0, 3.0), (1.0, 1.0)])
def test_the_like_threshold_is_one_rule_for_numbers_and_tensors(highest, threshold):
    """min(LIKED_THRESHOLD, the highest training rating): preprocessing applies it to
    tft.max, the ingest report to a number."""
    assert like_threshold(highest) == threshold
    assert float(like_threshold(tf.constant(highest), tf.minimum)) == threshold


def _official(rows: list[tuple]) -> Dataset:
    ratings = pd.DataFrame(rows, columns=[F.USER_ID, F.ITEM_ID, F.RATING, F.TIMESTAMP, SPLIT])
    users = make_users(pd.Series(["a"]), pd.Series([30]), pd.Series(["F"]))
    items = make_items(pd.Series(["x", "y", "z"]), pd.Series(["X", "Y", "Z"]))
    return Dataset("official", ratings, users, items, empty_malformed())


def test_the_ingest_report_counts_likes_per_split_under_the_models_threshold(tmp_path):
    """A log of 4s and 5s: every eval rating is a like, and the report says so."""
    report = write_examples(_official([
        ("a", "x", 4.0, 10, "train"), ("a", "y", 5.0, 20, "eval"),
        ("b", "z", 5.0, 30, "train"), ("b", "x", 4.0, 40, "eval")]), tmp_path)
    assert report["like_threshold"] == 4.0
    assert report["likes"] == {"train": {"liked": 2, "not_liked": 0},
                               "eval": {"liked": 2, "not_liked": 0}}
    assert single_like_class(report) == "only likes (2)"
    assert like_rule(report) == "rating \u2265 4"


def test_a_one_to_three_scale_likes_its_top_rating():
    """The highest training rating is 3: 3 is a like, as preprocessing labels it; the
    eval rating 3.5 above the training range is one too."""
    ratings = np.array([1.0, 3.0, 2.0, 2.0, 1.0, 3.5])
    is_eval = np.array([False, False, True, True, True, True])
    counts = like_counts(ratings, is_eval)
    assert counts["like_threshold"] == 3.0
    assert counts["likes"]["eval"] == {"liked": 1, "not_liked": 3}
    assert single_like_class(counts) is None
    assert like_rule(counts) == "rating \u2265 3"
    assert like_counts(ratings, np.ones(6, dtype=bool)) == {}  # no training rating
    dislikes = like_counts(np.array([5.0, 4.0, 2.0, 1.0]), np.array([False, False, True, True]))
    assert single_like_class(dislikes) == "only dislikes (2)"
    # A report from before the counts: no class, and the rule in words.
    assert single_like_class({}) is None
    assert like_rule({}) == "rating \u2265 4, or the highest training rating if lower"


# ------------------------------------------------------------- TFMA's bounds
def test_an_eval_split_of_one_like_class_drops_the_auc_bounds_and_keeps_rmse():
    """AUC over one class is undefined (TFMA reports 0): its value and change bounds
    would refuse every model. The RMSE bounds still refuse a bad rating head."""
    likes_only = {"rating_values": 2, "likes": {"eval": {"liked": 9, "not_liked": 0}}}
    thresholds = Thresholds().for_ingest_report(likes_only)
    assert thresholds.rating_labels and not thresholds.like_labels
    assert Thresholds().for_ingest_report({"rating_values": 5}).like_labels
    assert not Thresholds().for_ingest_report({"rating_values": 1}).rating_labels
    config, keyed = _with_baseline(thresholds)
    assert {(k.output_name, k.name, k.is_diff) for k in keyed} == {
        (F.OUT_RATING, "root_mean_squared_error", False),
        (F.OUT_RATING, "root_mean_squared_error", True)}
    for rmse, failures in ((0.9, 0), (2.0, 1)):
        values = {k: (rmse if not k.is_diff else 0.0) for k in keyed}
        result = metrics_validator.validate_metrics(((), values), config)
        assert sum(len(s.failures) for s in result.metric_validations_per_slice) == failures
    auc_specs = [m for spec in eval_config(thresholds).metrics_specs for m in spec.metrics
                 if m.class_name == "AUC"]
    assert len(auc_specs) == 1 and not auc_specs[0].HasField("threshold")  # still reported


# ------------------------------------------------------ the summary's TFMA line
def _summary_lines(report: dict, tfma: dict) -> list[str]:
    data = {"counts": {"total": 2, "kept": 2, "rejected": 0}, "rejects_path": "r.csv",
            "report": report}
    return render({"components": {}, "pushed_to": None, "data": data,
                   "tfma": tfma}).splitlines()


def test_the_summary_says_the_auc_is_undefined_for_one_like_class_not_zero():
    report = {"rating_values": 2, "likes": {"eval": {"liked": 1596, "not_liked": 0}}}
    tfma = {"rating RMSE": 0.61, AUC: 0.0, CALIBRATION: 0.83}
    assert ("rating/relevance (TFMA, eval split): rating RMSE 0.6100, relevance AUC (like vs "
            "not): undefined \u2014 the eval split has only likes (1,596), so it was not "
            "bounded; the served-path gate decides, relevance calibration (mean P(like) / like "
            "rate) 0.8300") in _summary_lines(report, tfma)
    report["likes"]["eval"] = {"liked": 0, "not_liked": 7}
    line = _summary_lines(report, {**tfma, CALIBRATION: float("nan")})[-3]
    assert "undefined \u2014 the eval split has only dislikes (7)" in line
    assert line.endswith("relevance calibration (mean P(like) / like rate): undefined")


def test_a_nan_calibration_reads_as_undefined():
    assert tfma_values({CALIBRATION: float("nan"), AUC: 0.71}, None) == (
        f"{CALIBRATION}: undefined, {AUC} 0.7100")
    assert tfma_values({CALIBRATION: float("inf")}, None) == f"{CALIBRATION}: undefined"


# ------------------------------------------- the served-path gate: undecidable, noise
THRESHOLDS = {"hit_rate@100": 0.05, "ndcg@10_chance_lift": 0.05, "ndcg@10_change": -0.01,
              "ndcg@10_lift": 0.05}


def test_an_eval_split_where_every_order_scores_the_same_says_so_and_names_the_flag():
    """Every user rated every item: each user's unseen items are the held-out ones, so
    model, popularity and random order all score NDCG@10 1.000 (standard error 0)."""
    metrics = {"ndcg@10": 1.0, "popularity_ndcg@10": 1.0, "chance_ndcg@10": 1.0,
               "ndcg@10_lift": 0.0, "ndcg@10_lift_stderr": 0.0, "ndcg@10_chance_lift": 0.0,
               "ndcg@10_chance_lift_stderr": 0.0, "eval_users": 20, "eval_cold_users": 0}
    failed = {"ndcg@10_chance_lift": [0.0, 0.05], "ndcg@10_lift": [0.0, 0.05]}
    lines = failure_lines(metrics, failed, THRESHOLDS)
    assert lines == [
        "retrieval gate failed: ndcg@10_chance_lift 0.000 < 0.05 (standard error 0.000 over 20 "
        "eval users), ndcg@10_lift 0.000 < 0.05 (standard error 0.000 over 20 eval users)",
        "retrieval gate: the eval split cannot tell this model from a random order or "
        "popularity: every order of each eval user's unseen items scores the same NDCG@10 "
        "(1.000: the model, popularity and a random order alike), as when each user's unseen "
        "items are all held out; to push anyway, --retrieval-thresholds "
        """'{"hit_rate@100": 0.05, "ndcg@10_change": -0.01}'"""]
    assert "no better" not in " ".join(lines)
    one_user = {**metrics, "ndcg@10_lift_stderr": math.nan, "eval_users": 1}
    assert undecidable(one_user, "ndcg@10_lift", 0.05) == undecidable(
        metrics, "ndcg@10_chance_lift", 0.05)
    assert undecidable({**metrics, "ndcg@10_lift_stderr": 0.1}, "ndcg@10_lift", 0.05
                       ).startswith("popularity's NDCG@10 is already 1.000")
    assert not_pushed_reason({"pushed_to": None, "retrieval": {
        "metrics": metrics, "failed": failed}}, {}) == (
        "retrieval ndcg@10_chance_lift 0.000 < 0.05 (the eval split cannot tell models apart); "
        "retrieval ndcg@10_lift 0.000 < 0.05 (the eval split cannot tell models apart)")


def test_a_lift_bound_past_what_ndcg_allows_is_undecidable():
    """ndcg@10_lift >= 0.05 needs popularity's NDCG@10 at most 1/1.05 = 0.952."""
    metrics = {"ndcg@10": 0.99, "popularity_ndcg@10": 0.97, "chance_ndcg@10": 0.4,
               "ndcg@10_lift_stderr": 0.01}
    assert undecidable(metrics, "ndcg@10_lift", 0.05) == (
        "popularity's NDCG@10 is already 0.970, and NDCG@10 is at most 1, so no model scores "
        "5% above it (that needs popularity at most 0.952)")
    assert undecidable({**metrics, "popularity_ndcg@10": 0.95}, "ndcg@10_lift", 0.05) is None
    assert undecidable(metrics, "ndcg@10_chance_lift", 0.05) is None
    assert undecidable(metrics, "hit_rate@100", 0.05) is None


def test_a_model_that_serves_popularity_to_warm_users_is_still_no_better_than_it():
    """Lift 0 with standard error 0 on users with training ratings: the model's own
    verdict, no note (the eval split could tell a better model)."""
    metrics = {"ndcg@10": 0.4, "popularity_ndcg@10": 0.4, "chance_ndcg@10": 0.1,
               "ndcg@10_lift": 0.0, "ndcg@10_lift_stderr": 0.0, "eval_users": 50,
               "eval_cold_users": 3}
    assert failure_lines(metrics, {"ndcg@10_lift": [0.0, 0.05]}, THRESHOLDS) == [
        "retrieval gate failed: ndcg@10_lift 0.000 < 0.05 (standard error 0.000 over 50 eval "
        "users)"]


def test_a_refusal_within_noise_says_so_and_names_the_flag():
    metrics = {"ndcg@10": 0.2, "popularity_ndcg@10": 0.198, "ndcg@10_lift": 0.008,
               "ndcg@10_lift_stderr": 0.025, "eval_users": 20}
    failed = {"ndcg@10_lift": [0.008, 0.05]}
    assert within_noise(metrics, "ndcg@10_lift", 0.008, 0.05)
    # The bound 0.05 lies within 2 standard errors of 0.008; with 0.02 it would not.
    assert not within_noise({**metrics, "ndcg@10_lift_stderr": 0.02}, "ndcg@10_lift",
                            0.008, 0.05)
    assert failure_lines(metrics, failed, THRESHOLDS) == [
        "retrieval gate failed: ndcg@10_lift 0.008 < 0.05 (standard error 0.025 over 20 eval "
        "users: within noise)",
        "retrieval gate: ndcg@10_lift fell short by less than 2 standard errors over 20 eval "
        "users, so the verdict is within noise (more eval users would decide it); to push "
        """anyway, --retrieval-thresholds '{"hit_rate@100": 0.05, "ndcg@10_chance_lift": """
        """0.05, "ndcg@10_change": -0.01}'"""]
    assert failure_tag(metrics, "ndcg@10_lift", 0.008, 0.05) == " (within noise)"
    summary = render({"components": {}, "pushed_to": None, "retrieval": {
        "metrics": {**metrics, "hit_rate@10": 0.1, "popularity_hit_rate@10": 0.1,
                    "precision@10": 0.1}, "failed": failed, "thresholds": THRESHOLDS}})
    assert "so the verdict is within noise" in summary


# ------------------------------------------------------------------- the report
def test_the_report_shows_the_like_threshold_the_run_used():
    metrics = {"eval_relevance_auc": 0.8}
    assert "liked: rating \u2265 3)" in heads_table(metrics, like_rule({"like_threshold": 3.0}))
    assert "liked: rating \u2265 4, or the highest training rating if lower" in heads_table(
        metrics)
    evaluation = {"tfma": [{"output": "relevance", "metric": "auc", "value": 0.7}],
                  "like_rule": "rating \u2265 3"}
    assert "liked: rating \u2265 3)" in evaluation_section(evaluation)


def test_the_report_words_the_last_epoch_by_whether_the_model_was_pushed():
    assert epochs_note(True).startswith("The pushed model is the last epoch's.")
    assert epochs_note(False).startswith("The trained model (not pushed) is the last epoch's.")
    assert epochs_note(None).startswith("The trained model is the last epoch's.")
    worse = {"curves": {"validation": {"rating_rmse": [0.8, 1.0]}}, "pushed": False}
    page = training_section(worse)
    assert "The trained model (not pushed) is the last epoch" in page
    assert "The pushed model" not in page


def test_the_report_shows_an_undefined_auc_and_calibration_not_zero():
    rows = [{"output": "relevance", "metric": "auc", "value": 0.0, "baseline": 0.0,
             "diff": 0.0},
            {"output": "relevance", "metric": "calibration", "value": math.nan,
             "baseline": 0.9, "diff": math.nan}]
    table = tfma_table(rows, "only dislikes (7)")
    assert table.count("undefined") == 5 and "0.0000" not in table
    page = evaluation_section({"tfma": rows, "one_like_class": "only dislikes (7)"})
    assert "The eval split has only dislikes (7): the relevance AUC is undefined" in page


def test_the_reports_retrieval_verdict_says_when_the_eval_split_cannot_tell():
    metrics = {"ndcg@10": 1.0, "popularity_ndcg@10": 1.0, "chance_ndcg@10": 1.0,
               "ndcg@10_lift": 0.0, "ndcg@10_lift_stderr": 0.0, "eval_users": 20}
    page = evaluation_section({"retrieval": {
        "metrics": metrics, "failed": {"ndcg@10_lift": [0.0, 0.05]},
        "thresholds": {"ndcg@10_lift": 0.05}}, "retrieval_blessed": False,
        "tfma_blessed": None})
    assert "the eval split cannot tell this model from popularity" in page
    assert "--retrieval-thresholds &#x27;{}&#x27;" in page


def test_an_auc_stored_as_undefined_reads_as_undefined():
    """summary.json keeps an undefined AUC as null (TFMA's 0 read as an AUC of 0)."""
    assert tfma_values({AUC: None}, None) == f"{AUC}: undefined"
    assert tfma_values({AUC: None}, "only likes (3)").startswith(
        f"{AUC}: undefined \u2014 the eval split has only likes (3)")
