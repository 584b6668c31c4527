"""The interest head's AUC over the genre columns that exist, not all F.GENRE_BUCKETS.

The multi-hot is F.GENRE_BUCKETS wide whatever the catalogue: the Transform genre
vocabulary's columns [0, n), the rest always 0, and the OOV column (last) that only
genres past the top F.GENRE_VOCAB_TOP_K land in. A Keras AUC over the whole flattened
[batch, 32] counted every always-0 column as easy negatives the head learns to put at
the bottom: 0.9983 where every item had the one genre "Drama" (nothing to learn),
0.9624 where 2 genres were independent of the user. InterestAUC is the same
micro-averaged AUC with those columns weighted 0 (tests/test_interest_metric.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.metrics import INTEREST_AUC


def genre_columns(genre_vocab_size: int | None) -> np.ndarray:
    """[F.GENRE_BUCKETS] float32: 1 for the columns a genre can be in, 0 for the others.

    `genre_vocab_size`: the Transform genre vocabulary's size, without tf.Transform's
    placeholder entry for an empty vocabulary (len(serving_tables.genre_vocabulary)).
    Columns [0, n) hold its genres; the OOV column only when the vocabulary is full
    (n == F.GENRE_VOCAB_TOP_K: genres past the top k land there). None (a model built
    without a Transform output, as in unit tests): every column, the AUC of old.
    """
    if genre_vocab_size is None:
        return np.ones(F.GENRE_BUCKETS, np.float32)
    n = min(max(int(genre_vocab_size), 0), F.GENRE_VOCAB_TOP_K)
    columns = np.zeros(F.GENRE_BUCKETS, np.float32)
    columns[:n] = 1.0
    if n == F.GENRE_VOCAB_TOP_K:
        columns[F.GENRE_BUCKETS - 1] = 1.0
    return columns


class InterestAUC(tf.keras.metrics.AUC):
    """AUC (from logits) over the multi-hot's real columns (genre_columns).

    The mask is applied here, inside update_state, so the interest task passes its
    per-row sample_weight ([batch, 1], the loss's) unchanged: the loss never sees the
    mask, and each cell counts with weight row_weight x column_mask, as the flattened
    AUC counted it with row_weight alone.
    """

    def __init__(self, genre_vocab_size: int | None = None, name: str = INTEREST_AUC,
                 **kw: Any) -> None:
        kw.setdefault("from_logits", True)
        super().__init__(name=name, **kw)
        self.genre_vocab_size = genre_vocab_size
        self.columns = genre_columns(genre_vocab_size)

    def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor,
                     sample_weight: tf.Tensor | None = None) -> Any:
        weight = tf.constant(self.columns)
        if sample_weight is not None:
            rows = tf.cast(sample_weight, tf.float32)
            weight = (rows[:, tf.newaxis] if rows.shape.rank == 1 else rows) * weight
        weight = tf.broadcast_to(weight, tf.shape(y_true))
        return super().update_state(y_true, y_pred, sample_weight=weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "genre_vocab_size": self.genre_vocab_size}
