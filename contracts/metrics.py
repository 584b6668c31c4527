"""Metric names the blessing thresholds, the evaluators and the summary share."""

from __future__ import annotations

RETRIEVAL_KS = (10, 50, 100)  # HR@K cut-offs of the RetrievalEvaluator
RECOMMEND_K = 10  # the served list the ranking metrics and the relative gates read


def at(metric: str, k: int) -> str:
    """E.g. at("hit_rate", 100) == "hit_rate@100"."""
    return f"{metric}@{k}"


HIT_RATE = "hit_rate"
INTEREST_AUC = "interest_auc"  # the interest head's Keras metric (the summary shows it)
NDCG, PRECISION, RECALL = "ndcg", "precision", "recall"
COVERAGE, NOVELTY = "coverage", "novelty"  # of the served lists (models/evaluation.py)
POPULARITY_PREFIX = "popularity_"
BASELINE_PREFIX = "baseline_"
CHANCE_PREFIX = "chance_"  # a uniformly random order of each user's unseen items
RANKING_METRICS = tuple(at(m, RECOMMEND_K) for m in (NDCG, PRECISION, RECALL))
BEYOND_ACCURACY_METRICS = (at(COVERAGE, RECOMMEND_K), at(NOVELTY, RECOMMEND_K))
# Derived, relative gates: model / popularity - 1, model / chance - 1, and model - last
# pushed model.
NDCG_LIFT = at(NDCG, RECOMMEND_K) + "_lift"
NDCG_CHANCE_LIFT = at(NDCG, RECOMMEND_K) + "_chance_lift"
NDCG_CHANGE = at(NDCG, RECOMMEND_K) + "_change"
# Their standard errors over the eval users (models/evaluation.py): a gate's verdict
# on a few dozen users is mostly noise, and the summary says how much.
STDERR_SUFFIX = "_stderr"
EVAL_USERS = "eval_users"  # how many eval users the RetrievalEvaluator scored
# How many of them have no training rating: a whole-user holdout serves each the new-user
# prior, whatever the model learned, so the gate cannot tell the model from popularity.
EVAL_COLD_USERS = "eval_cold_users"


def threshold_names(ks: tuple[int, ...] = RETRIEVAL_KS) -> set[str]:
    """What a RetrievalEvaluator threshold may bound: HR@K for its ks, the ranking
    metrics and the relative gates (the component and `mtrec run` check the same set)."""
    return ({at(HIT_RATE, k) for k in ks} | set(RANKING_METRICS)
            | {NDCG_LIFT, NDCG_CHANCE_LIFT, NDCG_CHANGE})


# The TFMA metrics the Evaluator computes: the class names its EvalConfig gives and the
# keys TFMA's results and validation failures carry for them (TFMA's rule, CamelCase to
# snake_case, here written out; tests/test_tfma_gate.py pins it against TFMA itself).
TFMA_RMSE, TFMA_MAE = "RootMeanSquaredError", "MeanAbsoluteError"
TFMA_EXAMPLE_COUNT, TFMA_AUC = "ExampleCount", "AUC"
TFMA_CALIBRATION, TFMA_BINARY_ACCURACY = "Calibration", "BinaryAccuracy"
TFMA_KEYS = {
    TFMA_RMSE: "root_mean_squared_error",
    TFMA_MAE: "mean_absolute_error",
    TFMA_EXAMPLE_COUNT: "example_count",
    TFMA_AUC: "auc",
    TFMA_CALIBRATION: "calibration",
    TFMA_BINARY_ACCURACY: "binary_accuracy",
}
