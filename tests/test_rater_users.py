"""The bag of an item's raters in the candidate tower: hand-computed table, exclusion, pooling."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.models.bags import transpose_bags
from mtrec.models.config import ModelConfig
from mtrec.models.model import MultiTaskModel
from mtrec.models.towers import VocabSizes, pooled_bag

SIZES = VocabSizes(users=4, items=6, genders=2, occupations=2, text_tokens=3,
                   known_users=3, known_items=5)
# users 1 and 2 rated items {1, 2, 3} and {2, 4}; user 3 nothing.
RATED = (np.array([0, 0, 3, 5, 5], np.int64), np.array([1, 2, 3, 2, 4], np.int64))


def _model(**config) -> MultiTaskModel:
    return MultiTaskModel(
        SIZES, ModelConfig(embedding_dim=2, optimizer="adam", rater_users=True, **config),
        np.full(SIZES.items, 1 / 5, np.float32), 3.5, rated=RATED)


def test_transpose_gives_each_item_its_raters():
    splits, users = transpose_bags(*RATED, SIZES.items)
    # item 0: -, 1: {1}, 2: {1, 2}, 3: {1}, 4: {2}, 5: -
    np.testing.assert_array_equal(splits, [0, 0, 1, 3, 4, 5, 5])
    np.testing.assert_array_equal(users, [1, 1, 2, 1, 2])
    back = transpose_bags(splits, users, SIZES.users)
    np.testing.assert_array_equal(back[0], RATED[0])
    np.testing.assert_array_equal(back[1], RATED[1])


def test_transpose_rejects_values_outside_the_table():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        transpose_bags(np.array([0, 2]), np.array([1, 3]), 3)


def test_the_bag_leaves_out_the_rows_own_user_and_dropout_removes_a_share():
    model = _model()
    items = tf.constant([2, 2, 4, 5, 0], tf.int64)
    users = tf.constant([1, 3, 2, 1, 1], tf.int64)
    assert model.rater_bag(items).to_list() == [[1, 2], [1, 2], [2], [], []]
    assert model.rater_bag(items, users).to_list() == [[2], [1, 2], [], [], []]
    assert model.rater_bag(items, users, dropout=1.0).to_list() == [[]] * 5
    tf.random.set_seed(0)
    many = model.rater_bag(tf.fill([2000], tf.constant(2, tf.int64)), dropout=0.25)
    assert many.flat_values.shape[0] / (2 * 2000) == pytest.approx(0.75, abs=0.02)


def _items(idx: list[int]) -> dict:
    n = len(idx)
    return {F.ITEM_IDX: tf.constant(idx, tf.int64),
            F.GENRES_MULTI_HOT: tf.zeros([n, F.GENRE_BUCKETS]),
            F.TITLE_TOKENS: tf.zeros([n, 4], tf.int64),
            F.DESCRIPTION_TOKENS: tf.zeros([n, 4], tf.int64),
            F.YEAR_Z: tf.zeros([n]), F.YEAR_KNOWN: tf.zeros([n])}


def test_the_candidate_adds_the_bag_linearly_and_training_rows_leave_their_user_out():
    model = _model(id_dropout=0.0)
    x = _items([2, 5])
    served = model.candidate_embedding(x).numpy()
    table = model.candidate_tower.rater_embedding
    without = model.candidate_tower({**x, F.RATER_IDX: tf.ragged.constant([[], []], tf.int64)})
    bag = pooled_bag(table, tf.ragged.constant([[1, 2], []], tf.int64))
    np.testing.assert_allclose(served, without + bag, rtol=1e-5, atol=1e-6)
    # A training row (user 1, item 2) reads item 2's other rater only: [[2] / sqrt(1)].
    row = model.candidate_embedding({**x, F.USER_IDX: tf.constant([1, 1], tf.int64)})
    own_out = pooled_bag(table, tf.ragged.constant([[2], []], tf.int64))
    np.testing.assert_allclose(row, without + own_out, rtol=1e-5, atol=1e-6)


def test_a_model_that_reads_raters_needs_the_rated_table():
    with pytest.raises(ValueError, match="rater_users"):
        MultiTaskModel(SIZES, ModelConfig(optimizer="adam", rated_items=False, rater_users=True),
                       np.ones(SIZES.items, np.float32), 3.5)
