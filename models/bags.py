"""Ragged id bags looked up by row: a user's rated items, an item's raters.

The query tower reads the bag of items a user rated in training (F.RATED_IDX);
the candidate tower may read its mirror, the bag of users who rated the item
(F.RATER_IDX), the signal item-based models such as I-AutoRec live on. Both
are one (row splits, values) table looked up by id; in training each leaves
out the other side of the row (the row's own item from the user's bag, the
row's own user from the item's bag) so the target does not leak into the
input, and a dropout share of each bag is removed at random.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def transpose_bags(splits: np.ndarray, values: np.ndarray, num_rows: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of a (row splits, values) table: for each value id in
    [0, num_rows), the rows that hold it, ascending. Users' rated items -> items' raters."""
    rows = np.repeat(np.arange(len(splits) - 1, dtype=np.int64), np.diff(splits))
    values = np.asarray(values, np.int64)
    if values.size and (values.min() < 0 or values.max() >= num_rows):
        raise ValueError(f"bag values must lie in [0, {num_rows}): "
                         f"{values.min()}..{values.max()}")
    order = np.lexsort((rows, values))  # by value, then by row
    counts = np.bincount(values, minlength=num_rows)
    new_splits = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return new_splits, rows[order]


def lookup_bag(
    splits: tf.Variable,
    values: tf.Variable,
    idx: tf.Tensor,
    exclude: tf.Tensor | None = None,
    dropout: float = 0.0,
) -> tf.RaggedTensor:
    """Row `idx` of the table (ragged [B, None]) without `exclude` (one id a row),
    with a `dropout` share of the entries removed at random."""
    table = tf.RaggedTensor.from_row_splits(values, splits)
    bag = tf.gather(table, idx)
    keep = tf.ones_like(bag, dtype=tf.bool)
    if exclude is not None:
        keep = tf.not_equal(bag, tf.expand_dims(tf.cast(exclude, bag.dtype), 1))
    if dropout > 0:
        drop = tf.random.uniform(tf.shape(bag.flat_values)) < dropout
        keep = keep & bag.with_flat_values(~drop)
    return tf.ragged.boolean_mask(bag, keep)
