"""models/answer_cache.py on tiny hand-written tables: which branch a request takes, and
what the cached branch returns (the first k entries of each user's row)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.models.answer_cache import AnswerCache, build_answer_cache, cache_depth

IDS = tf.constant([b"a", b"b", b"c", b"d"])  # catalogue positions 0..3
N = tf.constant(4)


def _cache() -> AnswerCache:
    # Rows 0 (padding), 1, 2; depth 2.
    positions = np.array([[0, 0], [3, 1], [2, 0]])
    scores = np.array([[0.0, 0.0], [0.9, 0.4], [0.7, 0.6]])
    ratings = np.array([[0.0, 0.0], [4.5, 3.0], [4.0, 2.5]])
    return AnswerCache({"item_ids": positions, "scores": scores, "ratings": ratings},
                       "item_ids")


def _computed(k):
    """A stand-in for the computed path, recognisable by its ids and scores."""
    return {"item_ids": tf.fill([1, k], b"computed"), "scores": tf.fill([1, k], -1.0),
            "ratings": tf.fill([1, k], -1.0)}


@tf.function
def _call(cache, user_idx, k):
    return cache.answer_or(user_idx, k, N, IDS, lambda: _computed(k))


def test_cached_rows_are_sliced_to_k_and_anything_else_is_computed():
    cache = _cache()
    assert (cache.depth, cache.last_row) == (2, 2)
    out = _call(cache, tf.constant([2, 1], tf.int64), tf.constant(1))
    assert out["item_ids"].numpy().tolist() == [[b"c"], [b"d"]]
    np.testing.assert_allclose(out["scores"], [[0.7], [0.9]])
    np.testing.assert_allclose(out["ratings"], [[4.0], [4.5]])
    out = _call(cache, tf.constant([1], tf.int64), tf.constant(2))
    assert out["item_ids"].numpy().tolist() == [[b"d", b"b"]]
    np.testing.assert_allclose(out["scores"], [[0.9, 0.4]])
    # k above the depth, a row past the cache (an OOV user), or the padding row.
    for user_idx, k in (([1], 3), ([1, 3], 1), ([0], 1)):
        out = _call(cache, tf.constant(user_idx, tf.int64), tf.constant(k))
        assert out["item_ids"].numpy()[0].tolist() == [b"computed"] * k, (user_idx, k)


def test_the_depth_is_the_largest_k_with_the_minimum_candidate_set():
    # max(100, 4k) candidates: 100 for every k <= 25; never more than the catalogue.
    assert cache_depth(1682, 100) == 25
    assert cache_depth(10, 100) == 10
    assert cache_depth(0, 100) == 0


def test_the_build_stores_each_rows_answer_and_respects_the_cap():
    def answer(idx, k):  # row r's answer: positions r, r+1, ..; scores 10r - j
        j = tf.range(k, dtype=tf.int64)
        pos = (idx[:, None] + j[None, :]) % 4
        score = tf.cast(10 * idx[:, None] - j[None, :], tf.float32)
        return {"item_ids": tf.gather(IDS, pos), "scores": score, "ratings": score / 10}

    def positions_of(ids):
        table = {b"a": 0, b"b": 1, b"c": 2, b"d": 3}
        return tf.constant([[table[i] for i in row] for row in ids.numpy().tolist()])

    cache = build_answer_cache(answer, positions_of, known_users=2, depth=3, max_entries=9)
    tables = {key: table.numpy() for key, table in cache.tables.items()}
    assert tables["item_ids"].tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 0]]
    assert tables["item_ids"].dtype == np.int32
    np.testing.assert_allclose(tables["scores"][2], [20, 19, 18])
    np.testing.assert_allclose(tables["ratings"][1], [1.0, 0.9, 0.8])
    assert build_answer_cache(answer, positions_of, 2, 3, max_entries=8) is None
    assert build_answer_cache(answer, positions_of, 2, 0, max_entries=100) is None


def test_tables_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="alike"):
        AnswerCache({"ids": np.zeros((3, 2)), "scores": np.zeros((3, 1))}, "ids")
