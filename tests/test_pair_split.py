"""The split first layer (models/pair_split.py) gives PairHeads' outputs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtrec.models.heads import PairHeads, pair_features
from mtrec.models.pair_split import SplitPairHeads, splittable


def test_split_heads_match_the_heads_on_concatenated_pairs():
    rng = np.random.default_rng(0)
    heads = PairHeads(units=(6, 3))
    d, n = 4, 9
    items = rng.standard_normal((n, d)).astype(np.float32)
    query = tf.constant(rng.standard_normal((2, d)).astype(np.float32))
    at = tf.constant([[0, 5, 8], [3, 3, 1]], tf.int64)
    vectors = tf.gather(items, at)
    want = heads(pair_features(tf.repeat(query, 3, axis=0), tf.reshape(vectors, [6, d])))
    got = SplitPairHeads(heads, items)(query, vectors, at)
    for task in PairHeads.TASKS:
        np.testing.assert_allclose(got[task].numpy().ravel(), want[task].numpy(), rtol=1e-5,
                                   atol=1e-6)
    assert float(tf.math.reduce_std(want["rating"])) > 0  # not a constant that always matches


def test_a_hand_computed_first_layer():
    # d = 1, one unit per head, the rest identity-like: relevance = relu(u k_u + i k_i +
    # u i k_ui + b) * 1 + 0. u = 2, i = 3, kernel [1, 1, 1], b = 0.5 -> 2 + 3 + 6 + .5 = 11.5.
    heads = PairHeads(units=(1,))
    heads(tf.zeros([1, 3]))
    for task in PairHeads.TASKS:
        first, last = heads.towers[task].layers
        first.set_weights([np.ones((3, 1), np.float32), np.full(1, 0.5, np.float32)])
        last.set_weights([np.ones((1, 1), np.float32), np.zeros(1, np.float32)])
    items = np.array([[3.0]], np.float32)
    out = SplitPairHeads(heads, items)(tf.constant([[2.0]]), tf.constant([[[3.0]]]),
                                       tf.constant([[0]], tf.int64))
    assert out["relevance"].numpy().tolist() == [[11.5]]


def test_mmoe_heads_are_not_split():
    assert splittable(PairHeads()) and not splittable(PairHeads(mixture="mmoe"))
    assert not splittable(None)
