"""The pair heads' first layer split by input, for `recommend`'s re-rank: fewer FLOPs, same maths.

The heads (models/heads.py, shared_bottom) read [u, i, u*i] for each of a
user's C candidates and start with a Dense layer:
    relu([u, i, u*i] @ K + b) = relu(u @ K_u + (i @ K_i + b) + (u*i) @ K_ui)
The item part i @ K_i + b depends on the item alone, so the export computes it
once per catalogue item (a [N, units] table, both heads side by side), and
u @ K_u is one row per request. A request then multiplies only [C, d] by
[d, units] (u*i) instead of [C, 3d] by [3d, units] per head, and builds no
[C, 3d] concat nor tiled query. On the ML-100K model (C = 100, d = 128) the
heads' first layers, the concat and the tile were ~480 of `recommend`'s
~1,100 us of op time (RunMetadata step stats, one thread). The remaining
layers are the heads' own Keras layers. The sum's order differs from one
matmul's, so scores move by float32 rounding (tests/test_export.py: same ids,
scores within 1e-5).

Only for shared_bottom heads whose first layer is a biased ReLU Dense (MMoE
mixes experts first); the item table is skipped above MAX_CACHED_FLOATS
(the item part is then computed per request, still without the concat).
"""

from __future__ import annotations

from typing import TypeGuard

import numpy as np
import tensorflow as tf

from mtrec.models.heads import PairHeads
from mtrec.models.serving_ops import fits


def splittable(heads: PairHeads | None) -> TypeGuard[PairHeads]:
    if heads is None or heads.mmoe is not None:
        return False
    firsts = [heads.towers[t].layers[0] for t in PairHeads.TASKS]
    return all(isinstance(layer, tf.keras.layers.Dense) and layer.use_bias
               and layer.get_config()["activation"] == "relu" for layer in firsts)


class SplitPairHeads(tf.Module):
    """PairHeads' outputs for [B, C] candidates from the split first layer."""

    def __init__(self, heads: PairHeads, item_vectors: np.ndarray) -> None:
        super().__init__(name="pair_split")
        d = item_vectors.shape[1]
        if not heads.built:
            # A model restored from weights without a forward pass (models/reindex.py) has
            # no head variables yet; creating them here lets the deferred checkpoint
            # restore fill them (tests/test_reindex.py: recommend agrees with score).
            heads(tf.zeros([1, 3 * d]))
        firsts = [heads.towers[t].layers[0] for t in PairHeads.TASKS]
        kernel = np.concatenate([layer.kernel.numpy() for layer in firsts], axis=1)
        bias = np.concatenate([layer.bias.numpy() for layer in firsts])
        self._units = [int(layer.units) for layer in firsts]
        self._rest = [heads.towers[t].layers[1:] for t in PairHeads.TASKS]
        self.k_user = tf.Variable(kernel[:d], trainable=False, name="k_user")
        self.k_pair = tf.Variable(kernel[2 * d:], trainable=False, name="k_pair")
        self.k_item = tf.Variable(kernel[d:2 * d], trainable=False, name="k_item")
        self.bias = tf.Variable(bias, trainable=False, name="bias")
        self.item_part = None
        if fits(len(item_vectors), len(bias)):
            self.item_part = tf.Variable(item_vectors @ kernel[d:2 * d] + bias, trainable=False,
                                         name="item_part")

    def __call__(self, query: tf.Tensor, vectors: tf.Tensor, at: tf.Tensor) -> dict:
        """query [B, d], the candidates' vectors [B, C, d] at catalogue positions
        `at` [B, C] -> {task: [B, C]}, as PairHeads(pair_features(...)) gives."""
        if self.item_part is not None:
            item = tf.gather(self.item_part, at)
        else:
            item = tf.matmul(vectors, self.k_item) + self.bias
        hidden = tf.nn.relu(tf.matmul(query[:, tf.newaxis, :] * vectors, self.k_pair) + item
                            + tf.matmul(query, self.k_user)[:, tf.newaxis, :])
        shape = tf.shape(at)
        out = {}
        for task, part, rest in zip(PairHeads.TASKS, tf.split(hidden, self._units, axis=-1),
                                    self._rest, strict=True):
            x = tf.reshape(part, [-1, part.shape[-1]])
            for layer in rest:
                x = layer(x)
            out[task] = tf.reshape(x, shape)
        return out
