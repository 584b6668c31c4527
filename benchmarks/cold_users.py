"""Users the model never trained on, served from a few items given at request time.

    .venv/bin/python benchmarks/cold_users.py          # ML-100K (all of u.data)

Issue 14 §5: 10% of the users (seeded) are held out entirely; the model trains
on the rest (per-user time split, as `mtrec run` does without an official
split). Each held-out user is then served by `recommend_from_items` with
their first 5 ratings by time, and scored on the rest of their ratings
(NDCG/P/R@10, the 5 given items excluded). References on the same users and
the same 5 items: popularity, EASE folded in (its weights fitted on the
training users, the held-out user's row = the 5 items; λ chosen on a
validation cut of the training rows), item-kNN folded in (cosine) and user-kNN
(its k chosen on the --validation users). Target: NDCG@10 >= 1.5 x popularity's.

`--retrained` adds what retraining would give instead: a second model trained
on the same rows plus the held-out users' given items (their last one goes to
the time split's eval cut, as `mtrec run` would put it), each held-out user
then served by `recommend` with the given items dropped from the list.

`--validation` chooses recommend_from_items' settings (ModelConfig
onboarding_weight / _l2, cold_popularity_weight) without the test users: they
are dropped, another 10% of the remaining users (seed 1) is held out the same
way, the model trains once on the rest, and each setting in --grid re-serves
the same weights (serving_sweep.rebuilt). A grid entry is a JSON object of
overrides, or a number: the popularity prior alone at that weight (how the
runs before the onboarding term were made).

Writes benchmarks/results/cold_users_<dataset>[_validation].{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.data import clean, load_dataset
from mtrec.data.tables import Dataset
from mtrec.data.tags import before_held_out
from mtrec.models import evaluation as E
from mtrec.models.config import ModelConfig
from mtrec.models.trainer import train_and_export

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_baselines import (
    choose_ease_lambda,
    cosine_weights,
    ease_from,
    interactions,
    user_knn_scores,
)
from quality_data import (
    Prepared,
    default_data_path,
    prepare_dataset,
    shuffled,
    with_protocol,
)
from served_metrics import TOP, GroundTruth, SignatureFn, popularity_outputs
from serving_sweep import rebuilt
from transform_local import as_dataset

REPO = Path(__file__).resolve().parents[1]
COLD_SHARE = 0.1
GIVEN = 5  # items a held-out user brings to the request
TARGET = 1.5  # x popularity's NDCG@10
# User-kNN's neighbours, chosen on the --validation users (2026-12-05; NDCG@10 as a
# multiple of popularity's at k 20 / 50 / 100 / 200: 0.835 / 0.912 / 0.921 / 0.903).
USER_KNN_K = 100


def split_users(ratings: pd.DataFrame, seed: int = 0, given: int = GIVEN,
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(training users' ratings, held-out users' first `given`, the rest of theirs).

    The held-out users depend on the seed only, so every `given` serves the same users.
    """
    users = np.sort(ratings[F.USER_ID].unique())
    cold = set(np.random.default_rng(seed).choice(users, int(len(users) * COLD_SHARE),
                                                  replace=False).tolist())
    is_cold = ratings[F.USER_ID].isin(cold)
    held = ratings[is_cold].sort_values([F.USER_ID, F.TIMESTAMP], kind="stable")
    rank = held.groupby(F.USER_ID).cumcount()
    return ratings[~is_cold], held[rank < given], held[rank >= given]


