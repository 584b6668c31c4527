"""Scores the trained model through its served signatures, next to popularity.

- `retrieve`: HR@K of every eval interaction over the full catalogue (seen
  items kept, FactorizedTopK semantics);
- `recommend`: per eval user, NDCG/P/R@k of what a user is served (training
  items excluded), against popularity with the same exclusion, and against the
  baseline (latest blessed) model when there is one.

Blessing: every threshold is a lower bound on a metric. Besides the computed
ones, two derived metrics make it relative: `ndcg@10_lift` (model / popularity
- 1) and `ndcg@10_change` (model - baseline; skipped without a baseline, like
TFMA's change thresholds). So a model no better than popularity, or worse than
the model it would replace, is not blessed. Both carry a standard error over the
eval users (`..._stderr`), for the summary to say how much of a verdict is noise
(a 40-rating log's 8 eval users: lift 0.032, standard error 0.045; the sample's
600: lift 2.62, standard error 0.145). `eval_cold_users` counts the scored eval users
without a training rating (a whole-user holdout serves them all the new-user prior).
Where the eval split cannot tell models apart, or a refusal is within noise, the gate
still refuses; gate_notes.py says why, in the log, the summary and the report.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from mtrec.components.retrieval_evaluator.gate_notes import failure_lines
from mtrec.components.retrieval_evaluator.served_lists import (
    catalogue_ids,
    popular_top_k,
    popular_unseen,
    with_unrated,
)
from mtrec.contracts import features as F
from mtrec.contracts.artifacts import (
    BLESSED_FILE,
    NOT_BLESSED_FILE,
    RETRIEVAL_FAILED,
    RETRIEVAL_METRICS,
    RETRIEVAL_METRICS_FILE,
    RETRIEVAL_THRESHOLDS,
)
from mtrec.contracts.metrics import (
    BASELINE_PREFIX,
    CHANCE_PREFIX,
    EVAL_COLD_USERS,
    EVAL_USERS,
    NDCG,
    NDCG_CHANCE_LIFT,
    NDCG_CHANGE,
    NDCG_LIFT,
    POPULARITY_PREFIX,
    RECOMMEND_K,
    STDERR_SUFFIX,
    at,
)
from mtrec.contracts.pipeline import (
    BASELINE_MODEL,
    BLESSED,
    BLESSING,
    EVAL_SPLIT,
    EVAL_SPLIT_KEY,
    EXAMPLES,
    KS,
    MAX_USERS,
    MODEL,
    THRESHOLDS,
    TRAIN_SPLIT,
    TRAIN_SPLIT_KEY,
)
from mtrec.contracts.signatures import EXCLUDED_BELOW, ITEM_IDS, RECOMMEND, RETRIEVE, SCORES
from mtrec.data.artifact_io import read_files, split_files
from mtrec.models.evaluation import (
    chance_ndcg,
    change_stderr,
    coverage_and_novelty,
    hit_rates,
    lift_stderr,
    means,
    per_user_ranking,
)

log = logging.getLogger(__name__)
_BATCH = 1024
_NDCG = at(NDCG, RECOMMEND_K)


def _pair_batches(examples: types.Artifact, split: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(user_id, item_id) bytes arrays of a split, 8,192 examples at a time (a stream)."""
    uri = artifact_utils.get_split_uri([examples], split)
    files = split_files(uri, required=False)
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in (F.USER_ID, F.ITEM_ID)}
    if not files:
        return
    dataset = read_files(files).batch(8192)
    for batch in dataset.map(lambda x: tf.io.parse_example(x, spec)).as_numpy_iterator():
        yield batch[F.USER_ID], batch[F.ITEM_ID]


def item_counts(examples: types.Artifact, split: str) -> dict[bytes, int]:
    """Interactions per item; memory grows with the catalogue, not the log."""
    counts: dict[bytes, int] = {}
    for _, items in _pair_batches(examples, split):
        values, n = np.unique(items, return_counts=True)
        for value, c in zip(values.tolist(), n.tolist(), strict=True):
            counts[value] = counts.get(value, 0) + c
    return counts


def user_count(examples: types.Artifact, split: str) -> int:
    """Distinct users of a split (novelty's denominator)."""
    users: set[bytes] = set()
    for batch_users, _ in _pair_batches(examples, split):
        users.update(batch_users.tolist())
    return len(users)


