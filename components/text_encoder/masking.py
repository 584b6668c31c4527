"""Seeded BERT masking (80% [MASK], 10% random token, 10% unchanged), stateless.

Why not `keras_nlp.layers.MaskedLMMaskGenerator`: it was the first choice and
works, but it is not reproducible inside tf.data. tf-text's RandomItemSelector
shuffles each row with a *stateful* RandomShuffle inside a `map_fn` whose
iterations run in parallel, so the same seed gave 4 different mask streams in
4 runs (and different pretrained encoders). Eager use is deterministic but costs
~130 ms of CPU per batch. This function keeps the generator's output format and
rules (selection rate, per-row cap, unselectable ids, 80/10/10) with stateless
ops keyed by (seed, batch index), so a seed fixes the whole run.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

TOKEN_IDS = "token_ids"
MASK_POSITIONS = "mask_positions"
MASK_IDS = "mask_ids"
MASK_WEIGHTS = "mask_weights"


def mask_tokens(
    token_ids: tf.Tensor,
    seed: tf.Tensor,
    *,
    vocabulary_size: int,
    mask_token_id: int,
    unselectable_ids: Sequence[int],
    mask_rate: float,
    max_selections: int,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
) -> dict[str, tf.Tensor]:
    """Mask a padded int32 batch [B, L]; `seed` is an int32/int64 [2] stateless seed.

    Returns token_ids [B, L] (masked), mask_positions / mask_ids [B, K] int32 and
    mask_weights [B, K] float32 (1 = a real prediction), K = `max_selections`;
    unused slots have position 0, id 0 and weight 0, as in keras-nlp.
    """
    token_ids = tf.convert_to_tensor(token_ids, tf.int32)
    batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    select_seed, kind_seed, random_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    )
    unselectable = tf.constant(list(unselectable_ids), tf.int32)
    selectable = tf.reduce_all(token_ids[..., None] != unselectable, axis=-1)
    num_selectable = tf.reduce_sum(tf.cast(selectable, tf.float32), axis=-1)
    num_picked = tf.minimum(
        tf.cast(tf.math.ceil(num_selectable * mask_rate), tf.int32), max_selections
    )

    # A random permutation of each row's selectable positions comes first.
    scores = tf.random.stateless_uniform([batch, length], select_seed)
    scores = tf.where(selectable, scores, 2.0)
    order = tf.argsort(scores, axis=-1, stable=True, direction="ASCENDING")
    order = order[:, :max_selections]
    order = tf.pad(order, [[0, 0], [0, max_selections - tf.shape(order)[1]]])
    weights = tf.range(max_selections)[None, :] < num_picked[:, None]
    positions = tf.where(weights, order, 0)
    mask_ids = tf.where(weights, tf.gather(token_ids, positions, batch_dims=1), 0)

    kind = tf.random.stateless_uniform([batch, max_selections], kind_seed)
    random_ids = tf.random.stateless_uniform(
        [batch, max_selections], random_seed, minval=0, maxval=vocabulary_size, dtype=tf.int32
    )
    new_ids = tf.where(
        kind < mask_token_rate,
        mask_token_id,
        tf.where(kind < mask_token_rate + random_token_rate, random_ids, mask_ids),
    )
    rows = tf.broadcast_to(tf.range(batch)[:, None], [batch, max_selections])
    indices = tf.stack([rows, positions], axis=-1)
    masked = tf.tensor_scatter_nd_update(
        token_ids, tf.boolean_mask(indices, weights), tf.boolean_mask(new_ids, weights)
    )
    return {
        TOKEN_IDS: masked,
        MASK_POSITIONS: positions,
        MASK_IDS: mask_ids,
        MASK_WEIGHTS: tf.cast(weights, tf.float32),
    }
