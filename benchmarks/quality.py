"""Recommendation quality on MovieLens: our multi-task model against baselines.

    .venv/bin/python benchmarks/quality.py --folds u1 u2 u3 u4 u5   # ML-100K, 5 folds
    .venv/bin/python benchmarks/quality.py --split u2                # one fold
    .venv/bin/python benchmarks/quality.py --dataset ml-latest-small  # per-user time split
    .venv/bin/python benchmarks/quality.py --holdout --config '{"l2": 1e-5}'   # tuning

Per fold: load + clean -> write_examples (official split, or a per-user time
split) -> the real preprocessing_fn through tf.Transform on Beam (cached under
the work dir) -> train every variant on the same transformed data -> measure
every variant with benchmarks/served_metrics.py (models/evaluation.py's
metrics). Variants, side by side:

- popularity: most-rated training items (item mean rating for RMSE);
- ease: EASE (Steck 2019), λ chosen per fold on a validation cut of that
  fold's *training* ratings (quality_baselines.py); no ratings;
- tfrs_tutorial: the TFRS multitask tutorial's joint model (tfrs_tutorial.py);
- joint: our model, all four tasks (ModelConfig defaults + protocol + --config);
- retrieval_only, ranking_only, rating_only: the same model and config, one task.

Our models are trained by the Trainer's own `train_and_export` and measured
only through the exported SavedModel's signatures, i.e. what TF Serving
answers: `recommend` (k=50, training items excluded) for P/R/NDCG@10 and R@50,
`retrieve` (k=100, seen kept) for HR@K, `score` for RMSE/MAE, `user_interest`
for the interest AUC. The model variants (and the tutorial) run --seeds-first
seeds on the first fold and --seeds-other on the others (data order and the
model seed; see SEED_NOTE); the tables show seed
means, the seed spread, and for several folds the mean ± std over folds.

Writes benchmarks/results/quality_<dataset>_<fold|folds|time>.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.models import evaluation as E
from mtrec.models.config import ModelConfig, protocol_overrides
from mtrec.models.trainer import train_and_export

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_report as R
from quality_baselines import choose_ease_lambda, run_ease, run_tutorial
from quality_data import (
    Prepared,
    Truth,
    add_data_arguments,
    prepare,
    resolve,
    shuffled,
    with_protocol,
)
from served_metrics import (
    TOP,
    SignatureFn,
    batched,
    example_metrics,
    measure,
    popularity_outputs,
    served_outputs,
)
from transform_local import as_dataset

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DATASETS = ("ml-100k", "ml-latest-small", "ml-1m")
OURS = ("joint", "retrieval_only", "ranking_only", "rating_only")
VARIANTS = ("popularity", "ease", "tfrs_tutorial", *OURS)
SEEDED = ("tfrs_tutorial", *OURS)
SINGLE_TASK = {
    "retrieval_only": ("retrieval",),
    "ranking_only": ("relevance",),  # the row name the committed results use
    "rating_only": ("rating",),
}
# How a seed reaches our model: the data order and train_and_export(seed=s), which
# seeds initialisation and dropout (tf.keras.utils.set_random_seed).
SEED_NOTE = (
    "seed s reshuffles the training data (tf.data shuffle seed s) and is passed to "
    "train_and_export(seed=s); the TFRS tutorial model takes seed s for its "
    "initialisation and shuffle."
)


# --------------------------------------------------------------- our model
def train_ours(prepared: Prepared, config: ModelConfig, model_dir: str, seed: int) -> dict:
    """Train and export to `model_dir` with the Trainer's own code path; its metrics."""
    return train_and_export(
        shuffled(prepared.train, config.batch_size, seed),
        as_dataset(prepared.eval, 4096),
        as_dataset(prepared.train, 8192),
        prepared.tft_output,
        config,
        model_dir,
        seed=seed,
    )


