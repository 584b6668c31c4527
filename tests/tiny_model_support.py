"""A tiny model's vocabulary sizes and transformed rows, for the served-rating tests."""

from __future__ import annotations

import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.models.towers import VocabSizes

SIZES = VocabSizes(users=3, items=5, genders=2, occupations=2, text_tokens=3,
                   known_users=2, known_items=4)


def rows(n: int) -> dict[str, tf.Tensor]:
    """n transformed rows: user 1 with items 1..n, every other feature zero."""
    zeros = lambda *shape: tf.zeros([n, *shape], tf.int64)  # noqa: E731
    return {F.USER_IDX: tf.ones([n], tf.int64), F.ITEM_IDX: tf.range(1, n + 1, dtype=tf.int64),
            F.HISTORY_IDX: zeros(F.HISTORY_LEN), F.AGE_BUCKET: zeros(),
            F.GENDER_IDX: zeros(), F.OCCUPATION_IDX: zeros(),
            F.GENRES_MULTI_HOT: tf.zeros([n, F.GENRE_BUCKETS]),
            F.TITLE_TOKENS: zeros(F.TITLE_LEN), F.DESCRIPTION_TOKENS: zeros(F.DESCRIPTION_LEN),
            F.YEAR_Z: tf.zeros([n]), F.YEAR_KNOWN: tf.zeros([n])}
