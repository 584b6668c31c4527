"""The reported P(like): the logistic fit by hand, and what the model reports with it."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.artifacts import WEIGHTS_CHECKPOINT
from mtrec.models.config import RATING, RELEVANCE, ModelConfig
from mtrec.models.heads import pair_features
from mtrec.models.like_calibration import IDENTITY, calibrate_likes, fit_logistic, pair_predictions
from mtrec.models.model import MultiTaskModel
from mtrec.models.serving_ops import LIKE, pair_scores
from mtrec.models.weights_file import restore_weights, save_weights
from tests.tiny_model_support import SIZES, rows


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def test_two_values_are_fitted_to_their_own_like_rates():
    """With two distinct inputs the maximum-likelihood fit passes through both like
    rates: sigmoid(-a + b) = 2/10 and sigmoid(a + b) = 6/10, so
    -a + b = ln(0.25) and a + b = ln(1.5)."""
    x = np.array([-1.0] * 10 + [1.0] * 10)
    labels = np.array([1] * 2 + [0] * 8 + [1] * 6 + [0] * 4)
    scale, shift = fit_logistic(x, labels)
    assert np.isclose(scale, (np.log(1.5) - np.log(0.25)) / 2)  # 0.895880
    assert np.isclose(shift, (np.log(1.5) + np.log(0.25)) / 2)  # -0.490415


def test_ratings_far_from_zero_are_fitted_too():
    """Served ratings sit at 1..5, far from the (1, 0) start: ratings 3 and 4 with like
    rates 1/4 and 3/4 give 3a + b = ln(1/3), 4a + b = ln(3), so a = 2 ln 3, b = -7 ln 3."""
    x = np.array([3.0] * 4 + [4.0] * 4)
    labels = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    scale, shift = fit_logistic(x, labels)
    assert np.isclose(scale, 2 * np.log(3)) and np.isclose(shift, -7 * np.log(3))


def test_the_fitted_probabilities_average_to_the_like_rate():
    """The intercept's score equation: sum(p) = sum(y) at the optimum, whatever the input's
    offset (here a head that runs 2 logits low, as one trained on sampled pairs does)."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=5000)
    labels = rng.random(5000) < _sigmoid(z)
    scale, shift = fit_logistic(z - 2.0, labels)
    p = _sigmoid(scale * (z - 2.0) + shift)
    assert abs(p.mean() - labels.mean()) < 1e-9
    assert _sigmoid(z - 2.0).mean() < labels.mean() - 0.2  # uncalibrated before


def test_one_class_or_a_reversing_fit_is_not_fitted():
    x = np.array([-1.0, 0.0, 1.0, 2.0])
    assert fit_logistic(x, np.ones(4)) is None  # implicit feedback: every rating a like
    assert fit_logistic(x, np.zeros(4)) is None
    assert fit_logistic(x, np.array([1, 1, 0, 0])) is None  # would reverse the order
    assert fit_logistic(np.zeros(0), np.zeros(0)) is None


def _model(tasks: tuple[str, ...] = ("retrieval", "relevance", "rating")) -> MultiTaskModel:
    tf.keras.utils.set_random_seed(0)
    config = ModelConfig(embedding_dim=2, optimizer="adam", tasks=tasks, rated_items=False,
                         loss_weights=tuple((t, 1.0) for t in tasks))
    return MultiTaskModel(SIZES, config, np.full(SIZES.items, 0.25, np.float32), 3.5)


