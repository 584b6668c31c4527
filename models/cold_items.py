"""Collaborative evidence for items without training ratings, borrowed from text neighbours.

An item that no one rated in training (a cold item) reaches the candidate tower
as an out-of-vocabulary id with its genres, title tokens, year and text vector;
every warm item's vector was shaped by its ratings. The candidate tower maps the
text through one learned projection, which leaves a cold item's vector far from
the warm items users actually rate. Here a cold item's vector is blended with
the similarity-weighted mean of the vectors of its `k` nearest warm items in the
text encoder's space (cosine on the centred text vectors, models/item_text.py):

    v_cold <- (1 - w) * v_cold + w * sum_j s_j v_j / sum_j s_j,   s_j = max(cos, 0)

over the k warm items j most similar to it. Computed once at export for the
catalogue's cold items (the stored item vectors feed retrieval, recommend, score
and the answer cache alike) and in `embed_new_item` for a brand-new item's text.
ModelConfig.cold_item_neighbours / cold_item_neighbour_weight; the validated
numbers are in ModelConfig's comment.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_BATCH = 4096  # cold rows per similarity matmul at export: 4096 x W floats


def neighbour_blend(
    vectors: tf.Tensor,
    text: tf.Tensor,
    warm_vectors: tf.Tensor,
    warm_text: tf.Tensor,
    k: int,
    weight: float,
) -> tf.Tensor:
    """[B, d]: `vectors` [B, d] blended with their text neighbours' vectors.

    `text` [B, D] and `warm_text` [W, D] are unit rows (a zero row: no text);
    `warm_vectors` [W, d] are the warm items' vectors. A row without a neighbour
    of positive similarity (no text) keeps its own vector.
    """
    k = min(k, int(warm_text.shape[0]))
    similarity = tf.matmul(text, warm_text, transpose_b=True)
    top = tf.math.top_k(similarity, k)
    s = tf.nn.relu(top.values)  # [B, k]
    total = tf.reduce_sum(s, axis=-1, keepdims=True)
    mean = tf.einsum("bk,bkd->bd", s, tf.gather(warm_vectors, top.indices)) / tf.maximum(
        total, 1e-12)
    return tf.where(total > 0, (1.0 - weight) * vectors + weight * mean, vectors)


def blend_cold_rows(
    vectors: np.ndarray, text: np.ndarray, cold: np.ndarray, k: int, weight: float
) -> np.ndarray:
    """[N, d]: the catalogue's `vectors` with each `cold` row neighbour_blend-ed over
    the warm rows (~cold) of `text` [N, D]; warm rows unchanged. k or weight 0, or
    no cold or no warm row: a copy of `vectors`."""
    out = np.array(vectors, np.float32, copy=True)
    cold_rows, warm_rows = np.flatnonzero(cold), np.flatnonzero(~cold)
    if not k or not weight or not len(cold_rows) or not len(warm_rows):
        return out
    warm_vectors = tf.constant(out[warm_rows])
    warm_text = tf.constant(text[warm_rows], tf.float32)
    for start in range(0, len(cold_rows), _BATCH):
        rows = cold_rows[start : start + _BATCH]
        out[rows] = neighbour_blend(tf.constant(out[rows]), tf.constant(text[rows], tf.float32),
                                    warm_vectors, warm_text, k, weight).numpy()
    return out


def known_rows(item_idx, known_items: int):
    """Which item_idx rows are items with training ratings: 1..known_items (0 is the
    padding row, above known_items the OOV buckets of ids Transform never saw).
    NumPy in, NumPy out; a tensor in, a tensor out."""
    return (item_idx >= 1) & (item_idx <= known_items)


class TextNeighbours(tf.Module):
    """The export's warm items' text vectors and catalogue positions: what
    `embed_new_item` blends a brand-new item's vector with (as the catalogue's
    cold rows were, at export)."""

    def __init__(self, text: np.ndarray, cold: np.ndarray, k: int, weight: float):
        super().__init__(name="text_neighbours")
        self.text = tf.Variable(text[~cold], trainable=False, name="text")
        self.positions = tf.Variable(np.flatnonzero(~cold), trainable=False, name="positions")
        self._k, self._weight = k, weight

    def blend_new(self, vectors: tf.Tensor, text: tf.Tensor, item_idx: tf.Tensor,
                  known_items: int, item_vectors: tf.Variable) -> tf.Tensor:
        """[B, d]: rows whose item_idx is not a known item blended with their text
        neighbours among the catalogue's `item_vectors`; known items unchanged."""
        blended = neighbour_blend(vectors, text, tf.gather(item_vectors, self.positions),
                                  self.text, self._k, self._weight)
        known = tf.reshape(known_rows(item_idx, known_items), [-1, 1])
        return tf.where(known, vectors, blended)


def with_text_neighbours(
    vectors: np.ndarray, text: np.ndarray, item_idx: np.ndarray, known_items: int, k: int,
    weight: float,
) -> tuple[np.ndarray, TextNeighbours]:
    """The catalogue's vectors with its cold rows blended, and the state for new items."""
    cold = ~known_rows(item_idx, known_items)
    return blend_cold_rows(vectors, text, cold, k, weight), TextNeighbours(text, cold, k, weight)
