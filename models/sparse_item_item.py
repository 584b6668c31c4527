"""The item-item term for catalogues above item_item.MAX_ITEMS: EASE's B, top-K per row.

A dense B over ml-latest-small's 9,742 items would be 9,742^2 float32 = 380 MB
in the export, so above MAX_ITEMS the export keeps, for each rated item i, the
K weights B[i, j] of largest magnitude: two [items, K] arrays (neighbour
catalogue positions, weights). A bag's term is a gather of its items' rows and
one tf.math.unsorted_segment_sum into [B, N]: plain TF ops, so the signatures
stay loadable by TF Serving. K >= the fitted items gives the dense term exactly
(tests/test_sparse_item_item.py).

The closed form itself is still a dense inverse over the fitted items. It is
fitted on at most `max_items` of them, the most-rated (ModelConfig
item_item_max_fit_items); items beyond the cap, like items without training
ratings, have no item-item evidence and take item_item_term's rule for those.
With fewer users than items (ml-latest-small: 610 users) the inverse goes by
Woodbury's identity, O(U N^2) and no N x N array: its validation fit (7,151
items, K 400; benchmarks/results/item_item_top_k.md) took 9.0 s CPU, 59 s wall
niced on the shared 2 cores, 320 MB above the process, where the direct
inverse took 938 s wall and 1.6 GB. The direct inverse (more users than items)
grows with the cube of the items in time and the square in memory: hence the cap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from mtrec.models.item_item import (
    MAX_ITEMS,
    Session,
    catalogue_positions,
    dense_item_item,
    fit_item_item,
    item_item_scores,
    rated_columns,
)

log = logging.getLogger(__name__)

_ROW_CHUNK = 1024  # rows of B formed at a time when picking each row's top K


def fitted_items(rated_idx: np.ndarray, num_items: int, max_items: int) -> np.ndarray:
    """Sorted item_idx of the items the closed form is fitted on: those with training
    ratings, the `max_items` most-rated of them (ties: the lower item_idx) when more."""
    counts = np.bincount(rated_idx, minlength=num_items)
    counts[0] = 0  # item_idx 0 is padding
    active = np.flatnonzero(counts)
    if len(active) > max_items:
        order = np.argsort(-counts[active], kind="stable")[:max_items]
        active = np.sort(active[order])
    return active


def _gram(rated_splits: np.ndarray, rated_idx: np.ndarray, columns: np.ndarray,
          width: int) -> np.ndarray:
    """X'X over the fitted items (`columns`: item_idx -> column, -1 = not fitted),
    built from users in chunks so X is never whole (counts are exact in float32)."""
    gram = np.zeros((width, width), np.float64)
    users = len(rated_splits) - 1
    step = max(1, (1 << 24) // max(width, 1))
    for start in range(0, users, step):
        x = _x(rated_splits, rated_idx, columns, width, start, min(start + step, users),
               np.float32)
        gram += x.T @ x
    return gram


def _x(rated_splits: np.ndarray, rated_idx: np.ndarray, columns: np.ndarray, width: int,
       start: int, stop: int, dtype: type) -> np.ndarray:
    """Rows start..stop of the 0/1 user x fitted-item matrix X."""
    lo, hi = rated_splits[start], rated_splits[stop]
    rows = np.repeat(np.arange(stop - start), np.diff(rated_splits[start : stop + 1]))
    cols = columns[rated_idx[lo:hi]]
    keep = cols >= 0
    x: np.ndarray = np.zeros((stop - start, width), dtype)
    x[rows[keep], cols[keep]] = 1.0
    return x


def _inverse(rated_splits: np.ndarray, rated_idx: np.ndarray, columns: np.ndarray,
             width: int, l2: float) -> tuple[np.ndarray, Callable[[int, int], np.ndarray]]:
    """(diag(P), rows(a, b) -> P[a:b]) for P = (X'X + l2 I)^-1.

    With fewer users U than items, Woodbury's identity
    P = (I - X'(l2 I + XX')^-1 X) / l2 needs a U x U solve and forms P's rows a
    chunk at a time: O(U N^2) time and no N x N array. The direct inverse takes
    O(N^3) and ~4 N x N float64 arrays at its peak. On ml-latest-small's
    validation fit (610 users, 7,151 items; item_item_top_k.md), niced on the 2
    shared cores: direct 938 s wall, 1.6 GB; Woodbury 59 s wall (9 s CPU), 0.3 GB.
    """
    users = len(rated_splits) - 1
    if users < width:
        x = _x(rated_splits, rated_idx, columns, width, 0, users, np.float64)
        mx = np.linalg.solve(l2 * np.eye(users) + x @ x.T, x)  # (l2 I + XX')^-1 X
        diagonal = (1.0 - np.einsum("uj,uj->j", x, mx)) / l2

        def rows(a: int, b: int) -> np.ndarray:
            out = -(x[:, a:b].T @ mx)
            out[np.arange(b - a), np.arange(a, b)] += 1.0
            return out / l2

        return diagonal, rows
    p = _gram(rated_splits, rated_idx, columns, width)
    p[np.diag_indices(width)] += l2
    p = np.linalg.inv(p)
    return np.diag(p).copy(), lambda a, b: p[a:b]


def fit_top_k(
    rated_splits: np.ndarray, rated_idx: np.ndarray, num_items: int, l2: float, k: int,
    max_items: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(neighbours, weights), each [num_items, min(k, fitted items)]: row i holds the
    item_idx j and B[i, j] of the largest |B[i, j]|, largest first; rows of items
    not fitted (and padding) are zero weights on item 0. B is fit_item_item's."""
    active = fitted_items(rated_idx, num_items, max_items)
    width = len(active)
    k = min(k, width)
    neighbours = np.zeros((num_items, k), np.int32)
    weights = np.zeros((num_items, k), np.float32)
    if width == 0:
        return neighbours, weights
    columns = np.full(num_items, -1, np.int64)
    columns[active] = np.arange(width)
    diagonal, p_rows = _inverse(rated_splits, rated_idx, columns, width, l2)
    for start in range(0, width, _ROW_CHUNK):
        stop = min(start + _ROW_CHUNK, width)
        b = -p_rows(start, stop) / diagonal[np.newaxis, :]
        b[np.arange(stop - start), np.arange(start, stop)] = 0.0
        top = np.argpartition(-np.abs(b), k - 1, axis=1)[:, :k] if k < width else \
            np.tile(np.arange(width), (stop - start, 1))
        kept = np.take_along_axis(b, top, axis=1)
        order = np.argsort(-np.abs(kept), axis=1, kind="stable")
        rows = active[start:stop]
        neighbours[rows] = active[np.take_along_axis(top, order, axis=1)]
        weights[rows] = np.take_along_axis(kept, order, axis=1)
    return neighbours, weights