def _rows_liked_along(model: MultiTaskModel, key: str) -> dict[str, tf.Tensor]:
    """Five rows whose likes rise with the untrained model's output `key`, not separably:
    0, 1, 0, 1, 1 from the lowest to the highest (the fifth row repeats the fourth's pair)."""
    x = rows(4)
    x = {k: tf.concat([v, v[3:]], axis=0) for k, v in x.items()}
    model(x)
    # Items 1..4 rated 3.0, 3.5, 4.0 and 4.5 give or take the untrained head's 1e-3: a
    # spread like served ratings' (the head alone spreads them by 1e-4, and the fit's
    # 1e5 slope then loses the float32 sums' precision).
    model.item_bias.set_weights([np.array([[0.0], [-0.5], [0.0], [0.5], [1.0]], np.float32)])
    order = np.argsort(model(x)[key].numpy(), kind="stable")
    liked = np.zeros(5, np.int64)
    liked[order] = [0, 1, 0, 1, 1]
    x[F.LIKED_XF] = tf.constant(liked)
    return x


def test_a_model_with_a_rating_head_reports_p_like_from_its_served_rating():
    model = _model()
    x = _rows_liked_along(model, F.OUT_RATING)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(3)
    logits, ratings, labels = pair_predictions(model, dataset)
    served = model(x)[F.OUT_RATING].numpy()
    np.testing.assert_allclose(ratings, served, rtol=1e-6)  # the rating `score` serves
    assert labels.tolist() == x[F.LIKED_XF].numpy().tolist()

    a, b, c = calibrate_likes(model, dataset)
    assert a == 0 and (b, c) == fit_logistic(ratings, labels) and b > 0
    after = model(x)[F.OUT_RELEVANCE].numpy()
    np.testing.assert_allclose(after, _sigmoid(b * served + c), rtol=1e-5)
    assert np.isclose(after.mean(), 0.6, atol=1e-4)  # the like rate of the fitted pairs
    # The blend's input, the head's own logit, is untouched.
    q, cand = model.query_embedding(x), model.candidate_embedding(x)
    raw = model.pair_outputs(q, cand, x[F.USER_IDX], x[F.ITEM_IDX])[RELEVANCE]
    np.testing.assert_allclose(raw.numpy(), logits, rtol=1e-6)


def test_a_model_without_a_rating_head_keeps_the_platt_fit_of_its_logit():
    model = _model(("retrieval", "relevance"))
    x = _rows_liked_along(model, F.OUT_RELEVANCE)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(3)
    logits, _, labels = pair_predictions(model, dataset)
    np.testing.assert_allclose(_sigmoid(logits), model(x)[F.OUT_RELEVANCE].numpy(), rtol=1e-5)

    a, b, c = calibrate_likes(model, dataset)
    assert b == 0 and (a, c) == fit_logistic(logits, labels)
    after = model(x)[F.OUT_RELEVANCE].numpy()
    np.testing.assert_allclose(after, _sigmoid(a * logits + c), rtol=1e-5)
    assert (np.diff(after[np.argsort(logits)]) >= -1e-6).all()  # increasing: the order stays


def test_the_calibration_is_saved_with_the_weights(tmp_path):
    model, x = _model(), rows(2)
    model(x)
    model.like_weights.assign([0.5, 0.25, -1.0])
    model.save_weights(str(tmp_path / "weights"))
    again = _model()
    again(x)
    again.load_weights(str(tmp_path / "weights")).expect_partial()
    np.testing.assert_allclose(again.like_weights.numpy(), [0.5, 0.25, -1.0])


def test_a_model_without_a_relevance_head_is_not_calibrated():
    model = _model(("retrieval",))
    x = rows(2)
    x[F.LIKED_XF] = tf.constant([1, 0], tf.int64)
    assert calibrate_likes(model, tf.data.Dataset.from_tensor_slices(x).batch(2)) == IDENTITY
    np.testing.assert_allclose(model.like_weights.numpy(), IDENTITY)


