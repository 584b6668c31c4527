"""The served rating's neighbour predictor (models/neighbour_rating.py), hand-computed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.models import neighbour_rating as NR
from mtrec.models import trainer
from mtrec.models.config import ModelConfig
from mtrec.models.model import MultiTaskModel
from mtrec.models.serving_ops import MAX_CACHED_FLOATS
from tests.tiny_model_support import SIZES, rows


def test_equal_ratings_have_no_offsets():
    mu, bu, bi = NR.baselines(np.array([0, 0, 1]), np.array([1, 2, 1]), np.full(3, 4.0), 2, 3)
    assert mu == 4.0
    np.testing.assert_allclose(bu, 0.0)
    np.testing.assert_allclose(bi, 0.0)


def test_offsets_are_the_alternating_ridge_fixed_point():
    users, items = np.array([0, 0, 1, 2]), np.array([0, 1, 0, 1])
    ratings = np.array([5.0, 3.0, 4.0, 1.0])
    mu, bu, bi = NR.baselines(users, items, ratings, 3, 2)
    assert mu == 3.25
    # The last pass set b_u from b_i exactly: b_u = sum(r - mu - b_i) / (10 + n_u).
    np.testing.assert_allclose(bu[0], (5 - 3.25 - bi[0] + 3 - 3.25 - bi[1]) / 12, rtol=1e-9)
    np.testing.assert_allclose(bu[2], (1 - 3.25 - bi[1]) / 11, rtol=1e-9)
    # Converged: b_i = sum(r - mu - b_u) / (25 + n_i) holds for the final b_u too.
    # Item 0 (ratings 5, 4) sits above the mean, item 1 (3, 1) below.
    np.testing.assert_allclose(bi, [(5 - 3.25 - bu[0] + 4 - 3.25 - bu[1]) / 27,
                                    (3 - 3.25 - bu[0] + 1 - 3.25 - bu[2]) / 27], rtol=1e-6)
    np.testing.assert_allclose(bi, [0.08571, -0.08996], atol=1e-5)


def test_shrunk_residual_similarity_by_hand():
    # Users 0 and 1 rated both items (residuals (1, 2) and (-1, -1)); user 2 item 0 only.
    users, items = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 0])
    residuals = np.array([1.0, 2.0, -1.0, -1.0, 3.0])
    s = NR.similarities(users, items, residuals, 3, 2, shrink=1.0)
    # <e0, e1> = 1*2 + (-1)(-1) = 3 over sqrt((1 + 1) * (4 + 1)) (co-raters only: user 2's
    # 3 is left out), shrunk by 2 / (2 + 1).
    np.testing.assert_allclose(s[0, 1], 3 / np.sqrt(10) * 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(s, s.T)
    np.testing.assert_allclose(np.diag(s), 0.0)


def test_similarity_in_row_blocks_is_the_whole_matrix_formula():
    """The blocked float32 fit against s_ij written out for the whole matrix at once."""
    rng = np.random.default_rng(1)
    num_users, num_items = 7, 5
    users, items = np.nonzero(rng.random((num_users, num_items)) < 0.6)
    e = rng.normal(size=len(users))
    dense_e, x = np.zeros((num_users, num_items)), np.zeros((num_users, num_items))
    dense_e[users, items], x[users, items] = e, 1.0
    square = (dense_e ** 2).T @ x
    both = x.T @ x
    expected = (dense_e.T @ dense_e) / (np.sqrt(square * square.T) + 1e-9) * both / (both + 2.0)
    np.fill_diagonal(expected, 0.0)
    for block in (1, 2, 3, 1024):  # blocks that split the 5 rows unevenly, and one block
        s = NR.similarities(users, items, e, num_users, num_items, shrink=2.0, block=block)
        assert s.dtype == np.float32
        np.testing.assert_allclose(s, expected, rtol=1e-6, atol=1e-7)


def test_prediction_is_the_baseline_plus_the_nearest_neighbours_residual():
    rng = np.random.default_rng(0)
    num_users, num_items = 6, 5
    rated = rng.random((num_users, num_items)) < 0.7
    users, items = np.nonzero(rated)  # sorted by user
    ratings = rng.integers(1, 6, len(users)).astype(np.float64)
    splits = np.concatenate([[0], np.cumsum(rated.sum(axis=1))])
    mu, bu, bi = NR.baselines(users, items, ratings, num_users, num_items)
    e = ratings - mu - bu[users] - bi[items]
    s = NR.similarities(users, items, e, num_users, num_items, shrink=2.0)
    table = NR.fit_neighbour_ratings(splits, items, ratings, num_items, 1, 2.0)
    for u in range(num_users):
        mine, errs = items[splits[u]:splits[u + 1]], e[splits[u]:splits[u + 1]]
        for i in range(num_items):
            j = np.argmax(s[i, mine])  # k = 1: only the most similar rated item counts
            expected = mu + bu[u] + bi[i] + (np.sign(s[i, mine[j]]) * errs[j]
                                             if s[i, mine[j]] != 0 else 0.0)
            np.testing.assert_allclose(table[u, i], expected, rtol=1e-5, atol=1e-5)
    # With every rated item as a neighbour: the |s|-weighted mean of the residuals.
    full = NR.fit_neighbour_ratings(splits, items, ratings, num_items, 100, 2.0)
    mine, errs = items[splits[0]:splits[1]], e[splits[0]:splits[1]]
    expected = mu + bu[0] + bi[2] + s[2, mine] @ errs / np.abs(s[2, mine]).sum()
    np.testing.assert_allclose(full[0, 2], expected, rtol=1e-5)


def test_a_user_without_ratings_gets_the_item_baseline():
    splits = np.array([0, 0, 2, 3])  # user 0 rated nothing
    items, ratings = np.array([0, 1, 0]), np.array([5.0, 2.0, 4.0])
    table = NR.fit_neighbour_ratings(splits, items, ratings, 2, 40, 100.0)
    mu, _, bi = NR.baselines(np.array([1, 1, 2]), items, ratings, 3, 2)
    np.testing.assert_allclose(table[0], mu + bi, rtol=1e-6)


def test_the_item_limit_counts_catalogue_items_not_table_rows(monkeypatch):
    """MAX_ITEMS is the README's "up to 15,000 items": the id table's 8 OOV rows and
    padding row do not count (the blend stopped at 14,993 items); past the table's
    cell budget it is off too (ML-1M's users x items)."""
    monkeypatch.setattr(trainer, "NEIGHBOUR_MAX_ITEMS", 3)
    tables = SimpleNamespace(rated_splits=np.array([0, 2, 3]), rated_idx=np.array([1, 2, 3]),
                             rated_ratings=np.array([4.0, 2.0, 5.0]))
    config = ModelConfig(rating_knn_weight=0.4)

    def sizes(known: int) -> SimpleNamespace:
        return SimpleNamespace(known_items=known, items=known + 9)

    fitted = trainer.neighbour_ratings(tables, sizes(3), config)
    assert fitted is not None and fitted.shape == (2, 12)
    assert trainer.neighbour_ratings(tables, sizes(4), config) is None
    assert NR.fit_neighbour_ratings(np.array([0, 1]), np.array([0]), np.array([3.0]),
                                    MAX_CACHED_FLOATS + 1, 40, 100.0) is None




def _model(weight: float) -> MultiTaskModel:
    config = ModelConfig(embedding_dim=2, optimizer="adam", tasks=("retrieval",),
                         rated_items=False, rating_knn_weight=weight)
    table = np.zeros((3, 5), np.float32)
    table[1, 1:4] = [4.0, 2.0, 1.0]
    model = MultiTaskModel(SIZES, config, np.full(SIZES.items, 0.25, np.float32), 3.5,
                           rating_range=(1.0, 5.0), neighbour_ratings=table)
    model(rows(3))  # builds the bias tables
    model.user_bias.set_weights([np.array([[0.0], [0.25], [0.0]], np.float32)])
    model.item_bias.set_weights([np.array([[0.0], [2.0], [-3.0], [0.1], [0.0]], np.float32)])
    return model


def test_served_rating_blends_the_head_with_the_table_then_clips():
    # Head: 3.5 + 0.25 + (2, -3, 0.1) = (5.75, 0.75, 3.85); table row 1: (4, 2, 1).
    # 0.6 * head + 0.4 * table = (5.05, 1.25, 2.71), 5.05 clipped to 5.
    np.testing.assert_allclose(_model(0.4)(rows(3))[F.OUT_RATING], [5.0, 1.25, 2.71],
                               rtol=1e-5)
    # Weight 0: no table kept, the clipped head as before.
    off = _model(0.0)
    assert off.neighbour_ratings is None
    np.testing.assert_allclose(off(rows(3))[F.OUT_RATING], [5.0, 1.0, 3.85], rtol=1e-6)


def test_served_rating_gathers_per_user_and_item_pairs():
    model = _model(1.0)
    head = tf.constant([[3.0, 3.0], [3.0, 3.0]])
    users = tf.constant([[1], [0]], tf.int64)  # broadcast over each row's items
    items = tf.constant([[1, 3], [1, 3]], tf.int64)
    np.testing.assert_allclose(model.served_rating(head, users, items),
                               [[4.0, 1.0], [1.0, 1.0]])  # user 0's row: 0, clipped to 1


def test_config_checks_the_blend_weight():
    with pytest.raises(ValueError, match="rating_knn_weight"):
        ModelConfig.from_dict({"rating_knn_weight": 1.5})
