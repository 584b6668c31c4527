"""`describe_items`' table: item id -> the title a person reads, "Fly, The (1986)".

The served answers carry item ids only, and the server knows nothing but the
SavedModel, so the titles travel inside it: one static string hash table, plain
TF ops that TF Serving loads with no Python of ours. They are read from the raw
catalogue examples (models/item_catalog.read_catalog), so every catalogue item
has one, cold ones and `mtrec add-items`' new ones included; an id outside the
catalogue, or an item without a title, answers "".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import tensorflow as tf

from mtrec.contracts.features import display_title

# read_catalog's column of display titles (raw text, not a Transform output).
DISPLAY_TITLE = "display_title"


def display_titles(titles: Iterable[bytes], years: Iterable[int]) -> np.ndarray:
    """[N] display titles (object array of str) of raw F.TITLE bytes and F.YEAR values."""
    return np.array([display_title(t.decode("utf-8", "replace"), int(y))
                     for t, y in zip(titles, years, strict=True)], dtype=object)


def title_table(titles: Mapping[bytes, str] | None) -> tf.lookup.StaticHashTable:
    """id (bytes) -> its display title; "" for any other id, and for every id when the
    model has no titles (no catalogue, or one without them). Items whose title is ""
    are left out (the default says the same in less space); the padding id "" is
    always in, as "", since TF refuses a table with no keys."""
    named = {b"": "", **{k: v for k, v in (titles or {}).items() if v and k}}
    keys = tf.constant(list(named), tf.string)
    values = tf.constant([v.encode() for v in named.values()], tf.string)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values),
                                     default_value="")