class TopKItemItem(tf.Module):
    """B's top-K rows over catalogue positions; `scores` is item_item_scores' sparse twin."""

    def __init__(self, neighbours: np.ndarray, weights: np.ndarray, num_columns: int) -> None:
        super().__init__(name="top_k_item_item")
        # Variables, not constants, like the export's other tables.
        self.neighbours = tf.Variable(neighbours, trainable=False, name="neighbours")
        self.weights = tf.Variable(weights, trainable=False, name="weights")
        self.num_columns = num_columns

    def scores(self, bag: tf.RaggedTensor) -> tf.Tensor:
        """[B, N]: for each row, the sum of its bag items' kept weights per column."""
        bag = bag.with_row_splits_dtype(tf.int64)
        items = tf.cast(bag.flat_values, tf.int64)
        neighbours = tf.cast(tf.gather(self.neighbours, items), tf.int64)  # [T, K]
        rows = tf.cast(bag.nrows(), tf.int64)
        n = tf.constant(self.num_columns, tf.int64)
        segments = bag.value_rowids()[:, tf.newaxis] * n + neighbours
        summed = tf.math.unsorted_segment_sum(tf.gather(self.weights, items), segments,
                                              rows * n)
        return tf.reshape(summed, tf.stack([rows, n]))


def top_k_in_catalog(neighbours: np.ndarray, weights: np.ndarray,
                     catalog_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fit_top_k's item_idx neighbours as catalogue positions (weights of items outside
    the catalogue dropped), and the [N + 1] rated columns of item_item_term: the
    positions some kept weight points at (a fitted item no row kept has no evidence)."""
    at = catalogue_positions(catalog_idx, neighbours.max(initial=0))[neighbours]
    weights = np.where(at >= 0, weights, 0.0).astype(np.float32)
    at = np.maximum(at, 0).astype(np.int32)
    rated = np.zeros(len(catalog_idx) + 1, bool)
    rated[at[weights != 0]] = True
    return at, weights, rated


def served_item_item(
    rated_splits: np.ndarray, rated_idx: np.ndarray, num_items: int, known_items: int,
    catalog_idx: np.ndarray, l2: float, top_k: int, max_fit_items: int,
    session: Session | None = None,
) -> tuple[np.ndarray | TopKItemItem, np.ndarray]:
    """(B, rated columns) for the export: dense [items, N] B (catalogue-ordered
    columns) within item_item.dense_item_item's limits, unchanged; above, TopKItemItem.
    `session` (fit_item_item's) applies to the dense B only: the top-K fit's
    Woodbury inverse needs the Gram as X'X."""
    if dense_item_item(known_items, len(catalog_idx)):
        weights = fit_item_item(rated_splits, rated_idx, num_items, l2, session)
        return weights[:, catalog_idx], rated_columns(rated_idx, catalog_idx)
    if session is not None:
        log.warning("item_item_session_mix %g is ignored above %d known items: the top-K "
                    "item-item term is fitted on X'X alone", session.mix, MAX_ITEMS)
    neighbours, weights = fit_top_k(rated_splits, rated_idx, num_items, l2, top_k,
                                    max_fit_items)
    at, weights, rated = top_k_in_catalog(neighbours, weights, catalog_idx)
    return TopKItemItem(at, weights, len(catalog_idx)), rated


def bag_scores(weights: tf.Variable | TopKItemItem, bag: tf.RaggedTensor) -> tf.Tensor:
    """[B, N]: the item-item scores of each row's bag, dense B or top-K."""
    if isinstance(weights, TopKItemItem):
        return weights.scores(bag)
    return item_item_scores(weights, bag)