def run_ours(
    prepared: Prepared, truth: Truth, config: ModelConfig, model_dir: str, seed: int = 0
) -> dict:
    """Train with the Trainer's code path, export, and query the SavedModel's signatures."""
    metrics = train_ours(prepared, config, model_dir, seed)
    served = tf.saved_model.load(model_dir).signatures
    tasks = set(config.tasks)
    # Without a rating task the rating output is the untrained mean + zero biases.
    outputs = served_outputs(served, truth, ratings="rating" in tasks)
    outputs["retrieval_ranked"] = _retrieval_ranked(served[S.RETRIEVE], truth)
    if tasks == {"relevance"}:
        outputs["score_ranked"] = score_ranked(served[S.SCORE], truth)
    if "interest" in tasks:
        outputs["interest"] = _interest_scores(served[S.USER_INTEREST], prepared, truth)
    if "rating" in tasks:
        # What TFMA measures, for comparison with the served `score` RMSE.
        outputs["rmse_examples"] = example_metrics(served["serving_default"],
                                                   prepared.eval_examples)["rmse"]
    outputs["train_seconds"] = metrics["train_seconds"]
    return outputs


def _retrieval_ranked(retrieve: SignatureFn, truth: Truth) -> np.ndarray:
    """Plain retrieval order over the whole catalogue with seen items excluded (top 10)."""
    n = len(truth.catalog)
    everything = batched(retrieve, truth.users, k=tf.constant(n))[S.ITEM_IDS]
    position = {item: p for p, item in enumerate(truth.catalog.tolist())}
    full = np.vectorize(position.__getitem__, otypes=[np.int64])(everything)
    rank_scores = np.zeros(full.shape, np.float64)  # rank order -> descending pseudo-scores
    np.put_along_axis(rank_scores, full, np.broadcast_to(-np.arange(n, dtype=np.float64),
                                                         full.shape), axis=1)
    return truth.catalog[E.top_k_unseen(rank_scores, truth.seen, TOP)]


