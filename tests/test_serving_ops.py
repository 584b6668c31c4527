"""The serving graph's pure pieces against hand-computed values (models/serving_ops.py)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtrec.models import serving_ops as ops


def test_blend_score_by_hand():
    weights = {"retrieval": 0.5, "relevance": 0.3, "rating": 0.2}
    got = ops.blend_score(weights, tf.constant([[0.8, 0.0]]), tf.constant([[0.6, 1.0]]),
                          tf.constant([[4.0, 7.0]]))
    # 0.5*0.8 + 0.3*0.6 + 0.2*(4.0-0.5)/4.5 ; the 7.0 rating clips to 1: 0.3 + 0.2.
    np.testing.assert_allclose(got.numpy(), [[0.4 + 0.18 + 0.2 * 3.5 / 4.5, 0.5]], rtol=1e-6)


def test_exclude_sets_listed_positions_to_neg():
    scores = tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    got = ops.exclude(scores, tf.ragged.constant([[2], [0, 1]], dtype=tf.int64))
    np.testing.assert_array_equal(got.numpy(), [[1, 2, ops.NEG], [ops.NEG, ops.NEG, 6]])


def test_per_user_rows_covers_every_row_across_chunks():
    rows = ops.per_user_rows(300, lambda idx: tf.cast(idx, tf.float32)[:, None] * [1.0, 2.0])
    assert rows.shape == (300, 2) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows[:, 1], 2.0 * np.arange(300))


def test_fits_is_bounded_by_max_cached_floats():
    assert ops.fits(1, ops.MAX_CACHED_FLOATS)
    assert not ops.fits(2, ops.MAX_CACHED_FLOATS // 2 + 1)
