"""What text_encoder.py measures on a served model: warm and cold hit rates, RMSE, and
the random and popularity references on the cold interactions.

Shared by the cold-item benchmarks (cold_item_validation, cold_item_first_stage,
item_item_cold_diag), so each counts a cold interaction the same way.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from quality_data import Prepared, Truth
from served_metrics import batched

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.models import evaluation as E

KS = (10, 50, 100)
TOP = 10


def rmse(served: dict, prepared: Prepared) -> float:
    """serving_default on the raw held-out examples."""
    predicted, actual = [], []
    spec = {F.RATING: tf.io.FixedLenFeature([1], tf.float32)}
    for start in range(0, len(prepared.eval_examples), 4096):
        batch = tf.constant(prepared.eval_examples[start : start + 4096])
        predicted.append(served["serving_default"](examples=batch)[F.OUT_RATING].numpy())
        actual.append(tf.io.parse_example(batch, spec)[F.RATING].numpy()[:, 0])
    return E.rating_errors(np.concatenate(predicted), np.concatenate(actual))["rmse"]


def warm_metrics(served: dict, prepared: Prepared, truth: Truth) -> dict:
    """HR@K (retrieve), P/R/NDCG@10 (recommend), RMSE on the official held-out ratings."""
    retrieved = batched(served[S.RETRIEVE], truth.users, k=tf.constant(max(KS)))[S.ITEM_IDS]
    recommended = batched(served[S.RECOMMEND], truth.users, k=tf.constant(TOP))[S.ITEM_IDS]
    return {
        **E.hit_rates(retrieved, truth.row_user, truth.items, KS),
        **E.ranking_metrics(recommended, truth.relevant, TOP),
        "rmse": rmse(served, prepared),
    }


def cold_metrics(served: dict, truth: Truth, cold: set[str]) -> dict:
    """Cold and warm HR@K on the whole catalogue, under both ranking rules.

    `cold_*`/`warm_*`: `retrieve`, the user's training items stay in the ranking
    (FactorizedTopK semantics, as in quality.py). `served_*`: `recommend`, what
    users get: training items excluded, blend re-ranking. `arrived_*`: the
    held-out interactions on items that had no training ratings before the draw
    (a subset of `warm_*`'s rows): the catalogue's real new arrivals, which the
    drawn cold items stand in for.
    """
    k = tf.constant(max(KS))
    ranked = {
        "": batched(served[S.RETRIEVE], truth.users, k=k)[S.ITEM_IDS],
        "served_": batched(served[S.RECOMMEND], truth.users, k=k)[S.ITEM_IDS],
    }
    out = {}
    for rule, items in ranked.items():
        for prefix, rows in row_groups(truth, cold):
            hits = E.hit_rates(items, truth.row_user[rows], truth.items[rows], KS)
            out.update({f"{rule}{prefix}_{k}": v for k, v in hits.items()})
    return out


def cold_rows(items: np.ndarray, cold: set[str]) -> np.ndarray:
    """Boolean mask of the held-out interactions whose item is a cold item."""
    keys = {c.encode() for c in cold}
    return np.array([i in keys for i in items.tolist()], dtype=bool)


def arrived_rows(truth: Truth, cold: set[str]) -> np.ndarray:
    """Boolean mask of the held-out interactions whose item has no training ratings
    and is not a drawn cold item: it arrived after the split."""
    return ~np.isin(truth.items, truth.train_items) & ~cold_rows(truth.items, cold)


def row_groups(truth: Truth, cold: set[str]) -> tuple[tuple[str, np.ndarray], ...]:
    """(name, mask) of the held-out interactions each cold-item hit rate is over:
    drawn cold items, every other item (warm), and the arrived items among those."""
    is_cold = cold_rows(truth.items, cold)
    return ("cold", is_cold), ("warm", ~is_cold), ("arrived", arrived_rows(truth, cold))


def baselines(truth: Truth, cold: set[str], catalog_size: int) -> dict[str, dict]:
    """Random and popularity (most-rated training items) on the cold interactions.

    Random is K/N with seen items ranked, K/(N - seen) without (mean over the
    interactions; the same for arrived items, rows of arrived_rows). Popularity
    ranks cold items last (no training ratings), so it is 0 under both rules.
    """
    groups = dict(row_groups(truth, cold))
    is_cold = groups["cold"]
    top = E.popularity_ranking(truth.train_items, max(KS) + max(map(len, truth.seen)))
    seen = [set(truth.catalog[s].tolist()) for s in truth.seen]
    unseen_top = np.stack([[i for i in top if i not in s][: max(KS)] for s in seen])
    rows, items = truth.row_user[is_cold], truth.items[is_cold]
    pop = E.hit_rates(np.tile(top[: max(KS)], (len(truth.users), 1)), rows, items, KS)
    pop_served = E.hit_rates(unseen_top, rows, items, KS)
    unseen = catalog_size - np.array([len(s) for s in truth.seen])
    random = {}
    for prefix in ("cold", "arrived"):
        mask = groups[prefix]
        if not mask.any():
            continue
        random.update({f"{prefix}_hit_rate@{k}": k / catalog_size for k in KS})
        random.update({f"served_{prefix}_hit_rate@{k}": float(np.mean(
            k / unseen[truth.row_user[mask]])) for k in KS})
    return {
        "random": random,
        "popularity": {
            **{f"cold_{k}": v for k, v in pop.items()},
            **{f"served_cold_{k}": v for k, v in pop_served.items()},
        },
    }
