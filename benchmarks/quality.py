"""Recommendation quality on MovieLens: our multi-task model against baselines.

    .venv/bin/python benchmarks/quality.py                       # ML-100K u1
    .venv/bin/python benchmarks/quality.py --split u2
    .venv/bin/python benchmarks/quality.py --dataset ml-latest-small
    .venv/bin/python benchmarks/quality.py --holdout --config '{"l2": 1e-5}'   # tuning

One run: load + clean -> write_examples (official split, or a per-user time
split) -> the real preprocessing_fn through tf.Transform on Beam (cached under
the work dir) -> train every variant on the same transformed data -> measure
every variant with models/evaluation.py. Variants, side by side:

- popularity: most-rated training items (item mean / global mean for ratings);
- ease: EASE (Steck 2019), a closed-form item-item reference (no ratings);
- tfrs_tutorial: the TFRS multitask tutorial's joint model (tfrs_tutorial.py);
- joint: our model, all four tasks (ModelConfig defaults + --config);
- retrieval_only, rating_only: the same model and config with one task.

Our models are trained by the Trainer's own `train_and_export` and measured
through the exported SavedModel's signatures, i.e. what TF Serving answers:
`retrieve` for hit rates (full catalogue, seen items included, per held-out
interaction, FactorizedTopK semantics), `recommend` for the per-user top-10
(seen items excluded, blend re-ranking), `retrieve` over the whole catalogue
minus seen items for the retrieval-only top-10, `serving_default` on the raw
held-out examples for RMSE/MAE, `user_interest` for the interest AUC (genres of
the user's held-out liked items, AUC per user, averaged).

Writes benchmarks/results/quality_<dataset>_<split>.{json,md} and prints the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf

from mtrec.models import evaluation as E
from mtrec.models import features as F
from mtrec.models.model import ModelConfig
from mtrec.models.trainer import train_and_export
from mtrec.models.transform_local import as_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tfrs_tutorial  # noqa: E402
from quality_data import (  # noqa: E402
    Prepared,
    Truth,
    prepare,
    resolve,
    with_protocol,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
KS = (10, 50, 100)
TOP = 10
VARIANTS = ("popularity", "ease", "tfrs_tutorial", "joint", "retrieval_only", "rating_only")
# EASE's L2 strength: best NDCG@10 of 200/500/1000 on the u1 validation holdout.
EASE_LAMBDA = 500.0
SINGLE_TASK = {"retrieval_only": ("retrieval",), "rating_only": ("rating",)}
ANCHORS = {
    "popularity on u1 (measured reference)": "HR@100 0.290, HR@10 0.045, NDCG@10 0.325; "
    "item-mean RMSE 1.033",
    "TFRS tutorial joint model (its own random split)": "HR@100 0.235, RMSE 1.110",
    "SVD++ (u1)": "RMSE 0.919",
    "GLocal-K (u1, best published)": "RMSE 0.889",
}


# --------------------------------------------------------------- metrics
def measure(truth: Truth, outputs: dict) -> dict:
    """Every metric from a variant's outputs (item-id arrays, predictions, scores)."""
    row_user, items = truth.row_user, truth.items
    metrics: dict = {}
    metrics.update(E.hit_rates(outputs["retrieved"], row_user, items, KS))
    metrics.update(E.ranking_metrics(outputs["recommended"], truth.relevant, TOP))
    if outputs.get("retrieval_ranked") is not None:
        plain = E.ranking_metrics(outputs["retrieval_ranked"], truth.relevant, TOP)
        metrics.update({f"retrieval_{k}": v for k, v in plain.items()})
    metrics.update(
        E.coverage_and_novelty(
            outputs["recommended"], truth.item_users, len(truth.catalog),
            truth.num_train_users, TOP,
        )
    )
    if outputs.get("ratings") is not None:
        predicted, actual = outputs["ratings"]
        metrics.update(E.rating_errors(predicted, actual))
    if outputs.get("interest") is not None:
        metrics["interest_auc"] = E.mean_user_auc(outputs["interest"], truth.liked_genres)
    metrics["train_seconds"] = round(outputs.get("train_seconds", 0.0), 1)
    return metrics


