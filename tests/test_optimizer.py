"""LazyAdam: sparse gradients move only the rows they touch; dense ones get plain Adam."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtrec.models.optimizer import LazyAdam


def _sparse_step(optimizer, table, rows, values):
    grad = tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(rows), tf.constant([5, 2]))
    optimizer.apply_gradients([(grad, table)])


def test_sparse_gradient_moves_only_touched_rows_and_matches_adam_on_them():
    start = np.arange(10, dtype=np.float32).reshape(5, 2)
    lazy_table, dense_table = tf.Variable(start), tf.Variable(start)
    lazy, adam = LazyAdam(0.1), tf.keras.optimizers.Adam(0.1)
    # Row 1 twice in one batch: its gradients add up, as in a dense gradient.
    _sparse_step(lazy, lazy_table, [1, 3, 1], [[1.0, -2.0], [0.5, 0.5], [1.0, 0.0]])
    dense = np.zeros((5, 2), np.float32)
    dense[1], dense[3] = [2.0, -2.0], [0.5, 0.5]
    adam.apply_gradients([(tf.constant(dense), dense_table)])

    moved = lazy_table.numpy()
    np.testing.assert_array_equal(moved[[0, 2, 4]], start[[0, 2, 4]])
    np.testing.assert_allclose(moved, dense_table.numpy(), rtol=1e-6)
    assert not np.allclose(moved[[1, 3]], start[[1, 3]])


def test_untouched_rows_keep_their_moments_between_steps():
    table = tf.Variable(np.zeros((5, 2), np.float32))
    lazy, adam = LazyAdam(0.1), tf.keras.optimizers.Adam(0.1)
    dense_table = tf.Variable(np.zeros((5, 2), np.float32))
    _sparse_step(lazy, table, [0], [[1.0, 1.0]])
    _sparse_step(lazy, table, [2], [[1.0, 1.0]])
    for rows in ([0], [2]):
        g = np.zeros((5, 2), np.float32)
        g[rows] = 1.0
        adam.apply_gradients([(tf.constant(g), dense_table)])
    # Adam keeps moving row 0 on the second step (momentum); LazyAdam does not.
    assert dense_table.numpy()[0, 0] < table.numpy()[0, 0]
    np.testing.assert_array_equal(table.numpy()[[1, 3, 4]], 0.0)
    # By hand (beta 0.9 / 0.999, lr 0.1): one step on a row with gradient 1 leaves
    # m = 0.1, v = 0.001 there, and row 0 keeps them through row 2's step. The
    # steps: 0.1 x sqrt(1 - 0.999) / (1 - 0.9) x 0.1 / sqrt(0.001) = 0.1 at step 1,
    # 0.1 x sqrt(1 - 0.999^2) / (1 - 0.9^2) x 0.1 / sqrt(0.001) = 0.07441 at step 2.
    index = lazy._index_dict[lazy._var_key(table)]
    m, v = lazy._momentums[index].numpy(), lazy._velocities[index].numpy()
    np.testing.assert_allclose(m[[0, 2]], 0.1, rtol=1e-5)
    np.testing.assert_allclose(v[[0, 2]], 0.001, rtol=1e-4)
    np.testing.assert_array_equal(m[[1, 3, 4]], 0.0)
    np.testing.assert_allclose(table.numpy()[[0, 2], 0], [-0.1, -0.07441], rtol=1e-3)


def test_dense_gradients_follow_adam():
    lazy_var, adam_var = tf.Variable([1.0, -1.0]), tf.Variable([1.0, -1.0])
    lazy, adam = LazyAdam(0.05), tf.keras.optimizers.Adam(0.05)
    for g in ([0.3, -0.1], [0.2, 0.4]):
        lazy.apply_gradients([(tf.constant(g), lazy_var)])
        adam.apply_gradients([(tf.constant(g), adam_var)])
    np.testing.assert_allclose(lazy_var.numpy(), adam_var.numpy(), rtol=1e-6)


def test_sparse_update_under_a_distribution_strategy():
    """The Trainer builds its optimizer in a strategy scope (custom_config "distribution")."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        table = tf.Variable(np.ones((4, 2), np.float32))
        lazy = LazyAdam(0.1)

    @tf.function
    def step():
        def replica_step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.gather(table, [2]))
            lazy.apply_gradients([(tape.gradient(loss, table), table)])

        strategy.run(replica_step)

    step()
    moved = table.numpy()
    np.testing.assert_array_equal(moved[[0, 1, 3]], 1.0)
    np.testing.assert_allclose(moved[2], 0.9, rtol=1e-5)  # Adam's first step: lr * sign
