"""What users go on to rate after their first few items: recommend_from_items' prior.

A user known only by the handful of items given at request time is served
mostly by a prior over the catalogue. The log-popularity prior it had
(ModelConfig.cold_popularity_weight) says what everyone rated; this term says
what users who *started* with these items rated next. At export a ridge
regression over the training users maps the 0/1 row of each user's first
`given` ratings (by time) to the 0/1 row of their later ratings:

    score(items) = bias + sum over the given items i of W[i, :]
    W = (X'X + l2 I)^-1 X'(Y - bias),   bias = the mean row of Y

bias is what users rate after their first `given`, so the term replaces the
log-popularity prior rather than adding to it. Only items that open some
user's history have a row (ML-100K, the cold-user benchmark's 849 training
users: 472 of 1,667 items), and only items some user rated after their first
`given` have a column (the rest score 0); the export keeps that table dense (3 MB
there; ml-latest-small, about 950 rows by 9,742 items, 37 MB), up to MAX_CELLS;
above, the popularity prior serves instead. Catalogue items nobody rated, those
`mtrec add-items` adds included, cost no cells: counted as columns, one added item
past the limit switched the prior to popularity (2026-12-07 probe).

Why (cold_users.py --validation: 84 other held-out training users, each
served from their first 5 ratings; the test users unread). MovieLens users
open with its sign-up page's popular films, then rate differently. In numpy
on that cut, popularity over the training users' ratings after their first 5
scores NDCG@10 0.515 against all-time popularity's 0.497, and the ridge from
the first 5 items 0.553 (l2 30; over six validation draws 1.17x popularity,
later-ratings popularity 1.05x). As served, through the model's first stage
and re-rank (cold_users_ml-100k_validation.md): 0.518 with the popularity
prior, 0.567 / 0.579 / 0.578 / 0.577 / 0.568 with this term instead at weight
1 / 2 / 3 / 4 / 8 (l2 30), and 0.570 / 0.577 at l2 10 / 100; popularity 0.492.
With both priors (weight 2 each, a throwaway patch): 0.572.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from mtrec.models.config import ModelConfig
from mtrec.models.item_item import catalogue_positions
from mtrec.models.serving_tables import ServingTables

# The term's own size limit, in cells of its [rows, columns] float32 table (64 MB).
# Its rows are only the items that open some user's history, so unlike the dense
# item-item term's [N, N] (item_item.MAX_ITEMS, 5,000) it fits catalogues of 10,000
# items and more. It was held to that limit until session 38; on ml-latest-small
# (9,742 items; cold_users_ml-latest-small_validation.md, other held-out training
# users) it takes recommend_from_items' NDCG@10 from the popularity prior's 0.343 to
# 0.410 (popularity 0.343, user-kNN 0.403), flat in its weight (0.411 / 0.410 / 0.414
# at 1 / 3 / 8); in numpy over six validation draws, 1.13x popularity, above it on each.
MAX_CELLS = 16_000_000


@dataclasses.dataclass(frozen=True)
class Onboarding:
    """score(items) = bias + the sum of `weights`' rows of the items that have one, at
    catalogue positions `columns`; 0 at the other positions."""

    rows: np.ndarray  # int64 [N]: each catalogue position's row of `weights`, -1 none
    weights: np.ndarray  # float32 [R, C]
    bias: np.ndarray  # float32 [C]
    columns: np.ndarray  # int64 [C]: the catalogue positions some user rated later

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(weights [R, N], bias [N]) over the whole catalogue."""
        weights = np.zeros((len(self.weights), len(self.rows)), np.float32)
        bias = np.zeros(len(self.rows), np.float32)
        weights[:, self.columns], bias[self.columns] = self.weights, self.bias
        return weights, bias


def rated_positions(tables: ServingTables, catalog_idx: np.ndarray) -> np.ndarray:
    """The catalogue position of each of `tables`' rated_idx entries (-1: outside it)."""
    rated_idx = tables.rated_idx
    return catalogue_positions(catalog_idx, rated_idx.max(initial=0))[rated_idx]


def in_time_order(rated_splits: np.ndarray, positions: np.ndarray,
                  times: np.ndarray | None, users: np.ndarray | None = None,
                  ) -> list[np.ndarray]:
    """Each user's `positions` (split by `rated_splits`), oldest first by `times`
    (a stable sort; as listed without times); only `users`' (indices), if given.
    -1 entries are kept."""
    if users is None:
        users = np.arange(len(rated_splits) - 1)
    ordered = []
    for start, stop in zip(rated_splits[users].tolist(), rated_splits[users + 1].tolist(),
                           strict=True):
        items = positions[start:stop]
        if times is not None:
            items = items[np.argsort(times[start:stop], kind="stable")]
        ordered.append(items)
    return ordered


