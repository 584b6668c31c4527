"""Known users with only a few training ratings, served by `recommend` like new users.

A user the model trained on with 4 or 5 ratings has an id embedding and a
history bag that learned almost nothing, and `recommend`'s warm path has no
prior for them: such a user gets lists below popularity. `recommend_from_items`
serves a user known only by a few items far better, through the onboarding
prior (models/onboarding.py) and the item-item term. So `recommend` gives each
known user with at most ModelConfig.light_user_items rated training items the
answer `recommend_from_items` gives for those items, oldest first.

Why: trained on a time split, a light user is a new one, and retraining does
not serve them as well as their items do. cold_users.py's validation users (84
held-out training users; the test users unread) were trained with their first
n ratings (the latest 20% of those in the eval cut, as `mtrec run` splits by
time) and scored on all their later ratings, NDCG@10:

    n (training ratings)   recommend   recommend_from_items   popularity
    5 (4)                  0.411       0.575                  0.492
    10 (8)                 0.397       0.552                  0.444
    20 (16)                0.386       0.492                  0.389
    40 (32)                0.416       0.481                  0.388

But on the validation cuts of the benchmarks' splits, served this way users
did worse: ml-latest-small's time cut (its users have 13 or more training
ratings), those with at most 20 from 0.121 to 0.097; ML-100K u1's random cut,
those with at most 10 from 0.214 to 0.089. So the limit is 5, and only on time
splits (models/config.py PROTOCOL_OVERRIDES); quality_tuning.md, session 39.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from mtrec.models.config import ModelConfig
from mtrec.models.onboarding import in_time_order, rated_positions
from mtrec.models.serving_tables import ServingTables


@dataclasses.dataclass(frozen=True)
class LightUsers:
    """Light users' rated catalogue positions, oldest first: user u's are items[rows[u]]."""

    rows: np.ndarray  # int64 [users]: each user's row of `items`, or the last (all -1)
    items: np.ndarray  # int64 [light users + 1, the most any has]: positions, -1 padded


def light_user_items(rated_splits: np.ndarray, positions: np.ndarray,
                     times: np.ndarray | None, max_items: int) -> LightUsers | None:
    """Each user with 1 to max_items rated catalogue positions: those, oldest first (by
    `times`, else as listed). None when off (max_items 0) or no user is light.

    `positions` are aligned with the rated items that `rated_splits` splits per user;
    an item outside the catalogue (-1) does not count. Only light users have a row, so
    the table stays small with millions of users."""
    if max_items <= 0:
        return None
    # Each user's catalogue items, counted without a pass over every user: only the
    # light ones are then put in time order (the onboarding prior orders them all).
    in_catalogue = np.concatenate([[0], np.cumsum(positions >= 0)])
    counts = in_catalogue[rated_splits[1:]] - in_catalogue[rated_splits[:-1]]
    users = np.flatnonzero((counts > 0) & (counts <= max_items))
    if not len(users):
        return None
    table = np.full((len(users) + 1, counts[users].max()), -1, np.int64)
    for row, ordered in enumerate(in_time_order(rated_splits, positions, times, users)):
        items = ordered[ordered >= 0]
        table[row, :len(items)] = items
    rows = np.full(len(rated_splits) - 1, len(users), np.int64)  # the last row: all -1
    rows[users] = np.arange(len(users))
    return LightUsers(rows, table)


class LightUserItems(tf.Module):
    """The table in the serving graph: user rows -> [B, width] positions (-1 none)."""

    def __init__(self, light: LightUsers) -> None:
        super().__init__(name="light_users")
        self.rows = tf.Variable(light.rows, trainable=False, name="rows")
        self.items = tf.Variable(light.items, trainable=False, name="items")

    def __call__(self, user_idx: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.items, tf.gather(self.rows, user_idx))


def light_user_table(tables: ServingTables, catalog_idx: np.ndarray,
                     config: ModelConfig) -> LightUserItems | None:
    """The export's table from the training users' rated items, or None (off, or no
    user is light)."""
    light = light_user_items(tables.rated_splits, rated_positions(tables, catalog_idx),
                             tables.rated_times, config.light_user_items)
    return None if light is None else LightUserItems(light)


def routed(rows: dict[str, tf.Tensor], given: tf.Tensor,
           answer: Callable[[tf.Tensor], dict[str, tf.Tensor]]) -> dict[str, tf.Tensor]:
    """`rows` with each light user's row (given[:, 0] >= 0) replaced by answer(given)'s;
    `answer` runs only for a batch that has a light user."""
    light = given[:, 0] >= 0

    def mixed() -> dict[str, tf.Tensor]:
        fresh = answer(given)
        return {key: tf.where(light[:, tf.newaxis], fresh[key], rows[key]) for key in rows}

    return tf.cond(tf.reduce_any(light), mixed, lambda: rows)
