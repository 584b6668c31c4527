"""The reported P(like): a logistic regression of the liked label on the served rating.

The relevance head learns P(like) over rated pairs and in-batch sampled ones together
(models/model.py), so its output mixes "would rate it" with "would like it". It ranks
well inside the blend, but read as a probability for a pair it misleads: TFMA's
calibration (mean P(like) / like rate, held-out ratings) was 0.64 on the sample and
0.40 on ml-latest-small. A Platt fit of its logit on training pairs (sessions 46-52)
took u1.test to 0.92 but ml-latest-small only to 0.50, with 604 of its 20,164
held-out pairs below 1e-6, 128 of them likes: on pairs it has not seen the head's
logit spreads from -26 to +2 (5% below -11.8), mostly on items with few ratings.

The served rating (rating head blended with the item-kNN partner) is trained on
rated pairs alone, and predicts the like label of a held-out pair better than the
head's logit does. So after training two numbers are fitted by logistic regression
of the liked label on the served rating over training pairs, each queried as
`score` queries it (the user's profile: on ml-latest-small, each example's own
history gave sharper ratings and an over-confident fit, calibration 0.82), and the
reported P(like) is sigmoid(b * rating + c). Through the pushed models, held-out
ratings, before -> after (2026-12-07, benchmarks/results/quality_tuning.md,
session 53):

| held-out pairs | like-vs-not AUC | log loss | mean P / like rate |
|---|---|---|---|
| ML-100K u1.test | 0.767 -> 0.818 | 0.601 -> 0.544 | 0.92 -> 0.99 |
| ml-latest-small, time | 0.695 -> 0.793 | 1.328 -> 0.591 | 0.50 -> 0.96 |

`like_weights` holds (a, b, c) of sigmoid(a * logit + b * rating + c): a model
without a rating head keeps the Platt fit of its logit (b = 0), and one that
cannot be fitted the identity (1, 0, 0). The blend that ranks `recommend` keeps
the head's raw output, the one its weights were chosen for on the validation cut.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.artifacts import LIKE_CALIBRATION_IDENTITY
from mtrec.models.config import RATING, RELEVANCE
from mtrec.models.model import MultiTaskModel
from mtrec.models.serving_ops import profile_inputs

log = logging.getLogger(__name__)

IDENTITY = LIKE_CALIBRATION_IDENTITY  # (logit, rating, shift): the head's own probability
# Training pairs the fit reads at most: two parameters need few, and a scale run
# (tens of millions of ratings) should not pay a second pass over its data for them.
MAX_FIT_EXAMPLES = 200_000


def fit_logistic(x: np.ndarray, labels: np.ndarray, iterations: int = 50
                 ) -> tuple[float, float] | None:
    """(scale, shift) that maximise the likelihood of the 0/1 `labels` under
    sigmoid(scale * x + shift), by Newton's method on x standardised, from the constant
    fit (the like rate): from (1, 0) on raw served ratings (1..5, all far from 0) the
    first step overshot and the fit diverged.

    None where it cannot be fitted: one class only (implicit feedback: every rating a
    like, or none), x constant, or a fit that is not increasing in x, which would
    reverse x's order.
    """
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(labels, np.float64).ravel()
    if x.size == 0 or y.min() == y.max() or x.std() == 0:
        return None
    mean, std = x.mean(), x.std()
    design = np.stack([(x - mean) / std, np.ones_like(x)], axis=1)
    rate = y.mean()
    w = np.array([0.0, np.log(rate / (1.0 - rate))])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30.0, 30.0)))
        gradient = design.T @ (p - y)
        hessian = design.T @ (design * (p * (1.0 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    scale, shift = w[0] / std, w[1] - w[0] * mean / std
    if not (np.isfinite(scale) and np.isfinite(shift)) or scale <= 0:
        log.warning("P(like) calibration not fitted (scale %s)", scale)
        return None
    return float(scale), float(shift)


def pair_predictions(model: MultiTaskModel, dataset: tf.data.Dataset,
                     profiles: Mapping[str, np.ndarray] | None = None,
                     max_examples: int = MAX_FIT_EXAMPLES
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The relevance head's logit, the served rating and the liked label of up to
    `max_examples` pairs of `dataset` (transformed examples), in inference mode.

    With `profiles` (ServingTables.profiles: each user's latest history and
    demographics) the query is the one `score` serves, from the user's profile;
    without, the example's own (its history as of that rating: what serving_default
    and TFMA read).
    """
    tables = None if profiles is None else {k: tf.constant(v) for k, v in profiles.items()}

    # Traced: eager, the towers took 4.8 s of the sample's Trainer (an epoch is 4.5 s);
    # traced, the whole fit takes 3.2 s, most of it reading the shuffled training data.
    @tf.function(reduce_retracing=True)
    def predict(x: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        query_inputs = x if tables is None else {**x, **profile_inputs(tables, x[F.USER_IDX])}
        q = model.query_embedding(query_inputs, training=False)
        c = model.candidate_embedding(x, training=False)
        pair = model.pair_outputs(q, c, x[F.USER_IDX], x[F.ITEM_IDX])
        return pair[RELEVANCE], model.served_rating(pair[RATING], x[F.USER_IDX],
                                                    x[F.ITEM_IDX])

    logits, ratings, labels, seen = [], [], [], 0
    for x in dataset:
        if seen >= max_examples:
            break
        head, served = predict(x)
        logits.append(head.numpy().ravel())
        ratings.append(served.numpy().ravel())
        labels.append(x[F.LIKED_XF].numpy().ravel())
        seen += len(logits[-1])
    if not logits:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    logit, rating, label = (np.concatenate(v)[:max_examples] for v in (logits, ratings, labels))
    return logit, rating, label


def calibrate_likes(model: MultiTaskModel, dataset: tf.data.Dataset,
                    profiles: Mapping[str, np.ndarray] | None = None
                    ) -> tuple[float, float, float]:
    """Fit the model's like_weights on `dataset`'s pairs, as `score` serves them with
    `profiles` (pair_predictions); return (a, b, c): on the served rating where the
    model has a rating head, else on the relevance logit. A model without a relevance
    head, or a fit that fails, keeps the identity."""
    tasks = model.config.tasks
    if model.pair_heads is None or RELEVANCE not in tasks:
        return IDENTITY
    logits, ratings, labels = pair_predictions(model, dataset, profiles)
    on_rating = fit_logistic(ratings, labels) if RATING in tasks else None
    if on_rating is not None:
        fitted = (0.0, on_rating[0], on_rating[1])
    else:
        on_logit = fit_logistic(logits, labels)
        fitted = IDENTITY if on_logit is None else (on_logit[0], 0.0, on_logit[1])
    model.like_weights.assign(fitted)
    log.info("P(like) calibration on %d training pairs: logit %.3f, rating %.3f, shift %.3f",
             len(labels), *fitted)
    return fitted
