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

A user with no rated catalogue item (an id the model never trained on) is routed
on every split, as recommend_from_items with no items, which answers by
popularity (PopularItems). On cold_users.py's validation users served with no
items, NDCG@10 (cold_users_*_validation_no_items_before.md):

    served as                                 ML-100K   ml-latest-small
    recommend, the unknown id's own query     0.467     0.340
    recommend_from_items, the prior-led path  0.533     0.385
    popularity                                0.563     0.400
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
    """Light users' rated catalogue positions, oldest first: user u's are items[rows[u]];
    `routed` users (the light ones, and those with none: unknown ids) are answered by
    recommend_from_items, a user with none as a brand-new one (popularity order)."""

    rows: np.ndarray  # int64 [users]: each user's row of `items`, or the last (all -1)
    items: np.ndarray  # int64 [light users + 1, the most any has]: positions, -1 padded
    routed: np.ndarray  # bool [users]: served from `items` (all -1: from none)


def light_user_items(rated_splits: np.ndarray, positions: np.ndarray,
                     times: np.ndarray | None, max_items: int) -> LightUsers:
    """Each user with 1 to max_items rated catalogue positions: those, oldest first (by
    `times`, else as listed); every user row with none (the unknown ids' rows) is routed
    with no items, whatever max_items (0: no light users).

    `positions` are aligned with the rated items that `rated_splits` splits per user;
    an item outside the catalogue (-1) does not count. Only light users have a row, so
    the table stays small with millions of users."""
    # Each user's catalogue items, counted without a pass over every user: only the
    # light ones are then put in time order (the onboarding prior orders them all).
    in_catalogue = np.concatenate([[0], np.cumsum(positions >= 0)])
    counts = in_catalogue[rated_splits[1:]] - in_catalogue[rated_splits[:-1]]
    users = np.flatnonzero((counts > 0) & (counts <= max(max_items, 0)))
    table = np.full((len(users) + 1, max(1, counts[users].max(initial=0))), -1, np.int64)
    for row, ordered in enumerate(in_time_order(rated_splits, positions, times, users)):
        items = ordered[ordered >= 0]
        table[row, :len(items)] = items
    rows = np.full(len(rated_splits) - 1, len(users), np.int64)  # the last row: all -1
    rows[users] = np.arange(len(users))
    return LightUsers(rows, table, counts <= max(max_items, 0))


class LightUserItems(tf.Module):
    """The table in the serving graph: user rows -> [B, width] positions (-1 none)."""

    def __init__(self, light: LightUsers) -> None:
        super().__init__(name="light_users")
        self.rows = tf.Variable(light.rows, trainable=False, name="rows")
        self.items = tf.Variable(light.items, trainable=False, name="items")
        self.routed = tf.Variable(light.routed, trainable=False, name="routed")

    def __call__(self, user_idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Whether each user row is routed [B], and its given positions [B, width]."""
        return (tf.gather(self.routed, user_idx),
                tf.gather(self.items, tf.gather(self.rows, user_idx)))


def light_user_table(tables: ServingTables, catalog_idx: np.ndarray,
                     config: ModelConfig) -> LightUserItems:
    """The export's table from the training users' rated items."""
    return LightUserItems(light_user_items(
        tables.rated_splits, rated_positions(tables, catalog_idx), tables.rated_times,
        config.light_user_items))


def routed(rows: dict[str, tf.Tensor], selected: tf.Tensor,
           answer: Callable[[], dict[str, tf.Tensor]]) -> dict[str, tf.Tensor]:
    """`rows` with each selected row [B] replaced by answer()'s; `answer` runs only for a
    batch that selects one. `rows` stay computed outside the cond, so a request of
    unknown ids computes them too: on the serving benchmark's ML-100K model (module
    called in process, 1,000 interleaved calls, two runs), known users' uncached
    recommend took 1.69-1.75 ms before unknown ids were routed and 1.80-1.81 ms
    after, unknown ids' 1.46 -> 1.59 ms (their query is the export's). With the
    ranking inside a branch, so that unknown ids skip it, known users took 2.05-2.13
    ms against 1.88: a branch's function call passes it every table it reads."""
    return tf.cond(tf.reduce_any(selected), lambda: _merged(selected, rows, answer()),
                   lambda: rows)


def either(selected: tf.Tensor, plain: Callable[[], dict[str, tf.Tensor]],
           special: Callable[[], dict[str, tf.Tensor]]) -> dict[str, tf.Tensor]:
    """plain()'s rows with each selected row [B] replaced by special()'s, running only
    what the batch needs: plain() alone, special() alone when every row is selected,
    else both, merged (one Case op)."""
    branch = tf.where(tf.reduce_all(selected), 1, tf.where(tf.reduce_any(selected), 2, 0))
    return tf.switch_case(branch, [plain, special,
                                   lambda: _merged(selected, plain(), special())])


def _merged(selected: tf.Tensor, rows: dict[str, tf.Tensor], fresh: dict[str, tf.Tensor]
            ) -> dict[str, tf.Tensor]:
    """`rows` with each selected row [B] taken from `fresh`."""
    return {key: tf.where(selected[:, tf.newaxis], fresh[key], rows[key]) for key in rows}


class PopularItems(tf.Module):
    """The answer for a user known by nothing (no rated catalogue item: an unknown id,
    or recommend_from_items with none): the catalogue in training popularity order
    (ties by id, as the gate's popularity reference), scores log P(item)."""

    def __init__(self, probability: np.ndarray, item_ids: np.ndarray) -> None:
        super().__init__(name="popular_items")
        by_id = np.argsort(item_ids.astype(bytes), kind="stable")
        order = by_id[np.argsort(-probability[by_id], kind="stable")]
        self.positions = tf.Variable(order.astype(np.int64), trainable=False, name="positions")
        self.scores = tf.Variable(np.log(probability[order]).astype(np.float32),
                                  trainable=False, name="scores")

    def __call__(self, rows: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The first k catalogue positions and their scores, for each of `rows` [rows, k]."""
        def tiled(values: tf.Tensor) -> tf.Tensor:
            return tf.tile(values[tf.newaxis, :k], tf.stack([rows, 1]))
        return tiled(self.positions), tiled(self.scores)
