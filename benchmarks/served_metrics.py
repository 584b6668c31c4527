"""Served-path quality metrics, shared by quality.py and served_quality.py.

Everything here works on plain arrays and on a SavedModel's *signatures*
(`recommend`, `retrieve`, `score`), so it measures what TF Serving answers and
imports no model code: served_quality.py runs it on a pushed model loaded with
plain `tf.saved_model.load`. The metric definitions are models/evaluation.py's.

Protocol (issue 14 §1):
- P@10, R@10, NDCG@10, R@50: per test user, `recommend(k=50)`, training items
  excluded by the model (baselines: by `top_k_unseen`); relevance = every
  held-out item of the user (binary);
- HR@10/50/100: per held-out interaction, `retrieve(k=100)` over the whole
  catalogue, seen items kept (TFRS FactorizedTopK semantics; a comparison with
  the TFRS tutorial, not a target);
- RMSE/MAE: `score(user_id, [[item_id]])` per held-out rating, i.e. the user's
  latest profile, as served;
- coverage@10 / novelty@10 of the recommended top 10, coverage over the catalogue the
  recommender can return (a served model's own: served_outputs' "catalogue_size");
- popularity: most training interactions first, ties by item id, each user's training
  items excluded. Popularity and coverage are the RetrievalEvaluator's definitions,
  imported from it (components/retrieval_evaluator/served_lists.py), so the pipeline's
  numbers and this benchmark's agree.

example_metrics is the other view, the one the pipeline's Evaluator gates on:
TFMA's rating RMSE and relevance AUC from `serving_default` on raw examples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.components.retrieval_evaluator.served_lists import (
    popular_top_k,
    popular_unseen,
    popularity_counts,
    served_catalogue,
    with_unrated,
)
from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.models import evaluation as E

HIT_KS = (10, 50, 100)  # HR@K through `retrieve`
TOP = 10  # P/R/NDCG@10, coverage, novelty
DEEP = 50  # R@50 through `recommend(k=50)`
BATCH_USERS = 512
BATCH_ROWS = 4096
# A served signature, as a loaded SavedModel's `signatures[name]` is called.
SignatureFn: TypeAlias = Callable[..., dict[str, tf.Tensor]]


@dataclasses.dataclass
class GroundTruth:
    """A train/test split in the form the metrics need (ids as bytes, like the signatures').

    The catalogue is the set of items seen in training (what the benchmark's
    models retrieve from; coverage is relative to it, unless the outputs name the
    catalogue a served model can return).
    """

    catalog: np.ndarray  # [C] item ids
    users: np.ndarray  # [U] test user ids
    row_user: np.ndarray  # [n] row in `users` of each held-out interaction
    items: np.ndarray  # [n] held-out item ids
    ratings: np.ndarray  # [n] held-out ratings
    seen: list[np.ndarray]  # per test user: catalogue positions rated in training
    relevant: list[set]  # per test user: held-out item ids
    item_users: dict  # item id -> distinct training users (novelty)
    num_train_users: int
    train_items: np.ndarray  # [N] item id of each training rating
    train_ratings: np.ndarray  # [N]

    @classmethod
    def from_arrays(
        cls,
        train_users: np.ndarray,
        train_items: np.ndarray,
        train_ratings: np.ndarray,
        test_users: np.ndarray,
        test_items: np.ndarray,
        test_ratings: np.ndarray,
    ) -> GroundTruth:
        train_users, train_items = as_bytes(train_users), as_bytes(train_items)
        test_users, test_items = as_bytes(test_users), as_bytes(test_items)
        catalog = np.unique(train_items)
        position = {item: p for p, item in enumerate(catalog.tolist())}
        users, row_user = np.unique(test_users, return_inverse=True)
        seen_by_user: dict[bytes, list[int]] = {}
        for user, item in zip(train_users.tolist(), train_items.tolist(), strict=True):
            seen_by_user.setdefault(user, []).append(position[item])
        seen = [np.unique(seen_by_user.get(u, [])).astype(np.int64) for u in users.tolist()]
        relevant: list[set] = [set() for _ in users]
        for row, item in zip(row_user.tolist(), test_items.tolist(), strict=True):
            relevant[row].add(item)
        pairs = pd.DataFrame({"u": train_users, "i": train_items}).drop_duplicates()
        return cls(
            catalog=catalog,
            users=users,
            row_user=row_user.astype(np.int64),
            items=test_items,
            ratings=np.asarray(test_ratings, np.float64),
            seen=seen,
            relevant=relevant,
            item_users=pairs.groupby("i").size().to_dict(),
            num_train_users=int(pd.unique(train_users).size),
            train_items=train_items,
            train_ratings=np.asarray(train_ratings, np.float64),
        )


def as_bytes(ids: np.ndarray) -> np.ndarray:
    """Ids as a bytes object array (signatures return bytes; raw tables hold str)."""
    values = np.asarray(ids)
    if values.dtype.kind in ("U", "O") and len(values) and isinstance(values.flat[0], str):
        return np.array([v.encode("utf-8") for v in values.tolist()], dtype=object)
    return values.astype(object)


# ------------------------------------------------------------------ metrics
def measure(truth: GroundTruth, outputs: dict) -> dict:
    """Every metric from one variant's outputs.

    outputs: "recommended" [U, >=DEEP] item ids, seen excluded, best first;
    optional "retrieved" [U, 100] (seen kept), "retrieval_ranked" / "score_ranked"
    [U, >=10] (alternative top-10s, reported as retrieval_* / score_*),
    "ratings" (predicted, actual), "train_seconds", "catalogue_size" (the items the
    recommender can return, coverage's denominator; default: the training items).
    """
    metrics: dict = {}
    recommended = outputs["recommended"]
    metrics.update(E.ranking_metrics(recommended, truth.relevant, TOP))
    metrics[f"recall@{DEEP}"] = E.ranking_metrics(recommended, truth.relevant, DEEP)[
        f"recall@{DEEP}"
    ]
    if outputs.get("retrieved") is not None:
        metrics.update(E.hit_rates(outputs["retrieved"], truth.row_user, truth.items, HIT_KS))
    for key, prefix in (("retrieval_ranked", "retrieval_"), ("score_ranked", "score_")):
        if outputs.get(key) is not None:
            extra = E.ranking_metrics(outputs[key], truth.relevant, TOP)
            metrics.update({f"{prefix}{k}": v for k, v in extra.items()})
    metrics.update(
        E.coverage_and_novelty(
            recommended, truth.item_users, outputs.get("catalogue_size", len(truth.catalog)),
            truth.num_train_users, TOP,
        )
    )
    if outputs.get("ratings") is not None:
        predicted, actual = outputs["ratings"]
        metrics.update(E.rating_errors(predicted, actual))
    metrics["train_seconds"] = round(float(outputs.get("train_seconds", 0.0)), 1)
    return metrics


# ------------------------------------------------------------------ baselines
def popularity_outputs(truth: GroundTruth, catalogue: Sequence[bytes] | None = None) -> dict:
    """Most-rated training items for everyone, ties by id (seen excluded for the top-K:
    the RetrievalEvaluator's popularity, served_lists.py), then a served `catalogue`'s
    unrated items when given (the pushed model's, as the evaluator ranks them); for
    ratings, the item's mean training rating, the global mean for items without one."""
    counts = popularity_counts(truth.train_items.tolist())
    if catalogue is not None:
        counts = with_unrated(counts, catalogue)
    seen = [set(truth.catalog[positions].tolist()) for positions in truth.seen]
    frame = pd.DataFrame({"i": truth.train_items, "r": truth.train_ratings})
    means = frame.groupby("i")["r"].mean().to_dict()
    global_mean = float(truth.train_ratings.mean())
    predicted = np.array([means.get(i, global_mean) for i in truth.items.tolist()])
    return {
        "retrieved": np.tile(popular_top_k(counts, max(HIT_KS)), (len(truth.users), 1)),
        "recommended": popular_unseen(counts, seen, min(DEEP, len(counts))),
        "ratings": (predicted, truth.ratings),
        "train_seconds": 0.0,
    }


def scores_outputs(truth: GroundTruth, scores: np.ndarray) -> dict:
    """Top-K outputs of a [U, C] score matrix over the catalogue (e.g. EASE)."""
    k = min(max(HIT_KS), scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return {
        "retrieved": truth.catalog[np.take_along_axis(top, order, axis=1)],
        "recommended": truth.catalog[E.top_k_unseen(scores, truth.seen, DEEP)],
    }


# ------------------------------------------------------------------ signatures
def batched(
    fn: Callable, users: np.ndarray, size: int = BATCH_USERS, **kwargs: tf.Tensor
) -> dict[str, np.ndarray]:
    """Call a user_id signature over `users` in batches; outputs concatenated."""
    parts: dict[str, list] = {}
    for start in range(0, len(users), size):
        out = fn(user_id=tf.constant(users[start : start + size]), **kwargs)
        for key, value in out.items():
            parts.setdefault(key, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def served_ratings(score: Callable, truth: GroundTruth) -> np.ndarray:
    """Predicted rating of every held-out (user, item) through `score`: one item per row."""
    users = truth.users[truth.row_user]
    predicted = []
    for start in range(0, len(users), BATCH_ROWS):
        stop = start + BATCH_ROWS
        out = score(
            user_id=tf.constant(users[start:stop]),
            item_ids=tf.constant(truth.items[start:stop][:, None]),
        )
        predicted.append(out["ratings"].numpy()[:, 0])
    return np.concatenate(predicted) if predicted else np.zeros(0)


def served_outputs(signatures: Mapping[str, SignatureFn],
                   truth: GroundTruth, ratings: bool = True, model: object = None) -> dict:
    """The served outputs of a SavedModel: `recommend(k=50)`, `retrieve(k=100)` (when the
    model has it) and, with `ratings`, `score` per held-out rating. `model`, the loaded
    SavedModel, tells the catalogue it serves (coverage's denominator, as the
    RetrievalEvaluator's: served_lists.py); without it, the training items (quality.py's
    models retrieve from them)."""
    outputs: dict = {}
    catalog = len(truth.catalog)
    if model is not None:
        catalog = outputs["catalogue_size"] = served_catalogue(
            model, [*truth.catalog.tolist(), *truth.items.tolist()])
    deep, wide = tf.constant(min(DEEP, catalog)), tf.constant(min(max(HIT_KS), catalog))
    outputs["recommended"] = batched(signatures[S.RECOMMEND], truth.users, k=deep)[S.ITEM_IDS]
    if "retrieve" in signatures:
        outputs["retrieved"] = batched(signatures[S.RETRIEVE], truth.users, k=wide)[S.ITEM_IDS]
    if ratings:
        outputs["ratings"] = (served_ratings(signatures[S.SCORE], truth), truth.ratings)
    return outputs


# TFMA's AUC: a ROC curve over this many evenly spaced thresholds, interpolated
# (tensorflow_model_analysis/metrics/binary_confusion_matrices.py
# DEFAULT_NUM_THRESHOLDS); tf.keras.metrics.AUC is the same estimator.
TFMA_AUC_THRESHOLDS = 10_000


def example_metrics(serving_default: Callable, examples: np.ndarray) -> dict[str, float]:
    """What the pipeline's Evaluator (TFMA) measures, on serialized raw held-out tf.Examples,
    each with its own history: `serving_default`'s rating RMSE against the rating, and its
    relevance AUC against "liked" (rating >= LIKED_THRESHOLD, the relevance label)."""
    predicted, relevance, actual = [], [], []
    spec = {F.RATING: tf.io.FixedLenFeature([1], tf.float32)}
    for start in range(0, len(examples), BATCH_ROWS):
        batch = tf.constant(examples[start : start + BATCH_ROWS])
        out = serving_default(examples=batch)
        predicted.append(out[F.OUT_RATING].numpy().reshape(-1))
        relevance.append(out[F.OUT_RELEVANCE].numpy().reshape(-1))
        actual.append(tf.io.parse_example(batch, spec)[F.RATING].numpy()[:, 0])
    ratings = np.concatenate(actual)
    auc = tf.keras.metrics.AUC(num_thresholds=TFMA_AUC_THRESHOLDS)
    auc.update_state(ratings >= F.LIKED_THRESHOLD, np.concatenate(relevance))
    return {
        "rmse": E.rating_errors(np.concatenate(predicted), ratings)["rmse"],
        "relevance_auc": float(auc.result().numpy()),
    }
