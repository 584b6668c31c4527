"""A closed-form rating predictor the served rating is blended with: item-kNN with baselines.

Koren's neighbourhood model ("Factor in the neighbors", 2008, eq. 3): a
baseline b_ui = mu + b_u + b_i (ridge-regularised user and item offsets, a few
alternating passes), plus the user's residuals on the k rated items most
similar to i, weighted by a shrunk Pearson-style similarity of the residuals:

    r_ui = b_ui + sum_{j in N_k(u, i)} s_ij (r_uj - b_uj) / sum_j |s_ij|
    s_ij = <e_i, e_j> / sqrt(sum_u e_ui^2 sum_u e_uj^2) * n_ij / (n_ij + shrink)

with e the residuals over the users who rated both. It is fitted once from the
training ratings and kept as a [users, items] table of predictions (a served
request gathers one value), so it runs in TF Serving as a plain gather.

Why: heterogeneous predictors blend well (the Netflix prize's lesson). On the
ML-100K u1 validation holdout the joint model's served RMSE was 0.9014, this
predictor alone 0.9272, their 0.6 / 0.4 blend 0.8854 in a numpy replay (0.3:
0.8861, 0.5: 0.8867) and 0.8851 re-served (benchmarks/results/quality_tuning.md).
Errors correlate at 0.89, so the blend gains because the two are wrong about
different pairs.

Unknown users (no training ratings) get mu + b_i, unknown items mu + b_u.
Above MAX_ITEMS catalogue items (the fit's [items, items] similarity, float32: 900 MB
at 15,000) or MAX_CACHED_FLOATS (16.8M) user x item table cells it is not fitted (the
blend is off): ML-100K's 952 x 1,691 rows fit, ML-1M's ~6,049 x ~3,715 do not.
Its own limit, not the item-item term's 5,000 (which keeps [items, items] in
the SavedModel): under that limit ml-latest-small (9,742 items) went without it.
On its validation cut (serving_sweep.py, one training, re-served) the blend took
the served RMSE from 0.9354 to 0.8535 at the default weight 0.4 (0.8400 at
0.6), NDCG@10 0.1544 -> 0.1549.
"""

from __future__ import annotations

import numpy as np

from mtrec.models.serving_ops import fits

USER_REG, ITEM_REG, PASSES = 10.0, 25.0, 10  # baseline offsets' ridge weights
MAX_ITEMS = 15_000


def baselines(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, num_users: int,
              num_items: int) -> tuple[float, np.ndarray, np.ndarray]:
    """(mu, b_u [num_users], b_i [num_items]) by alternating ridge passes."""
    mu = float(ratings.mean())
    bu, bi = np.zeros(num_users), np.zeros(num_items)
    n_u = np.bincount(users, minlength=num_users)
    n_i = np.bincount(items, minlength=num_items)
    for _ in range(PASSES):
        bi = np.bincount(items, ratings - mu - bu[users], num_items) / (ITEM_REG + n_i)
        bu = np.bincount(users, ratings - mu - bi[items], num_users) / (USER_REG + n_u)
    return mu, bu, bi


def similarities(users: np.ndarray, items: np.ndarray, residuals: np.ndarray, num_users: int,
                 num_items: int, shrink: float, block: int = 1024) -> np.ndarray:
    """[num_items, num_items] float32 shrunk residual similarity s_ij, diagonal 0.

    Computed `block` rows at a time in float64 and kept in float32, so the fit holds one
    [items, items] array (380 MB at ml-latest-small's 9,742 items) instead of the four
    float64 ones of a whole-matrix formula (3 GB there).
    """
    e = np.zeros((num_users, num_items))
    e[users, items] = residuals
    x = np.zeros((num_users, num_items))
    x[users, items] = 1.0
    e2 = e * e
    s = np.empty((num_items, num_items), dtype=np.float32)
    for start in range(0, num_items, block):
        rows = slice(start, min(start + block, num_items))
        # over the users who rated both i and j: sum e_ui^2, sum e_uj^2, their count
        square_i, square_j = e2[:, rows].T @ x, x[:, rows].T @ e2
        both = x[:, rows].T @ x
        s[rows] = ((e[:, rows].T @ e) / (np.sqrt(square_i * square_j) + 1e-9)
                   * both / (both + shrink))
    np.fill_diagonal(s, 0.0)
    return s


def fit_neighbour_ratings(splits: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                          num_items: int, neighbours: int, shrink: float) -> np.ndarray | None:
    """[users, num_items] float32 predictions, users = len(splits) - 1.

    splits/items/ratings: each user row's rated item_idx and rating (ServingTables
    rated_splits / rated_idx / rated_ratings). None when the table is too large to keep
    (MAX_CACHED_FLOATS cells); the Trainer checks MAX_ITEMS on the catalogue first
    (num_items counts the id table's rows: its OOV and padding rows too).
    """
    num_users = len(splits) - 1
    if not fits(num_users, num_items) or len(items) == 0:
        return None
    users = np.repeat(np.arange(num_users), np.diff(splits))
    mu, bu, bi = baselines(users, items, ratings, num_users, num_items)
    residuals = ratings - mu - bu[users] - bi[items]
    s = similarities(users, items, residuals, num_users, num_items, shrink)
    table = mu + bu[:, None] + bi[None, :]
    for u in range(num_users):
        rated = items[splits[u]:splits[u + 1]]
        if len(rated) == 0:
            continue
        sim = s[:, rated]  # [num_items, n]
        if len(rated) > neighbours:  # keep each item's k most similar rated items
            kth = np.partition(sim, len(rated) - neighbours, axis=1)[:, len(rated) - neighbours]
            sim = np.where(sim >= kth[:, None], sim, 0.0)
        weight = np.abs(sim).sum(axis=1)
        table[u] += np.where(weight > 0, sim @ residuals[splits[u]:splits[u + 1]]
                             / np.maximum(weight, 1e-9), 0.0)
    return table.astype(np.float32)