def sampled_pairs(
    examples: types.Artifact, split: str, max_users: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """The split's (user, item) pairs of at most `max_users` users, and its user count.

    Scoring costs users x catalogue, which grows quadratically when both grow
    with the data; a fixed seeded sample of users keeps it linear. A user is
    kept or dropped whole, so HR@K stays a per-interaction mean over the kept users.
    """
    distinct: set[bytes] = set()
    for u, _ in _pair_batches(examples, split):
        distinct.update(np.unique(u).tolist())
    all_users = np.array(sorted(distinct), dtype=object)
    kept = all_users
    if max_users and len(all_users) > max_users:
        kept = np.random.default_rng(seed).choice(all_users, max_users, replace=False)
    kept_set = set(kept.tolist())  # np.isin compares object arrays pairwise: O(n x users)
    users, items = [], []
    for u, i in _pair_batches(examples, split):
        mask = np.fromiter((user in kept_set for user in u.tolist()), bool, len(u))
        users.append(u[mask])
        items.append(i[mask])
    if not users:
        return np.array([], dtype=object), np.array([], dtype=object), 0
    return np.concatenate(users), np.concatenate(items), len(all_users)


def top_items(model: str | Any, signature: str, users: np.ndarray, k: int) -> np.ndarray:
    """[len(users), k] item ids from a `user_id, k` signature (`retrieve` or `recommend`)
    of a SavedModel (its directory, or loaded once by the caller for several calls);
    b"" where a list is padded with excluded items (a user with fewer than k left)."""
    loaded = tf.saved_model.load(model) if isinstance(model, str) else model
    fn = loaded.signatures[signature]
    rows = []
    for start in range(0, len(users), _BATCH):
        out = fn(user_id=tf.constant(users[start : start + _BATCH]), k=tf.constant(k))
        ids = out[ITEM_IDS].numpy()
        if SCORES in out:
            ids = np.where(out[SCORES].numpy() > EXCLUDED_BELOW, ids, b"")
        rows.append(ids)
    return np.concatenate(rows) if rows else np.zeros((0, k), dtype=object)


def seen_items(examples: types.Artifact, split: str, users: np.ndarray) -> list[set]:
    """Per user (in `users` order), the items they rated in `split`."""
    row = {u: r for r, u in enumerate(users.tolist())}
    seen: list[set] = [set() for _ in row]
    for u, i in _pair_batches(examples, split):
        for user, item in zip(u.tolist(), i.tolist(), strict=True):
            if user in row:
                seen[row[user]].add(item)
    return seen


def relative_metrics(metrics: dict, baseline: dict | None) -> dict:
    """The derived metrics the relative gates read (see the module docstring)."""
    ndcg = metrics[_NDCG]
    derived = {NDCG_LIFT: _lift(ndcg, metrics[POPULARITY_PREFIX + _NDCG])}
    if CHANCE_PREFIX + _NDCG in metrics:
        derived[NDCG_CHANCE_LIFT] = _lift(ndcg, metrics[CHANCE_PREFIX + _NDCG])
    if baseline is not None:
        derived[NDCG_CHANGE] = ndcg - baseline[_NDCG]
    return derived


def _lift(ndcg: float, reference: float) -> float:
    return ndcg / reference - 1.0 if reference > 0 else (0.0 if ndcg == 0 else float("inf"))


def relative_stderrs(ours: np.ndarray, popularity: np.ndarray, baseline: np.ndarray | None,
                     chance: np.ndarray | None = None) -> dict[str, float]:
    """The relative gates' standard errors over the eval users, from per-user NDCG."""
    errors = {NDCG_LIFT + STDERR_SUFFIX: lift_stderr(ours, popularity)}
    if chance is not None:
        errors[NDCG_CHANCE_LIFT + STDERR_SUFFIX] = lift_stderr(ours, chance)
    if baseline is not None:
        errors[NDCG_CHANGE + STDERR_SUFFIX] = change_stderr(ours, baseline)
    return errors


def failed_thresholds(metrics: dict, thresholds: dict[str, float]) -> dict:
    """{metric: (value, bound)} for every bound not met.

    Only the change against a baseline may be missing (first run: nothing to compare).
    """
    missing = set(thresholds) - set(metrics) - {NDCG_CHANGE}
    if missing:
        raise KeyError(f"thresholds name metrics that were not computed: {sorted(missing)}")
    return {m: (metrics[m], t) for m, t in thresholds.items() if m in metrics and metrics[m] < t}


def evaluate(saved_model_dir: str, examples: types.Artifact, ks: Sequence[int],
             eval_split: str, train_split: str, max_users: int = 0,
             baseline_dir: str | None = None) -> dict[str, float]:
    """Served metrics of the model (and the baseline), and popularity's on the same users.

    `max_users` 0 scores every eval user.
    """
    users, items, total_users = sampled_pairs(examples, eval_split, max_users)
    rated = item_counts(examples, train_split)
    model = tf.saved_model.load(saved_model_dir)  # once for both signatures
    # The items the signatures can rank (a k past them is refused) and coverage's
    # denominator: the served catalogue (served_lists.py). Bounded by the training
    # items alone, the lists left out every eval item nobody had rated in training.
    # Popularity ranks the served catalogue's unrated items last; a model without the
    # catalogue (a hand-made test model) is taken to serve the items seen, unpadded:
    # eval items would tell popularity what is held out.
    served = catalogue_ids(model)
    served_set = set(served) if served is not None else set(rated) | set(items.tolist())
    catalogue = len(served_set)
    counts = rated if served is None else with_unrated(rated, served)
    unique_users, row_user = np.unique(users, return_inverse=True)
    kmax = max(ks)
    kmax_model = min(kmax, catalogue)
    ranked = top_items(model, RETRIEVE, unique_users, kmax_model)
    metrics = hit_rates(ranked, row_user, items, ks)
    pop = hit_rates(popular_top_k(counts, kmax)[None, :], np.zeros(len(items), dtype=np.int64),
                    items, ks)
    metrics.update({POPULARITY_PREFIX + k: v for k, v in pop.items()})

    relevant: list[set] = [set() for _ in unique_users]
    for row, item in zip(row_user.tolist(), items.tolist(), strict=True):
        relevant[row].add(item)
    k = min(RECOMMEND_K, catalogue)
    seen = seen_items(examples, train_split, unique_users)
    recommended = top_items(model, RECOMMEND, unique_users, k)
    ours = per_user_ranking(recommended, relevant, RECOMMEND_K)
    metrics.update(means(ours))
    # Coverage of those items and novelty (-log2 of the share of training users who
    # rated the item: cleaning drops duplicate ratings, so counts are users).
    metrics.update(coverage_and_novelty(recommended, rated, catalogue,
                                        user_count(examples, train_split), RECOMMEND_K))
    popular = per_user_ranking(popular_unseen(counts, seen, k), relevant, RECOMMEND_K)
    metrics.update({POPULARITY_PREFIX + m: v for m, v in means(popular).items()})
    # What a random order of each user's servable unseen items would score (the floor).
    chance = chance_ndcg(
        np.array([catalogue - sum(i in served_set for i in mine) for mine in seen]),
        np.array([sum(i in served_set and i not in mine for i in truth)
                  for truth, mine in zip(relevant, seen, strict=True)]),
        np.array([len(truth) for truth in relevant]), RECOMMEND_K)
    metrics[CHANCE_PREFIX + _NDCG] = float(chance.mean()) if len(chance) else 0.0
    baseline = None
    if baseline_dir:
        baseline = per_user_ranking(top_items(baseline_dir, RECOMMEND, unique_users, k),
                                    relevant, RECOMMEND_K)
        metrics.update({BASELINE_PREFIX + m: v for m, v in means(baseline).items()})
    metrics.update(relative_metrics(metrics, None if baseline is None else means(baseline)))
    metrics.update(relative_stderrs(ours[_NDCG], popular[_NDCG],
                                    None if baseline is None else baseline[_NDCG], chance))
    metrics["eval_interactions"] = int(len(items))
    metrics[EVAL_USERS] = int(len(unique_users))
    metrics[EVAL_COLD_USERS] = sum(1 for mine in seen if not mine)  # no training rating
    metrics["eval_users_total"] = int(total_users)
    return metrics


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        model = artifact_utils.get_single_instance(input_dict[MODEL])
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES])
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING])
        ks = json.loads(exec_properties[KS])
        thresholds = json.loads(exec_properties[THRESHOLDS])
        baselines = input_dict.get(BASELINE_MODEL) or []
        metrics = evaluate(
            path_utils.serving_model_path(model.uri),
            examples,
            ks,
            exec_properties.get(EVAL_SPLIT_KEY) or EVAL_SPLIT,
            exec_properties.get(TRAIN_SPLIT_KEY) or TRAIN_SPLIT,
            int(exec_properties.get(MAX_USERS) or 0),
            baseline_dir=path_utils.serving_model_path(baselines[0].uri) if baselines else None,
        )
        failed = failed_thresholds(metrics, thresholds)
        blessed = not failed
        log.info("retrieval metrics %s; failed thresholds %s", metrics, failed)
        for line in failure_lines(metrics, failed, thresholds):
            log.info("%s", line)
        # TFX's local launcher creates output folders; a KFP v2 pod's does not.
        fileio.makedirs(blessing.uri)
        with fileio.open(os.path.join(blessing.uri, RETRIEVAL_METRICS_FILE), "w") as f:
            json.dump({RETRIEVAL_METRICS: metrics, RETRIEVAL_THRESHOLDS: thresholds,
                       RETRIEVAL_FAILED: failed}, f)
        marker = BLESSED_FILE if blessed else NOT_BLESSED_FILE
        with fileio.open(os.path.join(blessing.uri, marker), "w"):
            pass
        blessing.set_int_custom_property(BLESSED, int(blessed))
        blessing.set_string_custom_property("current_model", model.uri)
        blessing.set_int_custom_property("current_model_id", model.id)
        for name, value in metrics.items():
            key = name.replace("@", "_at_")
            if np.isfinite(value):
                blessing.set_float_custom_property(key, float(value))
            else:  # MLMD's SQL cannot hold inf (the lift over a popularity NDCG of 0)
                blessing.set_string_custom_property(key, str(float(value)))