def test_served_pairs_blend_the_heads_probability_and_report_the_calibrated_one():
    """serving_ops.pair_scores, which `score` and `recommend` use: RELEVANCE (the blend's
    input) is sigmoid(logit), LIKE (what `score` reports) sigmoid(0.5 logit + 0.25 rating
    - 1), with the pair heads run here or their outputs given (the split path recommend
    takes)."""
    model, x = _model(), rows(3)
    model(x)
    model.like_weights.assign([0.5, 0.25, -1.0])
    q, c = model.query_embedding(x), model.candidate_embedding(x)
    logit = model.pair_outputs(q, c, x[F.USER_IDX], x[F.ITEM_IDX])[RELEVANCE].numpy()
    rating = model(x)[F.OUT_RATING].numpy()
    vectors, items = c[tf.newaxis], x[F.ITEM_IDX][tf.newaxis]  # one user, 3 candidates
    heads = model.pair_heads(pair_features(tf.repeat(q[:1], 3, axis=0), c))
    for given in (None, {k: v[tf.newaxis] for k, v in heads.items()}):
        out = pair_scores(model, q[:1], x[F.USER_IDX][:1], vectors, items, given)
        np.testing.assert_allclose(out[RELEVANCE].numpy()[0], _sigmoid(logit), rtol=1e-5)
        np.testing.assert_allclose(out[RATING].numpy()[0], rating, rtol=1e-5)
        np.testing.assert_allclose(out[LIKE].numpy()[0],
                                   _sigmoid(0.5 * logit + 0.25 * rating - 1), rtol=1e-5)


def test_an_earlier_versions_platt_fit_is_restored_in_the_current_form(tmp_path):
    """Weights saved before 2026-12-07 hold [scale, shift] of the logit under
    `like_calibration`; `mtrec add-items` on such a run re-indexes with the same P(like)."""
    model, x = _model(), rows(2)
    model(x)
    model._delete_tracking("like_weights")  # the model as it was
    model.like_calibration = tf.Variable([0.5, -1.0])
    save_weights(model, str(tmp_path))
    saved = dict(tf.train.list_variables(str(tmp_path / WEIGHTS_CHECKPOINT)))
    assert saved["like_calibration/.ATTRIBUTES/VARIABLE_VALUE"] == [2] and not [
        name for name in saved if name.startswith("like_weights")]
    again = _model()
    again(x)
    restore_weights(again, str(tmp_path))
    np.testing.assert_allclose(again.like_weights.numpy(), [0.5, 0.0, -1.0])
    logit = again.pair_outputs(again.query_embedding(x), again.candidate_embedding(x),
                               x[F.USER_IDX], x[F.ITEM_IDX])[RELEVANCE].numpy()
    np.testing.assert_allclose(again(x)[F.OUT_RELEVANCE].numpy(), _sigmoid(0.5 * logit - 1),
                               rtol=1e-5)


def test_the_fit_reads_the_queries_score_serves_from_the_users_profiles():
    """`score` queries a user from their profile (latest history), not a training
    example's history as of that rating; the fit reads the former (on ml-latest-small
    the latter's ratings were sharper, and the fit over-confident: calibration 0.82
    against 0.95)."""
    model = _model()
    x = _rows_liked_along(model, F.OUT_RATING)
    history = np.zeros([SIZES.users, F.HISTORY_LEN], np.int64)
    history[1, :3] = [4, 3, 2]  # user 1's latest items; the examples carry none
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(3)
    _, own, _ = pair_predictions(model, dataset)
    logits, served, _ = pair_predictions(model, dataset, {F.HISTORY_IDX: history})
    profile = {**x, F.HISTORY_IDX: tf.gather(tf.constant(history), x[F.USER_IDX])}
    q, c = model.query_embedding(profile), model.candidate_embedding(x)
    pair = model.pair_outputs(q, c, x[F.USER_IDX], x[F.ITEM_IDX])
    np.testing.assert_allclose(logits, pair[RELEVANCE].numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        served, model.served_rating(pair[RATING], x[F.USER_IDX], x[F.ITEM_IDX]).numpy(),
        rtol=1e-6)
    assert not np.allclose(served, own, rtol=0, atol=1e-7)  # the history reached the query
