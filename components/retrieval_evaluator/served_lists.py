"""Definitions the RetrievalEvaluator and benchmarks/served_quality.py must share.

Both report popularity's P/R/NDCG@10 and the model's coverage@10, and they used to
define them apart: popularity's ties went by id in the evaluator and by
np.argpartition's order in the benchmark (sample: popularity P@10 0.1270 against
0.1278), and coverage was over train + eval items (797) in one and training items
(796) in the other, while the model serves from its whole catalogue (800). So both
import these pure functions; served_lists_test.py pins them by hand.

- popularity: items by training interactions, most first, ties by item id
  (ascending), each user's training items left out;
- coverage@K: distinct recommended items over the catalogue `recommend` can
  return, i.e. the served model's own catalogue.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from mtrec.models.evaluation import popularity_ranking

PADDING = b""  # a list shorter than k ends in it, as a served list does (never an item)
Item = TypeVar("Item", bound=Hashable)  # an item id: bytes as served, str in raw tables


def popularity_counts(train_items: Iterable[Item]) -> dict[Item, int]:
    """Training interactions per item: what popularity ranks by (both callers count the
    same thing; cleaning drops duplicate ratings, so it is also the item's raters)."""
    values, counts = np.unique(np.asarray(list(train_items), dtype=object), return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def with_unrated(counts: Mapping[Item, int], catalogue: Iterable[Item]) -> dict[Item, int]:
    """`counts` plus a 0 for every catalogue item nobody rated in training: popularity
    ranks them last (ties by id), as the served model can. Without them popularity's
    lists ran out: HR@100 0.000 on a 70-item catalogue whose held-out items were the 10
    new releases, and the gate's lift over it was infinite (a user's probe, 2026-12-07).
    Past the rated items only, so no list a real catalogue fills at K <= 100 changes."""
    return {**counts, **{item: 0 for item in catalogue if item not in counts}}


def popular_top_k(counts: Mapping[Item, int], k: int) -> np.ndarray:
    """The k most popular items, ties by id: popularity's `retrieve` list (seen kept)."""
    return popularity_ranking(np.array(list(counts), dtype=object), k,
                              np.array(list(counts.values())))


def popular_unseen(counts: Mapping[Item, int], seen: Sequence[Collection[Item]], k: int
                   ) -> np.ndarray:
    """[len(seen), k]: each user's k most popular items they have not rated, ties by id;
    PADDING past the items a user has left."""
    longest = max((len(s) for s in seen), default=0)
    popular = popular_top_k(counts, k + longest).tolist()
    rows = np.full((len(seen), k), PADDING, dtype=object)
    for row, mine in enumerate(seen):
        filled = 0
        for item in popular:  # stops at k: ML-1M users rated up to 2,314 items
            if filled == k:
                break
            if item not in mine:
                rows[row, filled] = item
                filled += 1
    return rows


def served_catalogue(model: Any, fallback: Iterable[Hashable]) -> int:
    """How many items `recommend` can return: the size of the served model's catalogue
    (models/serving_module.py keeps its ids as the `catalog_ids` variable). A SavedModel
    without it (a hand-made test model, one exported elsewhere) is taken to serve the
    `fallback` items (the callers pass every item they saw: training and eval)."""
    ids = getattr(model, "catalog_ids", None)
    return int(ids.shape[0]) if ids is not None else len(set(fallback))


def catalogue_ids(model: Any) -> list | None:
    """The ids `recommend` can return (the `catalog_ids` variable), None without it."""
    ids = getattr(model, "catalog_ids", None)
    return None if ids is None else ids.numpy().tolist()
