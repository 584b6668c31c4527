"""A calibrated P(like) in the served outputs: Platt scaling of the relevance head.

The relevance head learns P(like) over rated pairs and in-batch sampled ones together
(models/model.py), so on rated pairs it runs below the like rate: TFMA's calibration
(mean P(like) / like rate on the eval split) was 0.64 on the sample and 0.40 on
ml-latest-small, and a user reading `score`'s P(like) as a probability was misled.
After training, two numbers are fitted by logistic regression of the liked label on
the head's logit over training pairs, and the reported P(like) is
sigmoid(scale * logit + shift). The map is increasing, so AUC and every ranking stay
as they were; the blend that ranks `recommend` keeps the head's raw output, the one
its weights were chosen for on the validation cut. Measured through `score` on
held-out ratings, mean P(like) / like rate: ML-100K u1.test 0.60 -> 0.92, the sample
0.64 -> 0.86, ml-latest-small 0.38 -> 0.48; short of 1 because training pairs, which
the fit reads, get higher logits than new ones (quality_tuning.md, session 46).
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.artifacts import LIKE_CALIBRATION_IDENTITY
from mtrec.models.config import RELEVANCE
from mtrec.models.model import MultiTaskModel

log = logging.getLogger(__name__)

IDENTITY = LIKE_CALIBRATION_IDENTITY  # (scale, shift): the head's own probability
# Training pairs the fit reads at most: two parameters need few, and a scale run
# (tens of millions of ratings) should not pay a second pass over its data for them.
MAX_FIT_EXAMPLES = 200_000


def fit_platt(logits: np.ndarray, labels: np.ndarray, iterations: int = 50
              ) -> tuple[float, float]:
    """(scale, shift) that maximise the likelihood of the 0/1 `labels` under
    sigmoid(scale * logit + shift), by Newton's method from the identity.

    The identity where it cannot be fitted: one class only (implicit feedback: every
    rating a like, or none), or a fit that is not increasing in the logit, which
    would reverse the head's order.
    """
    x = np.asarray(logits, np.float64).ravel()
    y = np.asarray(labels, np.float64).ravel()
    if x.size == 0 or y.min() == y.max():
        return IDENTITY
    design = np.stack([x, np.ones_like(x)], axis=1)
    w = np.array(IDENTITY)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30.0, 30.0)))
        gradient = design.T @ (p - y)
        hessian = design.T @ (design * (p * (1.0 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    if not np.all(np.isfinite(w)) or w[0] <= 0:
        log.warning("P(like) calibration not fitted (scale %s): the head's own kept", w[0])
        return IDENTITY
    return float(w[0]), float(w[1])


def relevance_logits(model: MultiTaskModel, dataset: tf.data.Dataset,
                     max_examples: int = MAX_FIT_EXAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """The relevance head's logit and the liked label of up to `max_examples` pairs of
    `dataset` (transformed examples, each with its own history: what serving_default
    and TFMA read), in inference mode."""
    # Traced: eager, the towers took 4.8 s of the sample's Trainer (an epoch is 4.5 s);
    # traced, the whole fit takes 3.2 s, most of it reading the shuffled training data.
    @tf.function(reduce_retracing=True)
    def logit(x: dict[str, tf.Tensor]) -> tf.Tensor:
        q = model.query_embedding(x, training=False)
        c = model.candidate_embedding(x, training=False)
        return model.pair_outputs(q, c, x[F.USER_IDX], x[F.ITEM_IDX])[RELEVANCE]

    logits, labels, seen = [], [], 0
    for x in dataset:
        if seen >= max_examples:
            break
        logits.append(logit(x).numpy().ravel())
        labels.append(x[F.LIKED_XF].numpy().ravel())
        seen += len(logits[-1])
    if not logits:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(logits)[:max_examples], np.concatenate(labels)[:max_examples]


def calibrate_likes(model: MultiTaskModel, dataset: tf.data.Dataset) -> tuple[float, float]:
    """Fit the model's like_calibration on `dataset`'s pairs; return (scale, shift).
    A model without a relevance head keeps the identity."""
    if model.pair_heads is None or RELEVANCE not in model.config.tasks:
        return IDENTITY
    logits, labels = relevance_logits(model, dataset)
    fitted = fit_platt(logits, labels)
    model.like_calibration.assign(fitted)
    log.info("P(like) calibration on %d training pairs: scale %.3f, shift %.3f",
             len(logits), *fitted)
    return fitted