# --------------------------------------------------------------- variants
def run_popularity(truth: Truth) -> dict:
    """Most-rated training items for everyone; item mean rating (global mean fallback)."""
    catalog = truth.catalog
    counts = np.array([truth.item_users.get(i, 0) for i in catalog.tolist()], np.float64)
    scores = np.tile(counts, (len(truth.users), 1))
    ranked = np.argsort(-counts, kind="stable")
    global_mean = float(truth.train_ratings.mean())
    sums: dict = {}
    for item, rating in zip(truth.train_items.tolist(), truth.train_ratings.tolist(),
                            strict=True):
        total, n = sums.get(item, (0.0, 0))
        sums[item] = (total + rating, n + 1)
    means = {i: t / n for i, (t, n) in sums.items()}
    predicted = np.array([means.get(i, global_mean) for i in truth.items.tolist()])
    # Genre popularity among training likes: the same interest ranking for everyone.
    return {
        "retrieved": np.tile(catalog[ranked[: max(KS)]], (len(truth.users), 1)),
        "recommended": catalog[E.top_k_unseen(scores, truth.seen, TOP)],
        "ratings": (predicted, truth.ratings),
        "train_seconds": 0.0,
    }


def popularity_interest(prepared: Prepared, truth: Truth) -> np.ndarray:
    """Genre frequency among training likes, as one interest score vector for all users."""
    liked = prepared.train[F.LIKED_XF] > 0
    genres = prepared.train[F.GENRES_MULTI_HOT][liked][:, : truth.liked_genres.shape[1]]
    return np.tile(genres.sum(axis=0), (len(truth.users), 1))


def run_ease(prepared: Prepared, truth: Truth, lam: float = EASE_LAMBDA) -> dict:
    """EASE (Steck 2019): closed-form item-item regression on the 0/1 user-item matrix.

    Not a TFRS model and not a contender: a strong, well-known collaborative-
    filtering reference on the same protocol, to show what the data allows.
    It gives no ratings or interest scores.
    """
    t0 = time.time()
    position = {item: p for p, item in enumerate(truth.catalog.tolist())}
    users, user_row = np.unique(prepared.train[F.USER_ID_XF], return_inverse=True)
    cols = np.array([position[i] for i in prepared.train[F.ITEM_ID_XF].tolist()])
    interactions = np.zeros((len(users), len(truth.catalog)), np.float64)
    interactions[user_row, cols] = 1.0
    gram = interactions.T @ interactions + lam * np.eye(len(truth.catalog))
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    row_of = {u: r for r, u in enumerate(users.tolist())}
    rows = np.array([row_of.get(u, -1) for u in truth.users.tolist()])
    history = np.where((rows >= 0)[:, None], interactions[np.maximum(rows, 0)], 0.0)
    scores = history @ weights
    return {
        "retrieved": truth.catalog[np.argsort(-scores, axis=1, kind="stable")[:, : max(KS)]],
        "recommended": truth.catalog[E.top_k_unseen(scores, truth.seen, TOP)],
        "train_seconds": time.time() - t0,
    }


def run_tutorial(prepared: Prepared, truth: Truth) -> dict:
    train = prepared.train
    trained = tfrs_tutorial.train(
        train[F.USER_ID_XF], train[F.ITEM_ID_XF], train[F.RATING_XF]
    )
    # Both the tutorial and our model retrieve from the training items.
    position = {item: p for p, item in enumerate(trained.catalog.tolist())}
    order = np.array([position[i] for i in truth.catalog.tolist()])
    scores = trained.scores(truth.users)[:, order]
    retrieved = np.argsort(-scores, axis=1, kind="stable")[:, : max(KS)]
    predicted = trained.predict_ratings(
        truth.users[truth.row_user], truth.items
    )
    return {
        "retrieved": truth.catalog[retrieved],
        "recommended": truth.catalog[E.top_k_unseen(scores, truth.seen, TOP)],
        "ratings": (predicted, truth.ratings),
        "train_seconds": trained.train_seconds,
    }