def held_out(ratings: pd.DataFrame, validation: bool, given: int = GIVEN,
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """split_users for the test run, or, with `validation`, for other users among the rest."""
    warm, first, rest = split_users(ratings, given=given)
    if validation:  # the test users are not read; others stand in for them
        warm, first, rest = split_users(warm, seed=1, given=given)
    return warm, first, rest


def served(fn: SignatureFn, given: pd.DataFrame, users: np.ndarray
           ) -> np.ndarray:
    """[U, TOP] item ids from a recommend_from_items, each user's GIVEN items in time order
    (none: an empty request, a brand-new user's)."""
    items = given.groupby(F.USER_ID)[F.ITEM_ID].apply(list).to_dict()
    request = [[str(i) for i in items.get(u.decode(), [])] for u in users.tolist()]
    width = max(1, *(len(r) for r in request))
    padded = [r + [""] * (width - len(r)) for r in request]
    return fn(item_ids=tf.constant(padded), k=tf.constant(TOP))[S.ITEM_IDS].numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data", help="default <repo>/../shared/data/<dataset>")
    parser.add_argument("--config", default="{}", help="JSON ModelConfig overrides")
    parser.add_argument("--validation", action="store_true",
                        help="hold out other users from the training users; test users unread")
    parser.add_argument("--grid", default='[{"onboarding_weight": 0}, {}]',
                        help="--validation: JSON list of ModelConfig overrides to serve (a "
                        "number w: the popularity prior alone, cold_popularity_weight w)")
    parser.add_argument("--weights", help="--validation: weights an earlier --validation run "
                        "trained (its <model dir>-weights): skips training")
    parser.add_argument("--given", type=int, nargs="+", default=[GIVEN],
                        help="more counts of items each held-out user brings, for a curve "
                        "beside the issue's 5 (the same model serves each; --validation: 0 "
                        "only); 0 adds `recommend` for the held-out ids, a brand-new user's")
    parser.add_argument("--retrained", action="store_true",
                        help="add a reference row: a model retrained with the given items, "
                        "served by recommend")
    parser.add_argument("--work-dir", default=str(REPO / "outputs" / "quality"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--tag", default="", help="appended to the result files' names")
    args = parser.parse_args(argv)
    if args.weights and not args.validation:
        parser.error("--weights is for --validation (the test run trains and exports its model)")
    data = args.data or default_data_path(args.dataset)
    dataset = clean(load_dataset(args.dataset, data, None)).dataset
    given_counts = sorted({GIVEN, *(n for n in args.given if n == 0 or not args.validation)})
    splits = {n: held_out(dataset.ratings, args.validation, n) for n in given_counts}
    warm, first, rest = splits[GIVEN]  # the same warm users for every count (split_users)
    suffix = "_validation" if args.validation else ""
    # The held-out users' tags on their targets would describe them (data/tags.py).
    tags = None if dataset.tags is None else before_held_out(dataset.tags, rest)
    train_set = Dataset(f"{dataset.name}+cold-users", warm, dataset.users, dataset.items,
                        dataset.malformed, tags=tags)
    prepared, work = prepare_dataset(train_set, f"{args.dataset}_cold_users{suffix}",
                                     Path(args.work_dir))
    config = ModelConfig.from_dict(with_protocol(prepared, json.loads(args.config)))

    model_dir = tempfile.mkdtemp(prefix="cold-users-", dir=work)
    weights_dir = args.weights or f"{model_dir}-weights"
    train_seconds = 0.0 if args.weights else trained_in(prepared, config, model_dir, weights_dir)

    lam, _ = choose_ease_lambda(warm[F.USER_ID].astype(str).to_numpy(),
                                warm[F.ITEM_ID].astype(str).to_numpy(),
                                warm[F.TIMESTAMP].to_numpy(), prepared.report["split_protocol"])
    if args.validation:
        # The modules themselves are kept: a tf.function method holds its module
        # weakly, and a collected module leaves the method calling on None.
        grid = [g if isinstance(g, dict) else {"cold_popularity_weight": g,
                                                    "onboarding_weight": 0}
                for g in json.loads(args.grid)]
        modules = {f"ours, {json.dumps(g) if g else 'defaults'}": rebuilt(prepared, weights_dir, g)
                   for g in grid}
        served_by = {name: m.recommend_from_items for name, m in modules.items()}
        unknown_by = {name: m.recommend for name, m in modules.items()}
    else:
        signatures = tf.saved_model.load(model_dir).signatures
        served_by = {"ours (recommend_from_items)": signatures[S.RECOMMEND_FROM_ITEMS]}
        unknown_by = {"ours": signatures[S.RECOMMEND]}
    by_given = {n: compared(served_by, *splits[n], lam, unknown_by) for n in given_counts}
    no_items = by_given.pop(0, None)
    if args.retrained:
        recommend, seconds = retrained(dataclasses.replace(dataset, tags=tags), warm, first,
                                       f"{args.dataset}_cold_users{suffix}_given",
                                       Path(args.work_dir), json.loads(args.config))
        name = f"our model retrained with the {GIVEN} items (recommend; trained in {seconds:.0f} s)"
        by_given[GIVEN]["results"][name] = retrained_metrics(recommend, first, rest, warm)
    headline = by_given[GIVEN]
    payload = {
        "dataset": args.dataset + suffix, "held_out_users": headline["users"], "given": GIVEN,
        "train_users": int(warm[F.USER_ID].nunique()), "train_seconds": round(train_seconds, 1),
        "config": {k: v for k, v in vars(config).items()}, "results": headline["results"],
        "ndcg_vs_popularity": headline["ratio"], "target": TARGET,
        "met": bool(headline["ratio"] >= TARGET),
        "by_given": {str(n): v for n, v in by_given.items() if n != GIVEN},
    }
    if no_items is not None:
        payload["no_items"] = no_items
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"cold_users_{args.dataset}{suffix}{'_' + args.tag if args.tag else ''}"
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2, default=list))
    (out / f"{name}.md").write_text(markdown(payload))
    print(markdown(payload))
    return 0


def compared(served_by: dict, warm: pd.DataFrame, given: pd.DataFrame, rest: pd.DataFrame,
             lam: float, unknown_by: dict) -> dict:
    """Ranking metrics of each recommend_from_items, popularity and EASE folded in. With
    no items given, the folded-in references have nothing to fold in (they are left out),
    and `unknown_by`'s recommend serves each held-out id, which the model never saw."""
    truth = _truth(warm, given, rest)
    history = np.zeros((len(truth.users), len(truth.catalog)))
    for row, positions in enumerate(truth.seen):
        history[row, positions] = 1.0
    matrix = _warm_matrix(warm, truth.catalog)
    scored = {} if given.empty else {  # [U, C] scores; the given items are excluded below
        f"EASE folded in (λ {lam:g})": history @ ease_from(matrix, lam),
        "item-kNN folded in (cosine)": history @ cosine_weights(matrix),
        f"user-kNN (k {USER_KNN_K})": user_knn_scores(matrix, history, USER_KNN_K),
    }
    ranked = {name: served(fn, given, truth.users) for name, fn in served_by.items()}
    if given.empty:
        ranked.update({f"{name}, recommend (the unknown id)": fn(
            user_id=tf.constant(truth.users), k=tf.constant(TOP))[S.ITEM_IDS].numpy()
            for name, fn in unknown_by.items()})
    ranked["popularity"] = popularity_outputs(truth)["recommended"][:, :TOP]
    ranked.update({name: truth.catalog[E.top_k_unseen(s, truth.seen, TOP)]
                   for name, s in scored.items()})
    results = {name: E.ranking_metrics(r, truth.relevant, TOP) for name, r in ranked.items()}
    best = max((name for name in ranked if name.startswith("ours")),
               key=lambda name: results[name][f"ndcg@{TOP}"])
    ratio = results[best][f"ndcg@{TOP}"] / results["popularity"][f"ndcg@{TOP}"]
    return {"users": int(len(truth.users)), "results": results, "ratio": ratio}


def retrained(dataset: Dataset, warm: pd.DataFrame, given: pd.DataFrame, label: str,
              work_root: Path, overrides: dict) -> tuple[SignatureFn, float]:
    """The `recommend` of a model trained, like the main one, on warm + given rows, and
    its training seconds."""
    rows = Dataset(f"{dataset.name}+cold-users-given", pd.concat([warm, given]), dataset.users,
                   dataset.items, dataset.malformed, tags=dataset.tags)
    prepared, work = prepare_dataset(rows, label, work_root)
    config = ModelConfig.from_dict(with_protocol(prepared, overrides))
    model_dir = tempfile.mkdtemp(prefix="cold-users-retrained-", dir=work)
    seconds = trained_in(prepared, config, model_dir)
    return tf.saved_model.load(model_dir).signatures[S.RECOMMEND], seconds


def trained_in(prepared: Prepared, config: ModelConfig, model_dir: str,
               weights_dir: str | None = None) -> float:
    """Train and export to `model_dir` by the Trainer's code path; the seconds it took."""
    started = time.time()
    train_and_export(shuffled(prepared.train, config.batch_size, 0),
                     as_dataset(prepared.eval, 4096), as_dataset(prepared.train, 8192),
                     prepared.tft_output, config, model_dir, weights_dir=weights_dir)
    return time.time() - started


def retrained_metrics(recommend: SignatureFn, given: pd.DataFrame, rest: pd.DataFrame,
                      warm: pd.DataFrame) -> dict:
    """Ranking metrics of a retrained model's `recommend` for the held-out users, scored
    like `compared`'s rows: the given items dropped from each list, then its top TOP."""
    truth = _truth(warm, given, rest)
    items = given.groupby(F.USER_ID)[F.ITEM_ID].apply(lambda s: {str(i).encode() for i in s})
    lists = recommend(user_id=tf.constant(truth.users), k=tf.constant(TOP + GIVEN))
    ranked = [[i for i in row if i not in items[u.decode()]][:TOP]
              for u, row in zip(truth.users.tolist(), lists[S.ITEM_IDS].numpy().tolist(),
                                strict=True)]
    return E.ranking_metrics(np.array(ranked), truth.relevant, TOP)


def _truth(warm: pd.DataFrame, given: pd.DataFrame, rest: pd.DataFrame) -> GroundTruth:
    """Training rows (the warm users' and the given items), and the rest held out."""
    train_rows = pd.concat([warm, given])
    return GroundTruth.from_arrays(
        train_rows[F.USER_ID].astype(str).to_numpy(), train_rows[F.ITEM_ID].astype(str).to_numpy(),
        train_rows[F.RATING].to_numpy(), rest[F.USER_ID].astype(str).to_numpy(),
        rest[F.ITEM_ID].astype(str).to_numpy(), rest[F.RATING].to_numpy())


def _warm_matrix(warm: pd.DataFrame, catalog: np.ndarray) -> np.ndarray:
    """The training users' 0/1 matrix over the benchmark's catalogue (references fit on it)."""
    known = set(catalog.tolist())
    items = warm[F.ITEM_ID].astype(str).map(lambda i: i.encode())
    keep = items.isin(known).to_numpy()
    users = warm[F.USER_ID].astype(str).to_numpy()[keep]
    return interactions(users, items.to_numpy()[keep], catalog)


def markdown(payload: dict) -> str:
    rows = [f"| {name} | {m[f'ndcg@{TOP}']:.3f} | {m[f'precision@{TOP}']:.3f} | "
            f"{m[f'recall@{TOP}']:.3f} |" for name, m in payload["results"].items()]
    short = payload["target"] - payload["ndcg_vs_popularity"]
    verdict = "met" if payload["met"] else f"missed by {short:.2f}x"
    curve = [f"| {n} | {v['users']} | "
             + " | ".join(f"{m[f'ndcg@{TOP}']:.3f}" for m in v["results"].values())
             + f" | {v['ratio']:.2f}x |" for n, v in payload.get("by_given", {}).items()]
    if curve:
        names = list(next(iter(payload["by_given"].values()))["results"])
        curve = ["", "NDCG@10 with more items given: the same model and users (fewer held-out "
                 "ratings remain to score; users with none left drop out).", "",
                 f"| items given | users | {' | '.join(names)} | ours / popularity |",
                 "|---:|---:|" + "---:|" * (len(names) + 1), *curve]
    if "no_items" in payload:
        none = payload["no_items"]
        curve += ["", f"No items given (a brand-new user, {none['users']} users scored on all "
                  "their ratings): `recommend` with the held-out id, which the model never "
                  "saw, against `recommend_from_items` with none.", "",
                  "| recommender | NDCG@10 | P@10 | R@10 |", "|---|---:|---:|---:|",
                  *(f"| {name} | {m[f'ndcg@{TOP}']:.3f} | {m[f'precision@{TOP}']:.3f} | "
                    f"{m[f'recall@{TOP}']:.3f} |" for name, m in none["results"].items())]
    return "\n".join([
        f"# Users the model never trained on: {payload['dataset']}",
        "",
        f"{payload['held_out_users']} held-out users (10%, seeded), each served from their first "
        f"{payload['given']} ratings by time and scored on the rest; the model trained on the "
        f"other {payload['train_users']} users ("
        + (f"{payload['train_seconds']:.0f} s" if payload["train_seconds"]
           else "the weights of an earlier --validation run") + ").",
        "",
        "| recommender | NDCG@10 | P@10 | R@10 |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"NDCG@10 vs popularity (the best 'ours' row): {payload['ndcg_vs_popularity']:.2f}x "
        f"(target >= {payload['target']}x: {verdict}).",
        *curve,
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
