"""Hard negatives for the relevance head: unrated items the item-item term ranks high.

`recommend` re-ranks the first stage's candidates (similarity + the EASE term)
with the relevance head, but that head is trained against one rolled in-batch
negative per row: an item drawn by popularity, mostly far from the user's
candidates. With this option each row also gets a negative drawn from the
batch's items that are among the user's `top` unrated items by EASE's score on
their training bag: what the re-ranker actually has to order.

The pool is a [users, items] bool table fitted once at build time (EASE's
closed form, the same l2 as the served term), so a training step only gathers
the rows of its users; it is built up to item_item.MAX_ITEMS items and
serving_ops.MAX_CACHED_FLOATS entries, like the other per-user tables, and the
option is off above.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtrec.models.item_item import MAX_ITEMS, fit_item_item
from mtrec.models.serving_ops import fits


def candidate_pool(
    rated_splits: np.ndarray, rated_idx: np.ndarray, num_users: int, num_items: int,
    l2: float, top: int,
) -> np.ndarray | None:
    """[num_users, num_items] bool: each user's `top` highest-scored unrated items under
    EASE on the training bags; None where the tables would be too large."""
    if num_items > MAX_ITEMS or not fits(num_users, num_items) or top < 1:
        return None
    weights = fit_item_item(rated_splits, rated_idx, num_items, l2)
    rows = len(rated_splits) - 1
    users = np.repeat(np.arange(rows), np.diff(rated_splits))
    bags = np.zeros((num_users, num_items), np.float32)
    bags[users, rated_idx] = 1.0
    scores = bags @ weights
    scores[bags > 0] = -np.inf
    scores[:, 0] = -np.inf  # item_idx 0 is the unknown item
    top = min(top, num_items - 1)
    best = np.argpartition(-scores, top - 1, axis=1)[:, :top]
    pool = np.zeros((num_users, num_items), bool)
    np.put_along_axis(pool, best, True, axis=1)
    pool &= np.isfinite(scores)
    pool[rows:] = False  # users without training rows have no bag
    return pool


def pick_in_batch(pool_rows: tf.Tensor, batch_items: tf.Tensor,
                  seed_noise: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """For each row, a uniformly drawn batch position whose item is in the row's pool.

    pool_rows [B, items] bool (the rows' users' pools), batch_items [B] item_idx.
    Returns (position [B] int, found [B] bool); a row without such an item gets
    found False (its position is arbitrary). `seed_noise` [B, B] replaces the
    uniform draw (tests)."""
    in_pool = tf.gather(pool_rows, batch_items, axis=1)  # [B, B]: row r, batch item j
    noise = seed_noise if seed_noise is not None else tf.random.uniform(tf.shape(in_pool))
    position = tf.argmax(noise + 2.0 * tf.cast(in_pool, noise.dtype), axis=1)
    return position, tf.reduce_any(in_pool, axis=1)
