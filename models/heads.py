"""Pair heads (relevance, rating) on top of the towers, and loss balancing.

The pair heads read one shared representation of a (user, item) pair:
[u, i, u*i]. "shared_bottom" feeds it straight to each head's MLP; "mmoe"
puts gated experts in between (Ma et al. 2018), one softmax gate per head.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from mtrec.models.config import RATING, RELEVANCE


def pair_features(query: tf.Tensor, candidate: tf.Tensor) -> tf.Tensor:
    return tf.concat([query, candidate, query * candidate], axis=-1)


class MMoE(tf.keras.layers.Layer):
    """Multi-gate mixture of experts: one mixed representation per task."""

    def __init__(self, num_tasks: int, num_experts: int = 4, expert_units: int = 64,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.experts = [
            tf.keras.layers.Dense(expert_units, activation="relu") for _ in range(num_experts)
        ]
        self.gates = [tf.keras.layers.Dense(num_experts) for _ in range(num_tasks)]

    def call(self, x: tf.Tensor) -> list[tf.Tensor]:
        experts = tf.stack([e(x) for e in self.experts], axis=1)  # [B, E, U]
        mixed = []
        for gate in self.gates:
            weights = tf.nn.softmax(gate(x), axis=-1)[..., tf.newaxis]  # [B, E, 1]
            mixed.append(tf.reduce_sum(experts * weights, axis=1))
        return mixed


class PairHeads(tf.keras.layers.Layer):
    """Relevance logit and rating for (user, item) pairs, shared-bottom or MMoE."""

    TASKS = (RELEVANCE, RATING)

    def __init__(self, mixture: str = "shared_bottom", units: tuple[int, ...] = (128, 64),
                 **kw: Any) -> None:
        super().__init__(**kw)
        if mixture not in ("shared_bottom", "mmoe"):
            raise ValueError(f"mixture must be 'shared_bottom' or 'mmoe', got {mixture!r}")
        self.mmoe = MMoE(len(self.TASKS)) if mixture == "mmoe" else None
        self.towers = {
            task: tf.keras.Sequential(
                [tf.keras.layers.Dense(n, activation="relu") for n in units]
                + [tf.keras.layers.Dense(1)],
                name=f"{task}_head",
            )
            for task in self.TASKS
        }

    def call(self, pair: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs = self.mmoe(pair) if self.mmoe is not None else [pair] * len(self.TASKS)
        return {
            task: tf.squeeze(self.towers[task](x), axis=-1)
            for task, x in zip(self.TASKS, inputs, strict=True)
        }


class UncertaintyWeighting(tf.keras.layers.Layer):
    """Learned task weights (Kendall, Gal & Cipolla 2018): sum exp(-s_t) L_t + s_t."""

    def __init__(self, tasks: tuple[str, ...], **kw: Any) -> None:
        super().__init__(**kw)
        self.log_vars = {
            t: self.add_weight(name=f"log_var_{t}", shape=(), initializer="zeros")
            for t in tasks
        }

    def call(self, losses: dict[str, tf.Tensor]) -> tf.Tensor:
        return tf.add_n(
            [tf.exp(-self.log_vars[t]) * loss + self.log_vars[t] for t, loss in losses.items()]
        )
