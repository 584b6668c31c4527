"""The re-ranker's item-item term: EASE's closed form and its scaling, against hand values."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.models.config import ModelConfig
from mtrec.models.item_item import (
    Session,
    cold_item_term,
    fit_item_item,
    item_item_scores,
    item_item_term,
    rated_columns,
    scaled_to,
    session_gram,
)
from mtrec.models.serving_tables import row_splits


def test_two_items_always_rated_together_give_the_hand_computed_weight():
    # Users 0 and 1 rated items 1 and 2 (item_idx); item 3 is never rated.
    # X'X over items {1, 2} = [[2, 2], [2, 2]]; with l2 = 1: P = inv([[3, 2], [2, 3]])
    # = [[3, -2], [-2, 3]] / 5, so B[1, 2] = -P[1, 2] / P[2, 2] = 2 / 3.
    splits = row_splits(np.array([0, 0, 1, 1]), 2)
    weights = fit_item_item(splits, np.array([1, 2, 1, 2]), num_items=4, l2=1.0)
    expected = np.zeros((4, 4), np.float32)
    expected[1, 2] = expected[2, 1] = 2 / 3
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


def test_it_matches_the_textbook_formula_on_a_random_matrix():
    rng = np.random.default_rng(0)
    x = (rng.random((30, 8)) < 0.4).astype(np.float64)
    x[:, 0] = 0  # item_idx 0 is padding: never rated
    x[0, 1:] = 1  # every other item rated at least once
    users, items = np.nonzero(x)
    got = fit_item_item(row_splits(users, 30), items, num_items=8, l2=5.0)
    p = np.linalg.inv(x[:, 1:].T @ x[:, 1:] + 5.0 * np.eye(7))
    b = np.eye(7) - p / np.diag(p)
    np.testing.assert_allclose(got[1:, 1:], b, atol=1e-5)
    assert not got[0].any() and not got[:, 0].any()


def test_the_session_gram_weights_each_co_rating_by_its_time_gap():
    # User 0 rated items 1, 2, 3 at 0 s, 600 s and 10^9 s; user 1 rated 1 and 3 at 0 s.
    # tau 600: C[1, 2] = exp(-600 / 600) (user 0 only), C[1, 3] = exp(-10^9 / 600) + 1
    # = 1 (user 1's gap is 0), C[2, 3] = 0; the diagonal counts raters (2, 1, 2).
    splits = row_splits(np.array([0, 0, 0, 1, 1]), 2)
    got = session_gram(splits, np.array([1, 2, 3, 1, 3]), np.array([0, 600, 10**9, 0, 0]),
                       num_items=4, tau=600.0)
    expected = np.zeros((4, 4))
    expected[1, 1], expected[2, 2], expected[3, 3] = 2, 1, 2
    expected[1, 2] = expected[2, 1] = np.exp(-1.0)
    expected[1, 3] = expected[3, 1] = 1.0
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_b_on_the_session_blend_is_the_textbook_formula_on_that_gram():
    # Two users rate items 1 and 2, one in the same second, one a day apart.
    # X'X = [[2, 2], [2, 2]], C (tau 3600) = [[2, 1 + e^-24], [1 + e^-24, 2]]; at mix
    # 0.5 the Gram is [[2, g], [g, 2]] with g = 1.5 + e^-24 / 2, and with l2 1,
    # P = inv([[3, g], [g, 3]]): B[1, 2] = -P[1, 2] / P[2, 2] = g / 3.
    splits = row_splits(np.array([0, 0, 1, 1]), 2)
    times = np.array([0, 0, 0, 86_400])
    got = fit_item_item(splits, np.array([1, 2, 1, 2]), 3, 1.0, Session(times, 3600.0, 0.5))
    g = 1.5 + np.exp(-24.0) / 2
    np.testing.assert_allclose(got[1, 2], g / 3, rtol=1e-6)
    np.testing.assert_allclose(got[2, 1], g / 3, rtol=1e-6)
    # mix 0 is plain EASE: X'X alone gives 2 / 3 (the test above).
    plain = fit_item_item(splits, np.array([1, 2, 1, 2]), 3, 1.0, Session(times, 3600.0, 0.0))
    np.testing.assert_allclose(plain[1, 2], 2 / 3, rtol=1e-6)


@pytest.mark.parametrize("bad", [{"item_item_session_mix": 1.5},
                                 {"item_item_session_mix": -0.1},
                                 {"item_item_session_tau": 0.0},
                                 {"item_item_cold_weight": -1.0}])
def test_config_checks_the_session_settings(bad):
    (key,) = bad
    with pytest.raises(ValueError, match=f"model config '{key}' must be "):
        ModelConfig.from_dict(bad)


def test_scores_sum_the_bags_rows():
    weights = tf.constant([[0.0, 1.0, 2.0], [3.0, 0.0, 4.0], [5.0, 6.0, 0.0]])
    bag = tf.ragged.constant([[0, 2], [], [1]], dtype=tf.int64)
    np.testing.assert_allclose(item_item_scores(weights, bag),
                               [[5, 7, 2], [0, 0, 0], [3, 0, 4]])


def test_scaling_standardises_over_the_mask_and_takes_the_references_spread():
    reference = tf.constant([[0.0, 2.0, 4.0, 99.0]])  # std over the first three: sqrt(8/3)
    scores = tf.constant([[1.0, 2.0, 3.0, 0.0]])  # mean 2, std sqrt(2/3)
    mask = tf.constant([[True, True, True, False]])
    got = scaled_to(reference, scores, mask).numpy()[0]
    ratio = np.sqrt(8 / 3) / np.sqrt(2 / 3)  # = 2
    np.testing.assert_allclose(got, [-ratio, 0, ratio, -2 * ratio], rtol=1e-5)


def test_items_without_evidence_get_the_rows_mean_and_leave_the_statistics_alone():
    # Items 0 and 1 have training ratings (raw scores 1 and 3: mean 2, std 1); item 2
    # has none (raw 0); position 3 is outside the mask. Reference std over the mask:
    # sqrt(8/3), so the rated items go to -/+ sqrt(8/3) and the unrated one to 0.
    reference = tf.constant([[0.0, 2.0, 4.0, 99.0]])
    scores = tf.constant([[1.0, 3.0, 0.0, 0.0]])
    mask = tf.constant([[True, True, True, False]])
    evidence = tf.constant([True, True, False, False])
    got = scaled_to(reference, scores, mask, evidence).numpy()[0]
    np.testing.assert_allclose(got, [-np.sqrt(8 / 3), np.sqrt(8 / 3), 0.0, 0.0], rtol=1e-5)
    # Without the evidence mask the unrated item's raw 0 lands below every rated item.
    buried = scaled_to(reference, scores, mask).numpy()[0]
    assert buried[2] < buried[0] < 0


def test_rated_columns_mark_catalogue_items_with_training_ratings_and_not_the_outside():
    got = rated_columns(np.array([1, 2, 2, 5]), catalog_idx=np.array([2, 9, 5, 3]))
    np.testing.assert_array_equal(got, [True, False, True, False, False])


def test_an_item_without_ratings_gets_its_own_similarity_deviation_as_its_term():
    # Catalogue of 3: items 0 and 1 rated (raw item-item 1 and 3), item 2 not; the
    # last column is an item outside the catalogue. Similarity [0, 2, 4]: mean 2,
    # std sqrt(8/3). Rated items: standardised over themselves (mean 2, std 1) on
    # that spread; item 2: its similarity minus the mean, 4 - 2; outside: 0.
    got = item_item_term(tf.constant([[0.0, 2.0, 4.0]]), tf.constant([[1.0, 3.0, 0.0]]),
                         tf.constant([True, True, False, False])).numpy()[0]
    np.testing.assert_allclose(got, [-np.sqrt(8 / 3), np.sqrt(8 / 3), 2.0, 0.0], rtol=1e-5)


def test_the_cold_only_term_is_a_cold_items_own_deviation_and_zero_elsewhere():
    # Row mean of the similarity 3: deviations -2, -1, 0, 3; items 0 and 3 are cold.
    similarity = tf.constant([[1.0, 2.0, 3.0, 6.0]])
    got = cold_item_term(similarity, tf.constant([True, False, False, True])).numpy()
    np.testing.assert_allclose(got, [[-2.0, 0.0, 0.0, 3.0]], atol=1e-5)
