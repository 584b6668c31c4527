"""The sparse (top-K) item-item term: against the dense term and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.models import sparse_item_item as S
from mtrec.models.config import ModelConfig
from mtrec.models.item_item import (
    MAX_DENSE_COLUMNS,
    MAX_ITEMS,
    Session,
    dense_item_item,
    fit_item_item,
    item_item_scores,
    rated_columns,
)
from mtrec.models.serving_tables import row_splits

# Users 0 and 1 rated items 1 and 2, user 2 items 1 and 3 (item_idx; 0 is padding).
# With l2 = 1: X'X + I = [[4, 2, 1], [2, 3, 0], [1, 0, 2]], determinant 13, so
# P = [[6, -4, -3], [-4, 7, 2], [-3, 2, 8]] / 13 and B[i, j] = -P[i, j] / P[j, j]:
# B[1] = (0, 4/7, 3/8), B[2] = (2/3, 0, -1/4), B[3] = (1/2, -2/7, 0) over items 1-3.
SPLITS, RATED = row_splits(np.array([0, 0, 1, 1, 2, 2]), 3), np.array([1, 2, 1, 2, 1, 3])


def test_top_1_keeps_each_rows_largest_weight_by_hand():
    neighbours, weights = S.fit_top_k(SPLITS, RATED, num_items=4, l2=1.0, k=1, max_items=9)
    assert neighbours[:, 0].tolist() == [0, 2, 1, 1]
    np.testing.assert_allclose(weights[:, 0], [0, 4 / 7, 2 / 3, 1 / 2], rtol=1e-6)


def test_top_2_keeps_a_negative_weight_by_magnitude_largest_first():
    neighbours, weights = S.fit_top_k(SPLITS, RATED, num_items=4, l2=1.0, k=2, max_items=9)
    assert neighbours[1:].tolist() == [[2, 3], [1, 3], [1, 2]]
    np.testing.assert_allclose(weights[1:], [[4 / 7, 3 / 8], [2 / 3, -1 / 4], [1 / 2, -2 / 7]],
                               rtol=1e-6)


def test_the_cap_fits_the_most_rated_items_only():
    # Items 1 and 2 (rated 3 and 2 times) are fitted; user 2's item 3 is left out:
    # X'X + I = [[4, 2], [2, 3]], P = [[3, -2], [-2, 4]] / 8: B[1, 2] = 1/2, B[2, 1] = 2/3.
    assert S.fitted_items(RATED, 4, max_items=2).tolist() == [1, 2]
    neighbours, weights = S.fit_top_k(SPLITS, RATED, num_items=4, l2=1.0, k=5, max_items=2)
    assert neighbours.shape == (4, 2)
    np.testing.assert_allclose(weights[1:3, 0], [1 / 2, 2 / 3], rtol=1e-6)
    assert neighbours[1, 0] == 2 and neighbours[2, 0] == 1
    assert not weights[3].any() and not weights[0].any()


def test_scores_sum_the_kept_weights_in_catalogue_order_by_hand():
    # Top 1 (above), catalogue order [3, 1, 2]: item 1 is position 1, item 2 position 2.
    neighbours, weights = S.fit_top_k(SPLITS, RATED, num_items=4, l2=1.0, k=1, max_items=9)
    at, kept, rated = S.top_k_in_catalog(neighbours, weights, np.array([3, 1, 2]))
    # Items 1 and 2 receive a kept weight; item 3 none: no evidence (and the outside column).
    assert rated.tolist() == [False, True, True, False]
    module = S.TopKItemItem(at, kept, 3)
    bag = tf.ragged.constant([[2, 3], [], [1]], dtype=tf.int64)
    np.testing.assert_allclose(module.scores(bag),
                               [[0, 2 / 3 + 1 / 2, 0], [0, 0, 0], [0, 0, 4 / 7]], rtol=1e-6)


def test_with_k_at_least_the_items_the_sparse_term_is_the_dense_one():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 12)) < 0.3).astype(np.float64)
    x[:, 0] = 0  # padding
    x[0, 1:] = 1  # every item rated
    users, items = np.nonzero(x)
    splits = row_splits(users, 40)
    catalog_idx = rng.permutation(np.arange(1, 12))
    dense = fit_item_item(splits, items, 12, l2=3.0)[:, catalog_idx]
    sparse, rated = S.served_item_item(splits, items, 12, known_items=S.MAX_ITEMS + 1,
                                       catalog_idx=catalog_idx, l2=3.0, top_k=50,
                                       max_fit_items=100)
    assert isinstance(sparse, S.TopKItemItem) and sparse.weights.shape == (12, 11)
    np.testing.assert_array_equal(rated, rated_columns(items, catalog_idx))
    bag = tf.ragged.constant([[1, 5, 7], [], [11], list(range(1, 12))], dtype=tf.int64)
    np.testing.assert_allclose(S.bag_scores(sparse, bag), item_item_scores(dense, bag),
                               atol=1e-5)


def test_up_to_max_items_the_export_keeps_the_dense_matrix():
    weights, rated = S.served_item_item(SPLITS, RATED, 4, known_items=3,
                                        catalog_idx=np.array([3, 1, 2]), l2=1.0, top_k=1,
                                        max_fit_items=1)
    np.testing.assert_array_equal(weights, fit_item_item(SPLITS, RATED, 4, 1.0)[:, [3, 1, 2]])
    assert rated.tolist() == [True, True, True, False]


def test_a_catalogue_too_wide_for_the_dense_matrix_gets_top_k_rows(monkeypatch):
    """A few rated items in a wide catalogue of unrated ones: the dense B would be
    [id rows, catalogue] (5,000 rated in 25,000: 500 MB), so its width is bounded too."""
    monkeypatch.setattr(S, "dense_item_item", lambda known, catalogue: catalogue <= 3)
    catalog_idx = np.array([3, 1, 2, 5])  # item 5: in the catalogue, never rated
    weights, rated = S.served_item_item(SPLITS, RATED, 6, known_items=3,
                                        catalog_idx=catalog_idx, l2=1.0, top_k=1,
                                        max_fit_items=3)
    assert isinstance(weights, S.TopKItemItem)
    # Top-1 rows (header): B[1] keeps item 2, B[2] and B[3] item 1; item 3 gets none.
    assert rated.tolist() == [False, True, True, False, False]
    assert dense_item_item(MAX_ITEMS, MAX_DENSE_COLUMNS)
    assert not dense_item_item(MAX_ITEMS, MAX_DENSE_COLUMNS + 1)
    assert not dense_item_item(MAX_ITEMS + 1, MAX_ITEMS + 1)


def test_the_session_gram_reaches_the_dense_export_and_is_named_when_top_k_ignores_it(
        caplog):
    times = np.array([0, 0, 0, 86_400, 0, 10**9])
    session = Session(times, 600.0, 0.5)
    weights, _ = S.served_item_item(SPLITS, RATED, 4, known_items=3,
                                    catalog_idx=np.array([1, 2, 3]), l2=1.0, top_k=1,
                                    max_fit_items=1, session=session)
    np.testing.assert_array_equal(weights,
                                  fit_item_item(SPLITS, RATED, 4, 1.0, session)[:, [1, 2, 3]])
    assert not np.allclose(weights, fit_item_item(SPLITS, RATED, 4, 1.0)[:, [1, 2, 3]])
    with caplog.at_level("WARNING", logger=S.__name__):
        S.served_item_item(SPLITS, RATED, 4, known_items=S.MAX_ITEMS + 1,
                           catalog_idx=np.array([1, 2, 3]), l2=1.0, top_k=3,
                           max_fit_items=3, session=session)
    assert "item_item_session_mix 0.5 is ignored" in caplog.text


@pytest.mark.parametrize(("key", "value"), [("item_item_top_k", -1),
                                            ("item_item_max_fit_items", 0)])
def test_a_bad_size_is_a_clear_error(key, value):
    with pytest.raises(ValueError, match=key):
        ModelConfig.from_dict({key: value})


def test_the_top_k_term_is_off_by_default():
    """Chosen on ml-latest-small's validation cut (config.py): the joint model served
    NDCG@10 0.1547 without the term above MAX_ITEMS, 0.1356 with K 400."""
    assert ModelConfig().item_item_top_k == 0


def test_woodbury_with_fewer_users_than_items_gives_the_direct_inverses_weights():
    rng = np.random.default_rng(1)
    x = (rng.random((6, 15)) < 0.4).astype(np.float64)
    x[:, 0] = 0
    x[0, 1:] = 1
    users, items = np.nonzero(x)
    splits = row_splits(users, 6)  # 6 users < 14 items: Woodbury's identity
    neighbours, weights = S.fit_top_k(splits, items, 15, l2=2.0, k=14, max_items=100)
    dense = np.zeros((15, 15), np.float32)
    np.put_along_axis(dense, neighbours.astype(np.int64), weights, axis=1)
    np.testing.assert_allclose(dense, fit_item_item(splits, items, 15, l2=2.0), atol=1e-6)