def first_and_later(rated_splits: np.ndarray, positions: np.ndarray, times: np.ndarray,
                    given: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per user with more than `given` ratings: (their first `given` items by time, the
    rest). `positions` [T] are catalogue positions (-1: not in the catalogue, dropped
    after ordering), aligned with `times` and split per user by `rated_splits`."""
    first, later = [], []
    for items in in_time_order(rated_splits, positions, times):
        if len(items) > given:
            head, tail = items[:given], items[given:]
            first.append(head[head >= 0])
            later.append(tail[tail >= 0])
    return first, later


def fit_onboarding(first: list[np.ndarray], later: list[np.ndarray], num_items: int,
                   l2: float, max_cells: int = MAX_CELLS) -> Onboarding | None:
    """The ridge from each user's `first` items to their `later` ones (catalogue
    positions; users without later items are left out), or None: no user has both, or
    its [R, N] table would hold more than `max_cells` (checked before it is built).

    X and Y are never formed: X'X counts co-occurrences within the first items,
    X'Y pairs each first item with the user's later ones, and centring Y is
    X'Y - (X'1) bias'. Memory is the [R, N] result, whatever the number of users.
    """
    pairs = [(f, g) for f, g in zip(first, later, strict=True) if len(g)]
    width = max((len(f) for f, _ in pairs), default=0)
    if not width:
        return None
    heads = np.full((len(pairs), width), -1, np.int64)
    for row, (f, _) in enumerate(pairs):
        heads[row, :len(f)] = f
    tails = np.concatenate([g for _, g in pairs]).astype(np.int64)
    tail_user = np.repeat(np.arange(len(pairs)), [len(g) for _, g in pairs])
    active = np.unique(heads[heads >= 0])
    columns, tails = np.unique(tails, return_inverse=True)  # Y's nonzero columns only
    c = len(columns)
    if len(active) * c > max_cells:
        return None
    rows = np.full(num_items, -1, np.int64)
    rows[active] = np.arange(len(active))
    heads = np.where(heads >= 0, rows[np.maximum(heads, 0)], -1)
    r = len(active)
    gram = np.zeros(r * r)
    xty = np.zeros(r * c)
    for a in range(width):
        both = (heads[:, a, np.newaxis] >= 0) & (heads >= 0)
        gram += np.bincount((heads[:, a, np.newaxis] * r + heads)[both], minlength=r * r)
        head = heads[tail_user, a]
        xty += np.bincount((head * c + tails)[head >= 0], minlength=r * c)
    gram = gram.reshape(r, r)
    bias = np.bincount(tails, minlength=c) / len(pairs)
    centred = xty.reshape(r, c) - np.diag(gram)[:, np.newaxis] * bias
    weights = np.linalg.solve(gram + l2 * np.eye(r), centred)
    return Onboarding(rows, weights.astype(np.float32), bias.astype(np.float32),
                      columns.astype(np.int64))


class OnboardingTerm(tf.Module):
    """The fitted term in the serving graph: [B, N] scores of the given positions."""

    def __init__(self, onboarding: Onboarding) -> None:
        super().__init__(name="onboarding")
        # No row, or no item, reads the row of zeros appended here (padding it per
        # request would copy the whole table: +0.3 ms a call on ML-100K).
        self.zeros_row = len(onboarding.weights)
        self.width = len(onboarding.columns)
        padded = np.vstack([onboarding.weights, np.zeros_like(onboarding.bias)[np.newaxis]])
        self.rows = tf.Variable(onboarding.rows, trainable=False, name="rows")
        self.weights = tf.Variable(padded, trainable=False, name="weights")
        self.bias = tf.Variable(onboarding.bias, trainable=False, name="bias")
        # Each catalogue position's column of the table; `width` (a column of zeros
        # appended to the [B, C] scores) for the positions without one.
        at = np.full(len(onboarding.rows), self.width, np.int64)
        at[onboarding.columns] = np.arange(self.width)
        self.columns = tf.Variable(at, trainable=False, name="columns")

    def __call__(self, positions: tf.Tensor) -> tf.Tensor:
        """`positions` [B, G] catalogue positions, -1 for padding or unknown items.

        Each distinct row is read once and weighted by how often each request gives
        it: a gather per given item then a sum would hold [B, G, N] floats, 25 GB
        for 512 users of 1,700 items each on a 7,151-item catalogue. On a random
        950 x 9,742 table (ml-latest-small's size), in-process p50: one user of 5
        items 0.22 ms as before, 32 users of 20 items 0.8 ms against 1.7-2.1 ms.
        tf.sparse.segment_sum also avoids the [B, G, N], but took 2.5 ms for one
        user."""
        row = tf.gather(self.rows, tf.maximum(tf.cast(positions, tf.int64), 0))
        row = tf.where((positions >= 0) & (row >= 0), row, tf.constant(self.zeros_row, tf.int64))
        distinct, at = tf.unique(tf.reshape(row, [-1]), out_idx=tf.int64)
        shape, width = tf.shape(row, out_type=tf.int64), tf.size(distinct, tf.int64)
        cells = tf.repeat(tf.range(shape[0]), shape[1]) * width + at
        counts = tf.math.unsorted_segment_sum(  # [B, distinct]: each row's uses
            tf.ones_like(cells, tf.float32), cells, shape[0] * width)
        counts = tf.reshape(counts, tf.stack([shape[0], width]))
        scores = self.bias + tf.matmul(counts, tf.gather(self.weights, distinct))
        return tf.gather(tf.pad(scores, [[0, 0], [0, 1]]), self.columns, axis=1)


def onboarding_term(tables: ServingTables, catalog_idx: np.ndarray, config: ModelConfig,
                    max_cells: int = MAX_CELLS) -> OnboardingTerm | None:
    """The export's term from the training users' rated items (`tables`), or None: off
    (onboarding_weight or _items 0), no rating times, or a table over `max_cells`."""
    given = config.onboarding_items
    if not config.onboarding_weight or given <= 0 or tables.rated_times is None:
        return None
    first, later = first_and_later(tables.rated_splits, rated_positions(tables, catalog_idx),
                                   tables.rated_times, given)
    fitted = fit_onboarding(first, later, len(catalog_idx), config.onboarding_l2, max_cells)
    return None if fitted is None else OnboardingTerm(fitted)
