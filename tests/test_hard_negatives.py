"""The relevance head's hard negatives: the EASE candidate pool and the in-batch draw,
against hand-computed values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.models import hard_negatives as H
from mtrec.models.config import ModelConfig
from mtrec.models.model import MultiTaskModel
from mtrec.models.serving_tables import row_splits
from tests.tiny_model_support import SIZES, rows


def _pool(top: int) -> np.ndarray:
    # Users 0 {1, 2}, 1 {1}, 2 {3}; user 3 has no training rows. X'X over items
    # {1, 2} = [[2, 1], [1, 1]], item 3 alone; l2 1: B[1, 2] = 1 / (2 + 1) = 1/3,
    # B[2, 1] = 1 / (1 + 1) = 1/2, B[., 3] = B[3, .] = 0. Unrated scores: user 0:
    # item 3 -> 0; user 1: item 2 -> 1/3, item 3 -> 0; user 2: items 1, 2 -> 0, 0.
    splits = row_splits(np.array([0, 0, 1, 2]), 3)
    return H.candidate_pool(splits, np.array([1, 2, 1, 3]), num_users=4, num_items=4,
                            l2=1.0, top=top)


def test_the_pool_holds_each_users_best_unrated_items():
    pool = _pool(top=1)
    assert pool.shape == (4, 4) and pool.dtype == bool
    np.testing.assert_array_equal(pool[0], [False, False, False, True])  # only 3 unrated
    np.testing.assert_array_equal(pool[1], [False, False, True, False])  # 1/3 beats 0
    assert pool[2, 1] ^ pool[2, 2] and not pool[2, [0, 3]].any()  # a tie: one of them
    assert not pool[3].any()  # no bag, no candidates
    assert not pool[:, 0].any()  # never the unknown item


def test_rated_items_never_enter_the_pool_however_large_top_is():
    pool = _pool(top=10)
    np.testing.assert_array_equal(pool[0], [False, False, False, True])
    np.testing.assert_array_equal(pool[1], [False, False, True, True])
    np.testing.assert_array_equal(pool[2], [False, True, True, False])


def test_no_pool_for_a_catalogue_above_the_dense_limit():
    splits = row_splits(np.array([0]), 1)
    assert H.candidate_pool(splits, np.array([1]), 1, H.MAX_ITEMS + 1, 1.0, 5) is None


def test_the_draw_takes_a_batch_item_from_the_rows_pool():
    pool_rows = tf.constant([[False, False, True, True],   # row 0: items 2, 3
                             [False, False, False, False],  # row 1: none
                             [False, True, False, False]])  # row 2: item 1
    batch_items = tf.constant([1, 2, 3])  # positions 0, 1, 2
    noise = tf.constant([[0.9, 0.1, 0.5],   # in pool: positions 1 (0.1), 2 (0.5) -> 2
                         [0.2, 0.7, 0.3],
                         [0.1, 0.8, 0.9]])  # in pool: position 0 only
    position, found = H.pick_in_batch(pool_rows, batch_items, seed_noise=noise)
    np.testing.assert_array_equal(found.numpy(), [True, False, True])
    assert position.numpy()[0] == 2 and position.numpy()[2] == 0


def test_the_draw_is_uniform_over_the_pool_items_in_the_batch():
    pool_rows = tf.constant([[False, True, True, False]] * 4000)
    batch_items = tf.constant([3, 1, 2, 3] * 1000)  # items 1 and 2 at 1,000 positions each
    position, found = H.pick_in_batch(pool_rows, batch_items)
    picked = tf.gather(batch_items, position).numpy()
    assert found.numpy().all() and set(picked) == {1, 2}
    assert abs(np.mean(picked == 1) - 0.5) < 0.05


@pytest.mark.parametrize("bad", [{"relevance_hard_negatives": -1.0}, {"hard_negative_top": 0}])
def test_the_config_refuses_bad_settings(bad):
    with pytest.raises(ValueError, match="hard_negative"):
        ModelConfig.from_dict(bad)


def test_compute_loss_adds_the_hard_negatives_at_their_weight_by_hand():
    """Relevance alone: per row, its positive (like label), the rolled negative and the
    pool's batch item as a 0-labelled negative at weight w; the mean over all 3B rows."""
    config = ModelConfig(embedding_dim=2, optimizer="adam", tasks=("relevance",),
                         loss_weights=(("relevance", 1.0),), id_dropout=0.0,
                         rated_items=False, relevance_hard_negatives=0.5)
    pool = np.zeros((SIZES.users, SIZES.items), bool)
    pool[1, 3] = True  # user 1's only candidate: item 3 (batch position 2)
    model = MultiTaskModel(SIZES, config, np.full(SIZES.items, 0.25, np.float32), 3.5,
                           hard_negative_pool=pool)
    x = {**rows(3), F.LIKED_XF: tf.constant([1, 0, 1], tf.int64),
         F.RATING_XF: tf.constant([5.0, 2.0, 4.0])}
    loss = float(model.compute_loss(x, training=True))

    q, c = model.query_embedding(x, True), model.candidate_embedding(x, True)
    u, i = x[F.USER_IDX], x[F.ITEM_IDX]
    pos = model.pair_outputs(q, c, u, i)["relevance"].numpy()
    neg = model.pair_outputs(q, tf.roll(c, 1, 0), u, tf.roll(i, 1, 0))["relevance"].numpy()
    hard = model.pair_outputs(q, tf.gather(c, [2, 2, 2]), u,
                              tf.constant([3, 3, 3], tf.int64))["relevance"].numpy()

    def bce(y, z):
        return y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)

    expected = (bce(np.array([1, 0, 1]), pos).sum() + bce(0, neg).sum()
                + 0.5 * bce(0, hard).sum()) / 9
    assert loss == pytest.approx(expected, rel=1e-5)
    off = MultiTaskModel(SIZES, dataclasses.replace(config, relevance_hard_negatives=0.0),
                         np.full(SIZES.items, 0.25, np.float32), 3.5, hard_negative_pool=pool)
    assert off.hard_negative_pool is None
