"""The TFRS pieces of the model's loss against values computed by hand on tiny inputs.

Like tensorflow/recommenders' task tests: no training, just the formulas, each
piece configured as models/model.py configures it. tests/test_compute_loss.py
runs the model's own compute_loss on a hand-computed batch.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from mtrec.models.heads import UncertaintyWeighting

NONE = tf.keras.losses.Reduction.NONE


def _retrieval(**kw):
    """Our retrieval loss: per-example softmax cross-entropy (the task's NONE reduction),
    averaged by compute_loss with tf.nn.compute_average_loss (the mean on one replica)."""
    task = tfrs.tasks.Retrieval(
        loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=NONE), **kw)
    return lambda *args, **call_kw: tf.nn.compute_average_loss(task(*args, **call_kw))


def _softmax_ce(logits: np.ndarray) -> float:
    """Mean over rows of -log softmax(row)[row index] (the diagonal is the positive)."""
    logits = np.asarray(logits, np.float64)
    log_z = np.log(np.exp(logits).sum(axis=1))
    return float(np.mean(log_z - np.diag(logits)))


Q = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
C = np.array([[1.0, 1.0], [0.5, -1.0]], np.float32)
# Q C' = [[1, 0.5], [2, -2]]


def test_in_batch_softmax_is_the_diagonal_cross_entropy():
    loss = _retrieval()(Q, C, compute_metrics=False)
    assert float(loss) == pytest.approx(_softmax_ce([[1, 0.5], [2, -2]]), rel=1e-6)


def test_logq_correction_subtracts_log_sampling_probability_per_candidate():
    q = np.array([0.5, 0.25], np.float32)  # column j loses log q_j
    loss = _retrieval()(Q, C, candidate_sampling_probability=q, compute_metrics=False)
    corrected = np.array([[1, 0.5], [2, -2]]) - np.log(q)[None, :]
    assert float(loss) == pytest.approx(_softmax_ce(corrected), rel=1e-6)


def test_accidental_hits_are_masked_out_of_the_softmax():
    ids = np.array([7, 7])  # both rows' positives are the same item
    loss = _retrieval(remove_accidental_hits=True)(Q, C, candidate_ids=ids,
                                                   compute_metrics=False)
    # Each row's other column is the same item, so it leaves the softmax: loss 0.
    assert float(loss) == pytest.approx(0.0, abs=1e-5)


def test_uncertainty_weighting_is_kendalls_formula():
    layer = UncertaintyWeighting(("a", "b"))
    layer.build(None)
    layer.log_vars["a"].assign(0.0)
    layer.log_vars["b"].assign(np.log(2.0))
    total = layer({"a": tf.constant(3.0), "b": tf.constant(4.0)})
    # exp(-0) * 3 + 0  +  exp(-log 2) * 4 + log 2
    assert float(total) == pytest.approx(3.0 + 2.0 + np.log(2.0), rel=1e-6)


def test_pointwise_ranking_loss_with_in_batch_negatives_by_hand():
    """compute_loss's ranking term: positives with their like label, each paired with
    the batch's items rolled by one as a 0-labelled negative (accidental positives
    weighted 0), binary cross-entropy averaged over the weighted rows."""
    task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=NONE))
    pos_logits, neg_logits = np.array([2.0, -1.0]), np.array([0.5, 1.0])
    liked = np.array([1.0, 0.0])
    same = np.array([0.0, 1.0])  # row 1's rolled item is its own: not a negative
    labels = np.concatenate([liked, [0.0, 0.0]])
    weights = np.concatenate([[1.0, 1.0], 1.0 - same])
    logits = np.concatenate([pos_logits, neg_logits])
    loss = tf.nn.compute_average_loss(task(
        labels=labels[:, None], predictions=logits[:, None], sample_weight=weights[:, None],
        compute_metrics=False))

    def bce(y, z):
        return -(y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))

    # As compute_loss reduces: weighted sum over the (global) batch size, 4 rows.
    expected = float(np.sum(weights * bce(labels, logits)) / 4)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
