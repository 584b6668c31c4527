"""The served quality of a pushed model, from its SavedModel alone (issue 14 §4).

    .venv/bin/python benchmarks/served_quality.py MODEL_DIR \\
        --source ml-100k --path ../shared/data/ml-100k --split u1 \\
        [--benchmark benchmarks/results/quality_ml-100k_folds.json]

MODEL_DIR: the pushed version directory (the one holding saved_model.pb), or
the push destination holding numbered versions (the latest is taken). The
model is loaded with plain `tf.saved_model.load`, in this fresh process, and
no mtrec model code is imported: only mtrec.data (to read and clean the raw
files exactly as `mtrec run`'s ingestion does: load_dataset -> clean ->
[pseudonymise] -> data/splits.py eval_mask) and the metric functions
(models/evaluation.py through benchmarks/served_metrics.py, the code
quality.py measures with).

Through the signatures: NDCG@10, P@10, R@10, R@50 (`recommend`, training items
excluded by the model), HR@10/50/100 (`retrieve`, seen kept), RMSE/MAE
(`score`), coverage@10 / novelty@10; popularity on the same users for
reference. With --benchmark, the joint row of a quality.py results JSON for
the same split is shown next to it, with the differences (the issue asks for
agreement within 0.01).

Writes served_quality_<source>_<split>.{json,md} under --out (default: this
repository's benchmarks/results, where the recorded results live).

TensorFlow (3 s, and CUDA's "Unable to register" notices) is imported only once the
flags parsed: `--help` and a bad flag answer at once. So the functions that need it
import it, and served_metrics (which imports it), themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mtrec  # noqa: F401  (Keras 2 before TensorFlow; loads no model code)

# isort: split
import numpy as np

from mtrec.components.retrieval_evaluator.served_lists import catalogue_ids, served_catalogue
from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.data import clean, load_dataset, pseudonymize_users
from mtrec.data.splits import eval_mask
from mtrec.data.tables import Dataset
from mtrec.pseudonyms import key_from_env

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_report import HEADLINE, table

if TYPE_CHECKING:
    from collections.abc import Mapping

    from served_metrics import GroundTruth, SignatureFn

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
COLUMNS = tuple(c for c in HEADLINE if c[0] != "train_seconds")
AGREEMENT = 0.01


def split_truth(dataset: Dataset, eval_fraction: float = 0.2) -> tuple[GroundTruth, str]:
    """(ground truth, split rule) of a cleaned dataset, split as write_examples splits it."""
    from served_metrics import GroundTruth  # TensorFlow: not for --help

    ratings = dataset.ratings
    is_eval, rule = eval_mask(ratings, eval_fraction)
    train, test = ratings[~is_eval], ratings[is_eval]
    truth = GroundTruth.from_arrays(
        train[F.USER_ID].to_numpy(), train[F.ITEM_ID].to_numpy(), train[F.RATING].to_numpy(),
        test[F.USER_ID].to_numpy(), test[F.ITEM_ID].to_numpy(), test[F.RATING].to_numpy(),
    )  # fmt: skip
    return truth, rule


def measure_served(signatures: Mapping[str, SignatureFn], truth: GroundTruth,
                   loaded: Any = None) -> dict[str, dict]:
    """{"model": its served metrics, "popularity": popularity's on the same users}.
    `loaded`, the SavedModel, tells the catalogue it serves (coverage's denominator)."""
    from served_metrics import measure, popularity_outputs, served_outputs  # TensorFlow

    t0 = time.time()
    model = measure(truth, served_outputs(signatures, truth, ratings=True, model=loaded))
    model["query_seconds"] = round(time.time() - t0, 1)
    model.pop("train_seconds", None)
    served = None if loaded is None else catalogue_ids(loaded)
    popularity = measure(truth, popularity_outputs(truth, served))
    popularity.pop("train_seconds", None)
    return {"model": model, "popularity": popularity}


def resolve_model_dir(path: str) -> str:
    """The version directory: `path` itself, or its latest numbered version."""
    import tensorflow as tf  # not for --help

    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    if not tf.io.gfile.isdir(path):  # listdir's NotFoundError was a traceback
        raise SystemExit(f"error: {path}: no such folder")
    versions = [v.rstrip("/") for v in tf.io.gfile.listdir(path) if v.rstrip("/").isdigit()]
    versions = [v for v in versions if tf.io.gfile.exists(os.path.join(path, v, "saved_model.pb"))]
    if not versions:
        raise SystemExit(f"error: no SavedModel in {path} or in a numbered version under it")
    return os.path.join(path, max(versions, key=int))


def load_truth(args: argparse.Namespace) -> tuple[GroundTruth, str]:
    """Raw files -> ground truth, as `mtrec run` ingests them (mtrec/ingest.py)."""
    dataset = clean(load_dataset(args.source, args.path, args.split),
                    max_reject_fraction=args.max_reject_fraction).dataset
    if args.pseudonymize_key_env:
        try:  # "is not set" or "is empty", as `mtrec` says it
            key = key_from_env(args.pseudonymize_key_env)
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
        dataset = pseudonymize_users(dataset, key)
    return split_truth(dataset, args.eval_fraction)


def benchmark_row(path: str, split: str) -> dict | None:
    """The joint variant's seed-mean metrics for `split` in a quality.py results JSON."""
    payload = json.loads(Path(path).read_text())
    fold = payload.get("folds", {}).get(split)
    if fold is None or "joint" not in fold["results"]:
        return None
    return fold["results"]["joint"]["mean"]


def markdown(payload: dict) -> str:
    s = payload["setup"]
    rows = {name: {"mean": m, "std": {}} for name, m in payload["results"].items()}
    out = [
        f"# Served quality: {s['source']} {s['split']}",
        "",
        f"Model: `{s['model_dir']}` (plain `tf.saved_model.load`). {s['train_rows']:,} training "
        f"/ {s['eval_rows']:,} held-out ratings rebuilt from the raw files; {s['test_users']:,} "
        f"test users; coverage over the {s['served_catalog']:,} items the model serves "
        f"({s['catalog']:,} with training ratings; popularity's coverage over those); split "
        f"rule: {s['split_rule']}.",
        "",
        table(rows, COLUMNS),
        "",
    ]
    diff = payload.get("benchmark_difference")
    if diff:
        worst = max(abs(v) for v in diff.values())
        verdict = "agree" if worst <= AGREEMENT else "do not agree"
        out += [
            f"Served minus the benchmark's joint row ({s['benchmark']}): "
            + ", ".join(f"{k} {v:+.3f}" for k, v in diff.items())
            + f". Largest |difference| {worst:.3f}: they {verdict} within {AGREEMENT}.",
            "",
        ]
    out += [
        "Served protocol (benchmarks/served_metrics.py): `recommend(k=50)` per test user "
        "(training items excluded) for P/R/NDCG@10 and R@50; `retrieve(k=100)` per held-out "
        "interaction (seen kept) for HR@K; `score(user_id, [[item_id]])` per held-out rating "
        "for RMSE/MAE. Popularity: most-rated training items, training items excluded; item "
        "mean rating.",
        "",
    ]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_dir", help="pushed version dir, or the push destination")
    p.add_argument("--source", required=True, help="data source, as given to `mtrec run`")
    p.add_argument("--path", help="the raw files' directory, as given to `mtrec run`")
    p.add_argument("--split", help="official split (ml-100k u1..u5, ua, ub)")
    p.add_argument("--eval-fraction", type=float, default=0.2,
                   help="as `mtrec run --eval-fraction` (time splits; default %(default)s)")
    p.add_argument("--max-reject-fraction", type=float, default=0.5,
                   help="as `mtrec run --max-reject-fraction`: stop when more than this "
                   "share of the ratings is rejected (default %(default)s)")
    p.add_argument("--pseudonymize-key-env", metavar="VAR",
                   help="as `mtrec run`: the model knows pseudonymised user ids")
    p.add_argument("--benchmark", metavar="JSON", help="a quality.py results JSON to compare")
    p.add_argument("--out", default=str(RESULTS),
                   help="results directory (default %(default)s, where the recorded "
                   "results are: pass another for a trial run)")
    return p.parse_args(argv)


def unknown_share(signatures: Mapping[str, SignatureFn], users: np.ndarray) -> float:
    """The share of (up to 500 of) `users` the model answers as its unknown user: an
    embedding equal to that of an id no model holds (as MtrecClient.unknown tells)."""
    import tensorflow as tf  # not for --help

    ids = [u if isinstance(u, bytes) else str(u).encode() for u in users[:500]]
    probe = tf.constant([*ids, S.NO_SUCH_ID])
    vectors = signatures[S.EMBED_USER](**{S.USER_ID: probe})[S.EMBEDDING].numpy()
    return float(np.all(vectors[:-1] == vectors[-1], axis=1).mean()) if len(users) else 0.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # before TensorFlow: --help and bad flags answer at once
    import tensorflow as tf

    model_dir = resolve_model_dir(args.model_dir)
    truth, rule = load_truth(args)
    loaded = tf.saved_model.load(model_dir)
    signatures = loaded.signatures
    unknown = unknown_share(signatures, truth.users)
    if unknown > 0.5 and not args.pseudonymize_key_env:  # measured, it reads as a bad model
        print(f"warning: the model knows {1 - unknown:.0%} of the test users, and serves "
              "the rest as unknown: a model trained with --pseudonymize-key-env knows users "
              "by pseudonym only; pass the same --pseudonymize-key-env", file=sys.stderr)
    results = measure_served(signatures, truth, loaded)
    split = args.split or "time"
    payload: dict = {
        "setup": {
            "model_dir": model_dir, "source": args.source, "split": split,
            "split_rule": rule, "train_rows": int(len(truth.train_items)),
            "eval_rows": int(len(truth.items)), "test_users": int(len(truth.users)),
            "catalog": int(len(truth.catalog)),
            "served_catalog": served_catalogue(
                loaded, [*truth.catalog.tolist(), *truth.items.tolist()]),
            "benchmark": args.benchmark,
        },
        "results": results,
    }  # fmt: skip
    if args.benchmark:
        row = benchmark_row(args.benchmark, split)
        if row is None:
            print(f"warning: no joint row for {split} in {args.benchmark}", file=sys.stderr)
        else:
            payload["benchmark_joint"] = row
            payload["benchmark_difference"] = {
                key: results["model"][key] - row[key]
                for key, _ in COLUMNS
                if key in row and key in results["model"]
            }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"served_quality_{args.source}_{split}"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2))
    stem.with_suffix(".md").write_text(markdown(payload))
    print(markdown(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
