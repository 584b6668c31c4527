"""The like label: its threshold, one rule for the model's preprocessing (a tf.Transform
analyzer's max) and the ingest report (a number), so both label the same ratings; and
what the ingest report's like counts say, read by the pipeline's thresholds, the run
summary and the report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mtrec.contracts.artifacts import (
    INGEST_LIKE_THRESHOLD,
    INGEST_LIKED,
    INGEST_LIKES,
    INGEST_MEAN_RMSE,
    INGEST_NOT_LIKED,
)
from mtrec.contracts.features import LIKED_THRESHOLD
from mtrec.contracts.pipeline import EVAL_SPLIT, TRAIN_SPLIT


def like_threshold(max_training_rating: Any,
                   minimum: Callable[[Any, Any], Any] = min) -> Any:
    """The rating at or above which a rating is a like: LIKED_THRESHOLD, or the highest
    training rating where that is lower (a 1-3 scale: 3; a log of one value, implicit
    feedback: that value, so each interaction is a like). `minimum` takes the two values:
    Python's min for a number, tf.minimum for a tensor (models/preprocessing.py)."""
    return minimum(LIKED_THRESHOLD, max_training_rating)


def single_like_class(report: Mapping[str, Any]) -> str | None:
    """"only likes (N)" or "only dislikes (N)" when the ingest report's eval split holds
    ratings of one like class under the model's threshold (data/examples.like_counts),
    so the relevance AUC is undefined (TFMA reports 0 for it); else None, for a report
    from before the counts too. Read by the pipeline's thresholds, the summary, the report."""
    counts = (report.get(INGEST_LIKES) or {}).get(EVAL_SPLIT) or {}
    liked, not_liked = counts.get(INGEST_LIKED, 0), counts.get(INGEST_NOT_LIKED, 0)
    if liked and not not_liked:
        return f"only likes ({liked:,})"
    if not_liked and not liked:
        return f"only dislikes ({not_liked:,})"
    return None


def like_rule(report: Mapping[str, Any]) -> str:
    """The like label in words, with the threshold the ingest report recorded ("rating
    \u2265 3" on a 1-3 scale), or the rule itself for a report from before it did."""
    threshold = report.get(INGEST_LIKE_THRESHOLD)
    if isinstance(threshold, int | float) and not isinstance(threshold, bool):
        return f"rating \u2265 {threshold:g}"
    return f"rating \u2265 {LIKED_THRESHOLD:g}, or the highest training rating if lower"


def like_counts(ratings: np.ndarray, is_eval: np.ndarray) -> dict[str, Any]:
    """The like threshold the model will use and each split's liked / not-liked counts
    (contracts.artifacts' INGEST_LIKE_THRESHOLD and INGEST_LIKES): the threshold from the
    train split's highest rating, as preprocessing's tft.max over the training examples;
    compared in float32, as the examples hold ratings. No training rating: none."""
    values = np.asarray(ratings, dtype=np.float32)
    train = values[~is_eval]
    if not len(train):
        return {}
    threshold = like_threshold(train.max())
    liked = values >= threshold
    return {
        INGEST_LIKE_THRESHOLD: float(threshold),
        INGEST_LIKES: {split: {INGEST_LIKED: int(np.sum(liked & rows)),
                               INGEST_NOT_LIKED: int(np.sum(~liked & rows))}
                       for split, rows in ((TRAIN_SPLIT, ~is_eval), (EVAL_SPLIT, is_eval))},
    }


def mean_rating_rmse(ratings: np.ndarray, is_eval: np.ndarray) -> dict[str, float]:
    """The eval split's RMSE of the constant that predicts the train split's mean rating
    (contracts.artifacts INGEST_MEAN_RMSE), in float32 as the examples hold ratings;
    nothing without ratings in both splits. A probe's rating head trained on shuffled
    ratings scored 1.2397 against this constant's 1.2307, and the absolute bound (1.5)
    passed it."""
    values = np.asarray(ratings, dtype=np.float32)
    train, held_out = values[~is_eval], values[is_eval]
    if not len(train) or not len(held_out):
        return {}
    return {INGEST_MEAN_RMSE: float(np.sqrt(np.mean((held_out - train.mean()) ** 2)))}