def score_ranked(score: SignatureFn, truth: Truth,
                 output: str = "relevance", rows: int = 32768) -> np.ndarray:
    """Top 10 of the whole catalogue ranked by a `score` output, seen items excluded."""
    size = max(1, rows // len(truth.catalog))
    parts = []
    for start in range(0, len(truth.users), size):
        users = truth.users[start : start + size]
        items = np.broadcast_to(truth.catalog, (len(users), len(truth.catalog)))
        out = score(user_id=tf.constant(users), item_ids=tf.constant(items))
        parts.append(out[output].numpy())
    return truth.catalog[E.top_k_unseen(np.concatenate(parts), truth.seen, TOP)]


def _interest_scores(user_interest: SignatureFn, prepared: Prepared,
                     truth: Truth) -> np.ndarray:
    interest = batched(user_interest, truth.users)
    genres = prepared.tft_output.vocabulary_by_name(F.GENRE_VOCAB)
    genre_index = {g: j for j, g in enumerate(genres)}
    scores = np.zeros(truth.liked_genres.shape, np.float64)
    for row, (names, values) in enumerate(zip(interest["genres"], interest["scores"],
                                              strict=True)):
        scores[row, [genre_index[g] for g in names.tolist()]] = values
    return scores


def popularity_interest(prepared: Prepared, truth: Truth) -> np.ndarray:
    """Genre frequency among training likes, as one interest score vector for all users."""
    liked = prepared.train[F.LIKED_XF] > 0
    genres = prepared.train[F.GENRES_MULTI_HOT][liked][:, : truth.liked_genres.shape[1]]
    return np.tile(genres.sum(axis=0), (len(truth.users), 1))


# --------------------------------------------------------------- one fold
def variant_config(overrides: dict, variant: str) -> ModelConfig:
    if variant in SINGLE_TASK:
        return ModelConfig.from_dict({**overrides, "tasks": list(SINGLE_TASK[variant])})
    return ModelConfig.from_dict(overrides)


def run_variant(
    variant: str, prepared: Prepared, truth: Truth, overrides: dict, seed: int, work: Path,
    ease_lambda: float,
    keep_models: bool = False,
) -> dict:
    """One run of one variant: its metrics (`keep_models`: and where its SavedModel is)."""
    train = prepared.train
    extra: dict = {}
    if variant == "popularity":
        outputs = popularity_outputs(truth)
        outputs["interest"] = popularity_interest(prepared, truth)
    elif variant == "ease":
        outputs = run_ease(truth, train[F.USER_ID_XF], train[F.ITEM_ID_XF], ease_lambda)
        extra["ease_lambda"] = ease_lambda
    elif variant == "tfrs_tutorial":
        outputs = run_tutorial(truth, train[F.USER_ID_XF], train[F.ITEM_ID_XF],
                               train[F.RATING_XF], seed=seed)
    else:
        model_dir = tempfile.mkdtemp(prefix=f"{variant}-{seed}-", dir=work)
        try:
            outputs = run_ours(prepared, truth, variant_config(overrides, variant), model_dir,
                               seed)
        finally:
            if not keep_models:
                shutil.rmtree(model_dir, ignore_errors=True)
        extra["rmse_examples"] = outputs.get("rmse_examples")
        extra["model_dir"] = model_dir if keep_models else None
    metrics = measure(truth, outputs)
    if outputs.get("interest") is not None:
        metrics["interest_auc"] = E.mean_user_auc(outputs["interest"], truth.liked_genres)
    metrics.update({k: v for k, v in extra.items() if v is not None})
    return {**metrics, "seed": seed}


def run_fold(
    args: argparse.Namespace, split: str | None, data: str | None, user_overrides: dict,
    seeds: int,
) -> tuple[dict, dict]:
    """(the fold's payload entry, the ModelConfig overrides used)."""
    t0 = time.time()
    prepared, work = prepare(args.dataset, data, split, Path(args.work_dir), args.holdout)
    overrides = with_protocol(prepared, user_overrides)
    truth = prepared.truth()
    protocol = prepared.report["split_protocol"]
    print(f"[{split or 'time'}] data ready in {time.time() - t0:.0f}s: "
          f"{prepared.report['rows']}", flush=True)
    setup = {
        "split": (split or "per-user time") + (" (validation holdout)" if args.holdout else ""),
        "split_rule": prepared.report["split_rule"],
        "split_protocol": protocol,
        "train_rows": int(len(truth.train_items)),
        "eval_rows": int(len(truth.items)),
        "catalog": int(len(truth.catalog)),
        "test_users": int(len(truth.users)),
    }
    lam = args.ease_lambda
    if "ease" in args.variants and lam is None:
        train = prepared.train
        lam, found = choose_ease_lambda(train[F.USER_ID_XF], train[F.ITEM_ID_XF],
                                        train[F.TIMESTAMP_XF], protocol)
        setup["ease_validation"] = found
        print(f"[{split or 'time'}] EASE λ {lam:g} (validation NDCG@10 {found})", flush=True)
    setup["ease_lambda"] = lam
    results: dict[str, dict] = {}
    for variant in args.variants:
        runs = []
        first = args.first_seed if variant in SEEDED else 0
        for seed in range(first, first + (seeds if variant in SEEDED else 1)):
            t1 = time.time()
            runs.append(run_variant(variant, prepared, truth, overrides, seed, work, lam,
                                    args.keep_models))
            print(f"[{split or 'time'}] {variant} seed {seed}: {time.time() - t1:.0f}s "
                  f"{json.dumps(runs[-1])}", flush=True)
        results[variant] = {**R.aggregate(runs), "runs": runs}
    return {"setup": setup, "results": results}, overrides


# --------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_arguments(parser, DATASETS, "one ML-100K official split u1..u5, ua, ub (default "
                       "u1); other datasets always use a per-user time split")
    parser.add_argument("--folds", nargs="+", metavar="SPLIT",
                        help="several ML-100K splits in one run (e.g. u1 u2 u3 u4 u5)")
    parser.add_argument("--seeds-first", type=int, default=3,
                        help="runs (seeds) of each trained variant on the first fold")
    parser.add_argument("--seeds-other", type=int, default=1,
                        help="runs (seeds) of each trained variant on the other folds")
    parser.add_argument("--seeds", type=int, help="the same number of seeds on every fold")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds run from this one (with --merge: add seeds to a result)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--holdout", action="store_true",
                        help="tuning mode: evaluate on a validation split carved from the "
                        "training ratings; the test split is not read")
    parser.add_argument("--ease-lambda", type=float, default=None,
                        help="fixed EASE λ (default: chosen per fold on a validation cut "
                        "of the training ratings)")
    parser.add_argument("--keep-models", action="store_true",
                        help="keep our variants' SavedModels under the work dir (their paths "
                        "go into the JSON), e.g. for served_quality.py")
    parser.add_argument("--render", metavar="JSON", help="rewrite the markdown of a results JSON")
    parser.add_argument("--note", help="with --render: record in the JSON, and show in the "
                        "markdown, which rows came from code that has changed since")
    parser.add_argument("--merge", nargs=2, metavar=("JSON", "MORE_JSON"),
                        help="add MORE_JSON's seeded runs (other seeds, same folds) to JSON's "
                        "and rewrite JSON and its markdown")
    parser.add_argument("--drop", nargs="+", default=[], choices=SEEDED,
                        help="with --merge: discard JSON's runs of these variants first")
    parser.add_argument("--work-dir", default=str(REPO / "outputs" / "quality"))
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    args = parser.parse_args(argv)
    if args.folds and args.split:
        parser.error("pass --split or --folds, not both")
    if args.seeds is not None:
        args.seeds_first = args.seeds_other = args.seeds
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        path = Path(args.render)
        payload = json.loads(path.read_text())
        if args.note is not None:
            payload["setup"][R.CODE_NOTE] = args.note
            path.write_text(json.dumps(payload, indent=2, default=list))
        path.with_suffix(".md").write_text(R.markdown(payload))
        return 0
    if args.merge:
        path = Path(args.merge[0])
        payload = R.merged(json.loads(path.read_text()),
                           json.loads(Path(args.merge[1]).read_text()), SEEDED, tuple(args.drop))
        path.write_text(json.dumps(payload, indent=2, default=list))
        path.with_suffix(".md").write_text(R.markdown(payload))
        return 0
    splits = args.folds or [args.split]
    folds: dict[str, dict] = {}
    overrides: dict = {}
    for index, split in enumerate(splits):
        fold_args = argparse.Namespace(**{**vars(args), "split": split})
        split, data, user_overrides = resolve(fold_args)
        seeds = args.seeds_first if index == 0 else args.seeds_other
        entry, overrides = run_fold(fold_args, split, data, user_overrides, seeds)
        folds[split or "time"] = entry

    first = next(iter(folds.values()))["setup"]
    payload = {
        "setup": {
            "dataset": args.dataset,
            "folds": list(folds),
            "seeds": f"{args.seeds_first} on {splits[0] or 'time'}"
            + (f", {args.seeds_other} on the other folds" if len(splits) > 1 else "")
            + f" (trained variants: {', '.join(v for v in args.variants if v in SEEDED)})",
            "seed_note": SEED_NOTE,
            "host": f"{platform.machine()}, {os.cpu_count()} CPUs, TF {tf.__version__}",
        },
        "config": dataclasses.asdict(ModelConfig.from_dict(overrides)),
        "split_protocol": first["split_protocol"],
        "protocol_overrides": protocol_overrides(first["split_protocol"]),
        "folds": folds,
        "anchors": R.ANCHORS,
    }
    payload["summary"] = R.summarize(folds)
    name = "folds" if len(folds) > 1 else next(iter(folds))
    label = f"{args.dataset}_{name}{'_holdout' if args.holdout else ''}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"quality_{label}.json").write_text(json.dumps(payload, indent=2, default=list))
    (out / f"quality_{label}.md").write_text(R.markdown(payload))
    print(R.table(payload["summary"], R.HEADLINE, with_std=len(folds) > 1))
    print("\n".join(R.target_verdicts(payload) + R.multitask_verdicts(payload)))
    print(f"wrote {out / f'quality_{label}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
