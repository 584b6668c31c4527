"""The bag of rated items in the query tower: hand-computed pooling, target exclusion, tables."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.models.config import ModelConfig
from mtrec.models.model import MultiTaskModel
from mtrec.models.serving_tables import row_splits
from mtrec.models.towers import VocabSizes, pooled_bag

SIZES = VocabSizes(users=4, items=6, genders=2, occupations=2, text_tokens=3,
                   known_users=3, known_items=5)
# users 1 and 2 rated items {1, 2, 3} and {4}; user 3 nothing.
RATED = (np.array([0, 0, 3, 4, 4], np.int64), np.array([1, 2, 3, 4], np.int64))


def _model(**config) -> MultiTaskModel:
    return MultiTaskModel(SIZES, ModelConfig(embedding_dim=2, optimizer="adam", **config),
                          np.full(SIZES.items, 1 / 5, np.float32), 3.5, rated=RATED)


def test_pooled_bag_is_the_sum_over_the_square_root_of_the_size():
    table = tf.keras.layers.Embedding(4, 2, embeddings_initializer=tf.constant_initializer(
        [[0, 0], [1, 0], [0, 2], [3, 3]]))
    ids = tf.ragged.constant([[1, 2, 3], [3], []], dtype=tf.int64)
    expected = [[4 / np.sqrt(3), 5 / np.sqrt(3)], [3, 3], [0, 0]]
    np.testing.assert_allclose(pooled_bag(table, ids), expected, rtol=1e-6)


def test_row_splits_index_values_sorted_by_row():
    np.testing.assert_array_equal(row_splits(np.array([1, 1, 1, 2]), 4), RATED[0])
    np.testing.assert_array_equal(row_splits(np.array([], np.int64), 2), [0, 0, 0])


def test_the_bag_leaves_out_the_rows_own_item_and_dropout_removes_a_share():
    model = _model()
    users = tf.constant([1, 1, 2, 3, 0], tf.int64)
    items = tf.constant([2, 5, 4, 1, 1], tf.int64)
    assert model.rated_bag(users).to_list() == [[1, 2, 3], [1, 2, 3], [4], [], []]
    assert model.rated_bag(users, items).to_list() == [[1, 3], [1, 2, 3], [], [], []]
    assert model.rated_bag(users, items, dropout=1.0).to_list() == [[]] * 5
    tf.random.set_seed(0)
    many = model.rated_bag(tf.ones([2000], tf.int64), dropout=0.25)
    assert many.flat_values.shape[0] / (3 * 2000) == pytest.approx(0.75, abs=0.02)


def test_the_query_adds_the_bag_linearly_and_a_passed_bag_wins():
    model = _model(id_dropout=0.0)
    x = {F.USER_IDX: tf.constant([1, 3], tf.int64), F.HISTORY_IDX: tf.zeros([2, 20], tf.int64),
         F.AGE_BUCKET: tf.zeros([2], tf.int64), F.GENDER_IDX: tf.zeros([2], tf.int64),
         F.OCCUPATION_IDX: tf.zeros([2], tf.int64)}
    with_bag = model.query_embedding(x).numpy()
    table = model.query_tower.rated_embedding
    without = model.query_tower({**x, F.RATED_IDX: tf.ragged.constant([[], []], tf.int64)})
    bag = pooled_bag(table, tf.ragged.constant([[1, 2, 3], []], tf.int64))
    np.testing.assert_allclose(with_bag, without + bag, rtol=1e-5, atol=1e-6)
    given = {**x, F.RATED_IDX: tf.ragged.constant([[4], [4]], tf.int64)}
    np.testing.assert_allclose(
        model.query_embedding(given),
        without + pooled_bag(table, given[F.RATED_IDX]), rtol=1e-5, atol=1e-6)


def test_a_model_that_reads_bags_needs_them():
    with pytest.raises(ValueError, match="rated"):
        MultiTaskModel(SIZES, ModelConfig(optimizer="adam"), np.ones(SIZES.items, np.float32), 3.5)