def _batched(fn, users: np.ndarray, size: int = 512, **kwargs) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {}
    for start in range(0, len(users), size):
        out = fn(user_id=tf.constant(users[start : start + size]), **kwargs)
        for key, value in out.items():
            parts.setdefault(key, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def run_ours(prepared: Prepared, truth: Truth, config: ModelConfig, model_dir: str) -> dict:
    """Train with the Trainer's code path, export, and query the SavedModel's signatures."""
    train, held_out = prepared.train, prepared.eval
    metrics = train_and_export(
        _shuffled(train, config.batch_size),
        as_dataset(held_out, 4096),
        as_dataset(train, 8192),
        prepared.tft_output,
        config,
        model_dir,
    )
    served = tf.saved_model.load(model_dir).signatures
    catalog_size = len(truth.catalog)
    retrieved = _batched(served["retrieve"], truth.users, k=tf.constant(max(KS)))["item_ids"]
    everything = _batched(served["retrieve"], truth.users, k=tf.constant(catalog_size))
    position = {item: p for p, item in enumerate(truth.catalog.tolist())}
    full = np.vectorize(position.__getitem__, otypes=[np.int64])(everything["item_ids"])
    # Rank order -> descending pseudo-scores in catalogue order, then drop seen items.
    rank_scores = np.zeros(full.shape, np.float64)
    np.put_along_axis(rank_scores, full, -np.arange(catalog_size, dtype=np.float64)[None, :]
                      .repeat(len(full), 0), axis=1)
    plain = truth.catalog[E.top_k_unseen(rank_scores, truth.seen, TOP)]
    recommended = _batched(served["recommend"], truth.users, k=tf.constant(TOP))["item_ids"]

    predicted, actual = [], []
    spec = {F.RATING: tf.io.FixedLenFeature([1], tf.float32)}
    for start in range(0, len(prepared.eval_examples), 4096):
        batch = tf.constant(prepared.eval_examples[start : start + 4096])
        predicted.append(served["serving_default"](examples=batch)[F.OUT_RATING].numpy())
        actual.append(tf.io.parse_example(batch, spec)[F.RATING].numpy()[:, 0])
    interest = _batched(served["user_interest"], truth.users)
    genre_index = {
        g: j for j, g in enumerate(prepared.tft_output.vocabulary_by_name(F.GENRE_VOCAB))
    }
    scores = np.zeros(truth.liked_genres.shape, np.float64)
    for row, (names, values) in enumerate(zip(interest["genres"], interest["scores"],
                                              strict=True)):
        scores[row, [genre_index[g] for g in names.tolist()]] = values
    tasks = set(config.tasks)
    return {
        "retrieved": retrieved,
        "recommended": recommended,
        "retrieval_ranked": plain,
        # Without a rating task the rating output is the untrained mean + zero biases.
        "ratings": (np.concatenate(predicted), np.concatenate(actual))
        if "rating" in tasks
        else None,
        "interest": scores if "interest" in tasks else None,
        "train_seconds": metrics["train_seconds"],
        "trainer_metrics": metrics,
    }


def _shuffled(columns: dict[str, np.ndarray], batch_size: int) -> tf.data.Dataset:
    """Training batches, reshuffled every epoch (as the Trainer's data accessor does)."""
    n = len(next(iter(columns.values())))
    return (
        tf.data.Dataset.from_tensor_slices(columns)
        .shuffle(n, seed=0, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


# --------------------------------------------------------------- report
COLUMNS = (
    ("hit_rate@10", "HR@10"), ("hit_rate@50", "HR@50"), ("hit_rate@100", "HR@100"),
    ("precision@10", "P@10"), ("recall@10", "R@10"), ("ndcg@10", "NDCG@10"),
    ("retrieval_ndcg@10", "NDCG@10 retr."), ("rmse", "RMSE"), ("mae", "MAE"),
    ("interest_auc", "interest AUC"), ("coverage@10", "cov@10"), ("novelty@10", "nov@10"),
    ("train_seconds", "train s"),
)  # fmt: skip


def table(results: dict[str, dict]) -> str:
    head = "| variant | " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(COLUMNS)
    rows = [head, rule]
    for name, metrics in results.items():
        cells = []
        for key, _ in COLUMNS:
            value = metrics.get(key)
            if value is None or (isinstance(value, float) and np.isnan(value)):
                cells.append("–")
            elif key == "train_seconds":
                cells.append(f"{value:.0f}")
            else:
                cells.append(f"{value:.3f}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


# Issue targets for one joint model on ML-100K u1: (metric, label, bound, higher is better).
TARGETS = (("rmse", "RMSE", 0.90, False), ("hit_rate@100", "HR@100", 0.45, True),
           ("ndcg@10", "NDCG@10", 0.45, True))  # fmt: skip


def target_verdicts(results: dict[str, dict]) -> list[str]:
    """Each target: reached or missed, and by how much (joint model)."""
    joint = results.get("joint", {})
    lines = []
    for key, label, bound, higher in TARGETS:
        if key not in joint:
            continue
        value = joint[key]
        met = value >= bound if higher else value <= bound
        sign = ">=" if higher else "<="
        verdict = "met" if met else f"missed by {abs(value - bound):.3f}"
        lines.append(f"- {label} {sign} {bound}: {value:.3f}, {verdict}")
    return lines


def multitask_verdict(results: dict[str, dict]) -> list[str]:
    """Does the joint model beat its single-task versions? (the central claim)"""
    joint = results.get("joint")
    lines = []
    if joint and "rating_only" in results and "rmse" in joint:
        single = results["rating_only"]["rmse"]
        lines.append(f"- RMSE: joint {joint['rmse']:.4f} vs rating-only {single:.4f} "
                     f"({100 * (joint['rmse'] - single) / single:+.2f}%, lower is better)")
    if joint and "retrieval_only" in results:
        single = results["retrieval_only"]["hit_rate@100"]
        lines.append(f"- HR@100: joint {joint['hit_rate@100']:.4f} vs retrieval-only "
                     f"{single:.4f} ({100 * (joint['hit_rate@100'] - single) / single:+.2f}%, "
                     "higher is better)")
    return lines


def markdown(payload: dict) -> str:
    setup = payload["setup"]
    out = [
        f"# Recommendation quality: {setup['dataset']} {setup['split']}",
        "",
        f"{setup['train_rows']:,} training / {setup['eval_rows']:,} held-out ratings; "
        f"catalogue = {setup['catalog']:,} training items; {setup['test_users']:,} test users; "
        f"split rule: {setup['split_rule']}. Host: {setup['host']}.",
        "",
        table(payload["results"]),
        "",
        "HR@K: per held-out interaction, is the item in the user's top K of the whole "
        "catalogue (seen items not excluded). P/R/NDCG@10: per test user, top 10 with "
        "training items excluded (ours: `recommend`, i.e. the blend re-ranking; "
        "'NDCG@10 retr.' is plain retrieval with seen items excluded); relevance = every "
        "held-out item (binary), ideal DCG over min(|relevant|, 10), averaged over users with "
        "at least one held-out item. Interest AUC: per user, genres of held-out liked items "
        "(rating >= 4) vs the interest scores (popularity: genre frequency among training "
        "likes). Coverage: distinct recommended items / catalogue; novelty: mean "
        "-log2(share of training users who rated the item).",
        "",
        *(
            ["Targets (ML-100K u1; one joint model, one training run):", "",
             *target_verdicts(payload["results"]), ""]
            if setup["dataset"] == "ml-100k" and setup["split"] == "u1"
            else []
        ),
        "Joint vs single-task (same config, one task):",
        "",
        *multitask_verdict(payload["results"]),
        "",
        f"Our model's config: `{json.dumps(payload['config'])}`",
        "",
        f"Set for this split's protocol ({payload.get('split_protocol', 'random')}): "
        f"`{json.dumps(payload.get('protocol_overrides', {}))}`, as `mtrec run` sets it "
        "(the recent-history feature is off on random splits; why, and the validation "
        "numbers: models/model.py PROTOCOL_OVERRIDES).",
        "",
        "Anchors (other protocols unless noted):",
        "",
        *[f"- {k}: {v}" for k, v in ANCHORS.items()],
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k", choices=("ml-100k", "ml-latest-small"))
    parser.add_argument("--data", help="extracted dataset directory "
                        "(default <repo>/../shared/data/<dataset>)")
    parser.add_argument("--split", default=None,
                        help="ML-100K official split u1..u5, ua, ub (default u1); "
                        "ml-latest-small always uses a per-user time split")
    parser.add_argument("--epochs", type=int, help="epochs for our model (default: config)")
    parser.add_argument("--config", default="{}", help="JSON ModelConfig overrides")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--holdout", action="store_true",
                        help="tuning mode: evaluate on a validation split carved from the "
                        "training ratings; the test split is not read")
    parser.add_argument("--ease-lambda", type=float, default=EASE_LAMBDA)
    parser.add_argument("--render", metavar="JSON", help="rewrite the markdown of a results JSON")
    parser.add_argument("--work-dir", default=str(REPO / "outputs" / "quality"))
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        path = Path(args.render)
        path.with_suffix(".md").write_text(markdown(json.loads(path.read_text())))
        return 0
    split, data, user_overrides = resolve(args)

    t0 = time.time()
    prepared, work = prepare(args.dataset, data, split, Path(args.work_dir), args.holdout)
    overrides = with_protocol(prepared, user_overrides)
    config = ModelConfig.from_dict(overrides)
    truth = prepared.truth()
    print(f"data ready in {time.time() - t0:.0f}s: {prepared.report['rows']}", flush=True)
    results: dict[str, dict] = {}
    for variant in args.variants:
        t1 = time.time()
        if variant == "popularity":
            outputs = run_popularity(truth)
            outputs["interest"] = popularity_interest(prepared, truth)
        elif variant == "ease":
            outputs = run_ease(prepared, truth, args.ease_lambda)
        elif variant == "tfrs_tutorial":
            outputs = run_tutorial(prepared, truth)
        else:
            variant_config = config
            if variant in SINGLE_TASK:
                variant_config = ModelConfig.from_dict(
                    {**overrides, "tasks": list(SINGLE_TASK[variant])}
                )
            model_dir = tempfile.mkdtemp(prefix=f"{variant}-", dir=work)
            outputs = run_ours(prepared, truth, variant_config, model_dir)
        results[variant] = measure(truth, outputs)
        print(f"{variant}: {time.time() - t1:.0f}s {json.dumps(results[variant])}", flush=True)

    label = f"{args.dataset}_{split or 'time'}{'_holdout' if args.holdout else ''}"
    payload = {
        "setup": {
            "dataset": args.dataset,
            "split": (split or "per-user time") + (" (validation holdout)" if args.holdout
                                                   else ""),
            "split_rule": prepared.report["split_rule"],
            "train_rows": int(len(truth.train_items)),
            "eval_rows": int(len(truth.items)),
            "catalog": int(len(truth.catalog)),
            "test_users": int(len(truth.users)),
            "host": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs, "
            f"TF {tf.__version__}",
        },
        "config": {k: v for k, v in vars(config).items()},
        "split_protocol": prepared.report["split_protocol"],
        "protocol_overrides": with_protocol(prepared, {}),
        "results": results,
        "anchors": ANCHORS,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"quality_{label}.json").write_text(json.dumps(payload, indent=2, default=list))
    (out / f"quality_{label}.md").write_text(markdown(payload))
    print(table(results))
    print("\n".join(multitask_verdict(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
