"""The reported P(like) is Platt-scaled: the fit by hand, and what the model reports."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.models.config import RELEVANCE, ModelConfig
from mtrec.models.heads import pair_features
from mtrec.models.like_calibration import IDENTITY, calibrate_likes, fit_platt, relevance_logits
from mtrec.models.model import MultiTaskModel
from mtrec.models.serving_ops import LIKE, pair_scores
from tests.tiny_model_support import SIZES, rows


def test_two_logits_are_fitted_to_their_own_like_rates():
    """With two distinct logits the maximum-likelihood fit passes through both like
    rates: sigmoid(-a + b) = 2/10 and sigmoid(a + b) = 6/10, so
    -a + b = ln(0.25) and a + b = ln(1.5)."""
    logits = np.array([-1.0] * 10 + [1.0] * 10)
    labels = np.array([1] * 2 + [0] * 8 + [1] * 6 + [0] * 4)
    scale, shift = fit_platt(logits, labels)
    assert np.isclose(scale, (np.log(1.5) - np.log(0.25)) / 2)  # 0.895880
    assert np.isclose(shift, (np.log(1.5) + np.log(0.25)) / 2)  # -0.490415


def test_the_fitted_probabilities_average_to_the_like_rate():
    """The intercept's score equation: sum(p) = sum(y) at the optimum, whatever the head's
    offset (here a head that runs 2 logits low, as one trained on sampled pairs does)."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=5000)
    labels = rng.random(5000) < 1 / (1 + np.exp(-z))
    scale, shift = fit_platt(z - 2.0, labels)
    p = 1 / (1 + np.exp(-(scale * (z - 2.0) + shift)))
    assert abs(p.mean() - labels.mean()) < 1e-9
    assert 1 / (1 + np.exp(-(z - 2.0))).mean() < labels.mean() - 0.2  # uncalibrated before


def test_one_class_or_a_reversing_fit_keeps_the_heads_probability():
    logits = np.array([-1.0, 0.0, 1.0, 2.0])
    assert fit_platt(logits, np.ones(4)) == IDENTITY  # implicit feedback: every rating a like
    assert fit_platt(logits, np.zeros(4)) == IDENTITY
    assert fit_platt(logits, np.array([1, 1, 0, 0])) == IDENTITY  # would reverse the order
    assert fit_platt(np.zeros(0), np.zeros(0)) == IDENTITY


def _model() -> MultiTaskModel:
    tf.keras.utils.set_random_seed(0)
    config = ModelConfig(embedding_dim=2, optimizer="adam",
                         tasks=("retrieval", "relevance"), rated_items=False)
    return MultiTaskModel(SIZES, config, np.full(SIZES.items, 0.25, np.float32), 3.5)


def test_the_model_reports_the_calibrated_probability_of_its_heads_logit():
    model, x = _model(), rows(4)
    before = model(x)[F.OUT_RELEVANCE].numpy()
    # Likes that rise with the untrained head's logit, not separably: 0, 1, 0, 1, 1
    # from the lowest to the highest logit (the fifth row repeats the fourth's pair).
    x = {k: tf.concat([v, v[3:]], axis=0) for k, v in x.items()}
    before = np.append(before, before[3])
    liked = np.zeros(5, np.int64)
    liked[np.argsort(before, kind="stable")] = [0, 1, 0, 1, 1]
    x[F.LIKED_XF] = tf.constant(liked)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(3)
    logits, labels = relevance_logits(model, dataset)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), before, rtol=1e-5)  # identity
    assert labels.tolist() == liked.tolist()

    scale, shift = calibrate_likes(model, dataset)
    assert (scale, shift) == fit_platt(logits, labels) != IDENTITY
    after = model(x)[F.OUT_RELEVANCE].numpy()
    np.testing.assert_allclose(after, 1 / (1 + np.exp(-(scale * logits + shift))), rtol=1e-5)
    assert (np.diff(after[np.argsort(logits)]) >= -1e-6).all()  # increasing: the order stays
    assert np.isclose(after.mean(), 0.6, atol=1e-4)  # the like rate of the fitted pairs
    # The blend's input, the head's own logit, is untouched.
    q, c = model.query_embedding(x), model.candidate_embedding(x)
    raw = model.pair_outputs(q, c, x[F.USER_IDX], x[F.ITEM_IDX])[RELEVANCE]
    np.testing.assert_allclose(raw.numpy(), logits, rtol=1e-6)


def test_the_calibration_is_saved_with_the_weights(tmp_path):
    model, x = _model(), rows(2)
    model(x)
    model.like_calibration.assign([0.5, -1.0])
    model.save_weights(str(tmp_path / "weights"))
    again = _model()
    again(x)
    again.load_weights(str(tmp_path / "weights")).expect_partial()
    np.testing.assert_allclose(again.like_calibration.numpy(), [0.5, -1.0])


def test_a_model_without_a_relevance_head_is_not_calibrated():
    config = ModelConfig(embedding_dim=2, optimizer="adam", tasks=("retrieval",),
                         rated_items=False)
    model = MultiTaskModel(SIZES, config, np.full(SIZES.items, 0.25, np.float32), 3.5)
    x = rows(2)
    x[F.LIKED_XF] = tf.constant([1, 0], tf.int64)
    assert calibrate_likes(model, tf.data.Dataset.from_tensor_slices(x).batch(2)) == IDENTITY
    np.testing.assert_allclose(model.like_calibration.numpy(), IDENTITY)


def test_served_pairs_blend_the_heads_probability_and_report_the_calibrated_one():
    """serving_ops.pair_scores, which `score` and `recommend` use: RELEVANCE (the blend's
    input) is sigmoid(logit), LIKE (what `score` reports) sigmoid(0.5 logit - 1), with
    the pair heads run here or their outputs given (the split path recommend takes)."""
    model, x = _model(), rows(3)
    model(x)
    model.like_calibration.assign([0.5, -1.0])
    q, c = model.query_embedding(x), model.candidate_embedding(x)
    logit = model.pair_outputs(q, c, x[F.USER_IDX], x[F.ITEM_IDX])[RELEVANCE].numpy()
    vectors, items = c[tf.newaxis], x[F.ITEM_IDX][tf.newaxis]  # one user, 3 candidates
    heads = model.pair_heads(pair_features(tf.repeat(q[:1], 3, axis=0), c))
    for given in (None, {k: v[tf.newaxis] for k, v in heads.items()}):
        out = pair_scores(model, q[:1], x[F.USER_IDX][:1], vectors, items, given)
        np.testing.assert_allclose(out[RELEVANCE].numpy()[0], 1 / (1 + np.exp(-logit)),
                                   rtol=1e-5)
        np.testing.assert_allclose(out[LIKE].numpy()[0], 1 / (1 + np.exp(-(0.5 * logit - 1))),
                                   rtol=1e-5)
