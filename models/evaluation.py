"""Top-K metrics shared by the pipeline's RetrievalEvaluator and the benchmarks.

Inputs are plain arrays so that any recommender (ours, popularity, the TFRS
tutorial baseline) is measured by the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtrec.contracts.metrics import COVERAGE, HIT_RATE, NDCG, NOVELTY, PRECISION, RECALL, at


def hit_rates(
    ranked: np.ndarray, row_user: np.ndarray, row_item: np.ndarray, ks: Sequence[int]
) -> dict[str, float]:
    """HR@K over interactions: is the held-out item in the user's top K?

    ranked: [num_users, max(ks)] item ids, best first (one row per user).
    row_user: [n] row of `ranked` for each held-out interaction.
    row_item: [n] the held-out item id.
    """
    if len(row_item) == 0:
        return {at(HIT_RATE, k): 0.0 for k in ks}
    top = ranked[row_user]  # [n, K]
    match = top == row_item[:, None]
    first = np.where(match.any(axis=1), match.argmax(axis=1), np.iinfo(np.int64).max)
    return {at(HIT_RATE, k): float(np.mean(first < k)) for k in ks}


def per_user_ranking(
    ranked: np.ndarray, relevant: Sequence[set], k: int = 10
) -> dict[str, np.ndarray]:
    """Per-user Precision@k, Recall@k and NDCG@k (binary relevance), one value per
    user with held-out items (users with none are skipped), in row order.

    ranked: [num_users, >=k] item ids with already-seen (training) items removed.
    relevant: for each row, the set of held-out items of that user.

    NDCG@k: relevance 1 for every held-out item (whatever its rating), DCG with
    1/log2(rank + 1), divided by the ideal DCG of min(|relevant|, k) hits; this
    is the definition that gives popularity NDCG@10 = 0.325 on ML-100K u1.
    """
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    precision, recall, ndcg = [], [], []
    for row, truth in zip(ranked, relevant, strict=True):
        if not truth:
            continue
        hits = np.array([item in truth for item in row[:k]], dtype=np.float64)
        precision.append(hits.sum() / k)
        recall.append(hits.sum() / len(truth))
        ideal = discounts[: min(len(truth), k)].sum()
        ndcg.append(float((hits * discounts[: len(hits)]).sum() / ideal))  # a row may be < k
    return {at(PRECISION, k): np.array(precision), at(RECALL, k): np.array(recall),
            at(NDCG, k): np.array(ndcg)}


def chance_ndcg(unseen: np.ndarray, relevant: np.ndarray, held_out: np.ndarray,
                k: int = 10) -> np.ndarray:
    """Per user, the expected NDCG@k of a uniformly random order of the `unseen` items
    `recommend` can serve them, `relevant` of which are held out (`held_out`: all their
    held-out items, the ideal DCG's count, as in per_user_ranking).

    By linearity, each of the first min(k, unseen) positions holds a held-out item with
    probability relevant / unseen. The gate's floor: popularity can rank below chance
    (a log whose eval items are new releases nobody rated in training), and one user
    with 6 unseen items, all held out, scores NDCG@10 1.0 in any order; both pushed
    models that learned nothing (a user's probe, 2026-12-07).
    """
    cumulative = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    unseen = np.asarray(unseen, dtype=np.int64)
    shown = cumulative[np.minimum(unseen, k)]
    dcg = np.divide(np.asarray(relevant, dtype=np.float64) * shown, unseen,
                    out=np.zeros(len(unseen)), where=unseen > 0)
    return dcg / cumulative[np.minimum(np.asarray(held_out, dtype=np.int64), k)]


def ranking_metrics(
    ranked: np.ndarray, relevant: Sequence[set], k: int = 10
) -> dict[str, float]:
    """per_user_ranking averaged over users."""
    return means(per_user_ranking(ranked, relevant, k))


def means(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """Each metric's mean over users (0 without any)."""
    return {name: float(values.mean()) if len(values) else 0.0
            for name, values in per_user.items()}


def lift_stderr(model: np.ndarray, reference: np.ndarray) -> float:
    """Standard error of mean(model) / mean(reference) - 1 over paired per-user values
    (the delta method for a ratio of means): with R the ratio, the residuals
    d = model - R * reference sum to 0, and SE = sqrt(sum d^2 / (n (n - 1))) / mean(reference).
    NaN for fewer than 2 users or a reference mean of 0."""
    n, base = len(model), float(np.mean(reference)) if len(reference) else 0.0
    if n < 2 or base == 0:
        return float("nan")
    residual = model - float(np.mean(model)) / base * reference
    return float(np.sqrt(np.sum(residual ** 2) / (n * (n - 1))) / base)


def change_stderr(model: np.ndarray, reference: np.ndarray) -> float:
    """Standard error of mean(model - reference) over paired per-user values (NaN for
    fewer than 2 users)."""
    if len(model) < 2:
        return float("nan")
    return float(np.std(model - reference, ddof=1) / np.sqrt(len(model)))


def coverage_and_novelty(
    ranked: np.ndarray, item_popularity: dict, num_items: int, num_users_train: int, k: int = 10
) -> dict[str, float]:
    """Catalogue coverage@k and mean self-information -log2 p(item) of recommendations.

    Empty ids (a served list's padding when fewer than k items are left) count as neither.
    """
    top = [i for i in ranked[:, :k].ravel().tolist() if i not in (b"", "")]
    coverage = len(set(top)) / max(num_items, 1)
    p = np.array([item_popularity.get(i, 0) / max(num_users_train, 1) for i in top])
    novelty = float(np.mean(-np.log2(np.clip(p, 1e-9, 1.0)))) if len(p) else 0.0
    return {at(COVERAGE, k): coverage, at(NOVELTY, k): novelty}


def popularity_ranking(
    train_items: np.ndarray, k: int, counts: np.ndarray | None = None
) -> np.ndarray:
    """The k most frequent training items, most popular first (ties by id).

    train_items: one entry per interaction, or (with `counts`) one per item.
    """
    if counts is None:
        values, counts = np.unique(train_items, return_counts=True)
    else:
        values = np.asarray(train_items)
    order = np.lexsort((values, -counts))
    return values[order][:k]


def top_k_unseen(scores: np.ndarray, seen: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Catalogue positions of each row's k best scores, skipping that row's seen positions.

    scores: [num_users, num_items]; seen[r]: catalogue positions user r already rated.
    """
    masked = np.array(scores, dtype=np.float64, copy=True)
    for row, positions in enumerate(seen):
        masked[row, positions] = -np.inf
    k = min(k, masked.shape[1])
    top = np.argpartition(-masked, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(masked, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def rating_errors(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of explicit-rating predictions."""
    error = np.asarray(predicted, np.float64) - np.asarray(actual, np.float64)
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}


def mean_user_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC per row (e.g. genres a user will like vs the model's interest scores),
    averaged over rows with at least one positive and one negative; ties count 1/2.
    """
    aucs = []
    for s, y in zip(np.asarray(scores, np.float64), np.asarray(labels, bool), strict=True):
        pos, neg = s[y], s[~y]
        if len(pos) == 0 or len(neg) == 0:
            continue
        greater = (pos[:, None] > neg[None, :]).sum()
        ties = (pos[:, None] == neg[None, :]).sum()
        aucs.append((greater + 0.5 * ties) / (len(pos) * len(neg)))
    return float(np.mean(aucs)) if aucs else float("nan")
