"""Baselines for benchmarks/quality.py: EASE (λ tuned on a validation cut of the
training data) and the TFRS tutorial model. Popularity is in served_metrics.py
(served_quality.py reports it too).

EASE (Steck 2019) is a closed-form item-item regression on the 0/1 user-item
matrix: a strong, well-known collaborative-filtering reference on the same
protocol. It gives no ratings.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import tfrs_tutorial
from served_metrics import TOP, GroundTruth, as_bytes, scores_outputs

from mtrec.contracts import features as F
from mtrec.data.splits import TIME_PROTOCOL, time_split
from mtrec.models import evaluation as E

# Issue 14: EASE's λ is chosen per fold, by NDCG@10 on a validation cut of that
# fold's training ratings (never on the test fold).
EASE_LAMBDAS = (100.0, 200.0, 500.0, 1000.0, 2000.0)
VALIDATION_FRACTION = 0.2


def interactions(train_users: np.ndarray, train_items: np.ndarray, catalog: np.ndarray
                 ) -> np.ndarray:
    """The 0/1 [users, C] training matrix, users in sorted order, items in catalogue order."""
    position = {item: p for p, item in enumerate(catalog.tolist())}
    users, user_row = np.unique(train_users, return_inverse=True)
    cols = np.array([position[i] for i in train_items.tolist()], np.int64)
    matrix = np.zeros((len(users), len(catalog)), np.float64)
    matrix[user_row, cols] = 1.0
    return matrix


def ease_weights(
    train_users: np.ndarray, train_items: np.ndarray, catalog: np.ndarray, lam: float
) -> np.ndarray:
    """EASE's [C, C] item-item weights B on the 0/1 training matrix (diagonal 0)."""
    return ease_from(interactions(train_users, train_items, catalog), lam)


def ease_from(matrix: np.ndarray, lam: float) -> np.ndarray:
    """EASE's weights from a 0/1 [users, C] matrix."""
    inverse = np.linalg.inv(matrix.T @ matrix + lam * np.eye(matrix.shape[1]))
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights


def cosine_weights(matrix: np.ndarray) -> np.ndarray:
    """Item-kNN's [C, C] weights: the cosine of two items' user columns (diagonal 0)."""
    norms = np.sqrt(matrix.sum(axis=0))
    weights = (matrix.T @ matrix) / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(weights, 0.0)
    return weights


def user_knn_scores(matrix: np.ndarray, history: np.ndarray, k: int) -> np.ndarray:
    """[Q, C] user-kNN scores: each query row's k training users most alike (cosine of
    their 0/1 rows) vote for their items, weighted by that similarity."""
    overlap = history @ matrix.T
    similarity = overlap / np.maximum(np.sqrt(matrix.sum(axis=1)), 1e-12)[None, :]
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    weights = np.take_along_axis(similarity, nearest, axis=1)
    return np.stack([w @ matrix[n] for w, n in zip(weights, nearest, strict=True)])


def ease_scores(
    train_users: np.ndarray,
    train_items: np.ndarray,
    catalog: np.ndarray,
    lam: float,
    query_users: np.ndarray,
) -> np.ndarray:
    """[len(query_users), len(catalog)] EASE scores (zeros for users without training rows)."""
    position = {item: p for p, item in enumerate(catalog.tolist())}
    history = np.zeros((len(query_users), len(catalog)), np.float64)
    row_of = {u: r for r, u in enumerate(query_users.tolist())}
    for user, item in zip(train_users.tolist(), train_items.tolist(), strict=True):
        if user in row_of:
            history[row_of[user], position[item]] = 1.0
    return history @ ease_weights(train_users, train_items, catalog, lam)


def validation_cut(
    users: np.ndarray, timestamps: np.ndarray, protocol: str, seed: int = 0
) -> np.ndarray:
    """True = a validation row, carved from training rows the way the split was made:
    each user's latest 20% on a time split, a seeded random 20% otherwise."""
    if protocol == TIME_PROTOCOL:
        frame = pd.DataFrame({F.USER_ID: users, F.TIMESTAMP: timestamps})
        return time_split(frame, VALIDATION_FRACTION)
    return np.random.default_rng(seed).random(len(users)) < VALIDATION_FRACTION


def choose_ease_lambda(
    users: np.ndarray,
    items: np.ndarray,
    timestamps: np.ndarray,
    protocol: str,
    lambdas: tuple[float, ...] = EASE_LAMBDAS,
) -> tuple[float, dict[str, float]]:
    """(best λ by validation NDCG@10, {λ: validation NDCG@10}) on training rows only."""
    users, items = as_bytes(users), as_bytes(items)
    cut = validation_cut(users, timestamps, protocol)
    zeros = np.zeros(len(users))
    truth = GroundTruth.from_arrays(
        users[~cut], items[~cut], zeros[~cut], users[cut], items[cut], zeros[cut]
    )
    found: dict[str, float] = {}
    for lam in lambdas:
        scores = ease_scores(users[~cut], items[~cut], truth.catalog, lam, truth.users)
        ranked = scores_outputs(truth, scores)["recommended"]
        found[f"{lam:g}"] = E.ranking_metrics(ranked, truth.relevant, TOP)[f"ndcg@{TOP}"]
    best = max(lambdas, key=lambda lam: found[f"{lam:g}"])
    return best, found


def run_ease(
    truth: GroundTruth, train_users: np.ndarray, train_items: np.ndarray, lam: float
) -> dict:
    t0 = time.time()
    scores = ease_scores(train_users, train_items, truth.catalog, lam, truth.users)
    return {**scores_outputs(truth, scores), "train_seconds": time.time() - t0}


def run_tutorial(
    truth: GroundTruth,
    train_users: np.ndarray,
    train_items: np.ndarray,
    train_ratings: np.ndarray,
    seed: int = 0,
) -> dict:
    """The TFRS multitask tutorial's joint model, trained and measured like the others."""
    trained = tfrs_tutorial.train(train_users, train_items, train_ratings, seed=seed)
    # Both the tutorial and our model retrieve from the training items.
    position = {item: p for p, item in enumerate(trained.catalog.tolist())}
    order = np.array([position[i] for i in truth.catalog.tolist()])
    scores = trained.scores(truth.users)[:, order]
    predicted = trained.predict_ratings(truth.users[truth.row_user], truth.items)
    return {
        **scores_outputs(truth, scores),
        "ratings": (predicted, truth.ratings),
        "train_seconds": trained.train_seconds,
    }

