"""Adam whose cost per step follows the batch, not the embedding tables.

Keras' Adam decays the moments of every row of an embedding table at every
step, even though a batch touches a few hundred rows. At a million users that
full-table update is most of a training step, and it grows with the catalogue,
so training time grew faster than the data (benchmarks/results/scale.md).
`LazyAdam` (the TF-Addons rule) updates only the rows a sparse gradient touches;
dense variables get plain Adam.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


class LazyAdam(tf.keras.optimizers.Adam):
    """Adam with row-sparse updates for `tf.IndexedSlices` gradients.

    A row's moments advance only on steps whose batch touches it, and the bias
    correction uses the global step, as in TF-Addons' LazyAdam. XLA is off:
    de-duplicating the touched rows (`tf.unique`) has a dynamic shape.
    """

    def __init__(
        self,
        learning_rate: float | tf.keras.optimizers.schedules.LearningRateSchedule = 0.001,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "LazyAdam")
        super().__init__(learning_rate, jit_compile=False, **kwargs)

    def update_step(self, gradient: tf.Tensor | tf.IndexedSlices, variable: tf.Variable) -> None:
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        lr = tf.cast(self.learning_rate, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))

        # A row can appear several times in a batch: sum its gradients first,
        # so each touched row is read and written exactly once.
        rows, position = tf.unique(gradient.indices)
        grad = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])

        # Keras 2's optimizer keeps slots by `_var_key` in `_momentums` /
        # `_velocities`, as its own Adam.update_step reads them; there is no public
        # accessor. tests/test_optimizer.py (sparse vs dense Adam) breaks if they move.
        key = self._var_key(variable)
        m = self._momentums[self._index_dict[key]]
        v = self._velocities[self._index_dict[key]]
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * grad
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(grad)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        step_rows = alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon)
        variable.scatter_sub(tf.IndexedSlices(step_rows, rows))

