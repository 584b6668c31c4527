"""What the TextEncoder buys the recommender: warm ablation and a cold-item protocol.

    .venv/bin/python benchmarks/text_encoder.py --dataset ml-100k --split u1
    .venv/bin/python benchmarks/text_encoder.py --dataset ml-latest-small

One run, per dataset:

1. the TextEncoder (components/text_encoder, `run_text_encoder`) pretrains on
   the catalogue text and encodes every item; its metadata.json gives the
   times and sizes reported;
2. warm ablation: the same model (Trainer's `train_and_export`, full catalogue
   via `catalog_dir` in both runs) without and with the text vectors, measured
   through the exported signatures: HR@K from `retrieve` (full catalogue, seen
   included), NDCG@10 from `recommend` (training items excluded), RMSE from
   `serving_default`;
3. cold items: a seeded 10% of the rated items lose every training rating (they
   stay in the catalogue, so Transform maps them to OOV ids and the index embeds
   them from their features and text); the test interactions on them are
   ranked against the FULL catalogue, once with `retrieve` (the user's training
   items ranked too) and once with `recommend` (as served: training items
   excluded); HR@10/50/100 for the model with and without text, random and
   popularity (0: no training ratings).

`--repeats N` trains every variant N times on differently shuffled data and
reports the mean and half the range: single-run warm deltas are within noise.

Data preparation and metrics are benchmarks/quality_data.py's and
models/evaluation.py's. MovieLens files are read from outside the repository;
examples, transform output, encoder and models go under --work-dir (git-ignored).
Writes benchmarks/results/text_encoder_<dataset>.{json,md} and prints the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)
from mtrec.contracts.artifacts import METADATA_FILE
from mtrec.contracts.pipeline import EVAL_SPLIT, TRAIN_SPLIT
from mtrec.data.artifact_io import split_files

# isort: split
import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.components.text_encoder.config import TextEncoderConfig
from mtrec.components.text_encoder.executor import run_text_encoder
from mtrec.contracts import features as F
from mtrec.data import clean, load_dataset
from mtrec.data.examples import time_split
from mtrec.data.tables import SPLIT, Dataset
from mtrec.models import evaluation as E
from mtrec.models.item_text import ItemText
from mtrec.models.model import ModelConfig
from mtrec.models.trainer import train_and_export

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_data import (  # noqa: E402
    Prepared,
    Truth,
    prepare,
    prepare_dataset,
    resolve,
    shuffled,
    with_protocol,
)
from served_metrics import batched as _batched  # noqa: E402
from transform_local import as_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
KS = (10, 50, 100)
TOP = 10
EVAL_FRACTION = 0.2  # write_examples' default per-user time split
COLD_TARGET = 0.15  # cold-item HR@100 on ML-100K
SAME = 1e-3  # warm deltas below this are reported as unchanged (one seed)


# ----------------------------------------------------------------- data
def hold_out_items(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, set[str]]:
    """Drop every training rating of a seeded `fraction` of the rated items.

    Held-out ratings stay held out; time splits are materialised first (the
    per-user latest 20%) so removing rows cannot move the split.
    """
    ratings = dataset.ratings.reset_index(drop=True)
    if SPLIT not in ratings.columns:
        is_eval = time_split(ratings, EVAL_FRACTION)
        ratings = ratings.assign(**{SPLIT: np.where(is_eval, EVAL_SPLIT, TRAIN_SPLIT)})
    items = np.sort(pd.unique(ratings[F.ITEM_ID].astype(str)))
    rng = np.random.default_rng(seed)
    cold = set(rng.choice(items, size=round(fraction * len(items)), replace=False).tolist())
    drop = (ratings[SPLIT] == TRAIN_SPLIT) & ratings[F.ITEM_ID].astype(str).isin(cold)
    kept = ratings[~drop].reset_index(drop=True)
    name = f"{dataset.name}+cold{fraction:g}s{seed}"
    return dataclasses.replace(dataset, name=name, ratings=kept), cold


# -------------------------------------------------------------- encoder
def encode_catalog(
    catalog_dir: Path, work_root: Path, config: TextEncoderConfig
) -> tuple[str, dict]:
    """Run (or reuse) the TextEncoder on the catalogue; returns (uri, metadata)."""
    files = split_files(str(catalog_dir))
    digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode())
    for name in files:
        digest.update(Path(name).read_bytes())
    uri = work_root / "text_encoder" / digest.hexdigest()[:12]
    metadata_file = uri / METADATA_FILE
    if metadata_file.exists():
        metadata = json.loads(metadata_file.read_text())
        metadata["reused_from_cache"] = True
        return str(uri), metadata
    shutil.rmtree(uri, ignore_errors=True)
    metadata = run_text_encoder(files, str(uri), config)
    metadata["reused_from_cache"] = False
    return str(uri), metadata


def encoder_summary(metadata: dict) -> dict:
    """Times and sizes from the TextEncoder's metadata.json."""
    seconds, size = metadata["seconds"], metadata["bytes"]
    return {
        "items": metadata["num_items"],
        "params": metadata["encoder_params"],
        "embedding_dim": metadata["embedding_dim"],
        "vocabulary": metadata["vocabulary_size"],
        "mean_text_tokens": round(metadata["mean_text_tokens"], 1),
        "mlm_steps": metadata["mlm"]["steps"],
        "mlm_loss_before": metadata["mlm"]["loss_before"],
        "mlm_loss_after": metadata["mlm"]["loss_after"],
        "mlm_accuracy_after": metadata["mlm"]["accuracy_after"],
        "pretrain_seconds": round(seconds["mlm"], 1),
        "encode_seconds": round(seconds["encode"], 1),
        "total_seconds": round(seconds["total"], 1),
        "saved_model_mb": round(size["encoder_saved_model"] / 2**20, 2),
        "keras_model_mb": round(size["keras_model"] / 2**20, 2),
        "reused_from_cache": metadata.get("reused_from_cache", False),
    }


# ---------------------------------------------------------------- model
def train(
    prepared: Prepared,
    work: Path,
    config: ModelConfig,
    item_text: ItemText | None,
    tag: str,
    seed: int = 0,
) -> tuple[dict, float]:
    """Trainer code path on the full catalogue; returns (signatures, seconds)."""
    t0 = time.time()
    model_dir = tempfile.mkdtemp(prefix=f"{tag}-", dir=work)
    train_and_export(
        shuffled(prepared.train, config.batch_size, seed),
        as_dataset(prepared.eval, 4096),
        as_dataset(prepared.train, 8192),
        prepared.tft_output,
        config,
        model_dir,
        catalog_dir=str(work / "examples" / "catalog"),
        item_text=item_text,
    )
    return tf.saved_model.load(model_dir).signatures, time.time() - t0


def repeated(runs: list[dict]) -> dict:
    """Mean of each metric over repeated runs, the range as 'spread', and the runs."""
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    if len(runs) == 1:
        return mean
    spread = {k: float(np.ptp([r[k] for r in runs])) for k in runs[0] if k != "seconds"}
    return {**mean, "spread": spread, "runs": runs}


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
    retrieved = _batched(served["retrieve"], truth.users, k=tf.constant(max(KS)))["item_ids"]
    recommended = _batched(served["recommend"], truth.users, k=tf.constant(TOP))["item_ids"]
    return {
        **E.hit_rates(retrieved, truth.row_user, truth.items, KS),
        **E.ranking_metrics(recommended, truth.relevant, TOP),
        "rmse": rmse(served, prepared),
    }


def cold_metrics(served: dict, truth: Truth, cold: set[str]) -> dict:
    """Cold and warm HR@K on the whole catalogue, under both ranking rules.

    `cold_*`/`warm_*`: `retrieve`, the user's training items stay in the ranking
    (FactorizedTopK semantics, as in quality.py). `served_*`: `recommend`, what
    users get: training items excluded, blend re-ranking.
    """
    k = tf.constant(max(KS))
    ranked = {
        "": _batched(served["retrieve"], truth.users, k=k)["item_ids"],
        "served_": _batched(served["recommend"], truth.users, k=k)["item_ids"],
    }
    is_cold = cold_rows(truth.items, cold)
    out = {}
    for rule, items in ranked.items():
        for prefix, rows in (("cold", is_cold), ("warm", ~is_cold)):
            hits = E.hit_rates(items, truth.row_user[rows], truth.items[rows], KS)
            out.update({f"{rule}{prefix}_{k}": v for k, v in hits.items()})
    return out


def cold_rows(items: np.ndarray, cold: set[str]) -> np.ndarray:
    """Boolean mask of the held-out interactions whose item is a cold item."""
    keys = {c.encode() for c in cold}
    return np.array([i in keys for i in items.tolist()], dtype=bool)


def baselines(truth: Truth, cold: set[str], catalog_size: int) -> dict[str, dict]:
    """Random and popularity (most-rated training items) on the cold interactions.

    Random is K/N with seen items ranked, K/(N - seen) without (mean over the
    interactions). Popularity ranks cold items last (no training ratings), so
    it is 0 under both rules.
    """
    is_cold = cold_rows(truth.items, cold)
    top = E.popularity_ranking(truth.train_items, max(KS) + max(map(len, truth.seen)))
    seen = [set(truth.catalog[s].tolist()) for s in truth.seen]
    unseen_top = np.stack([[i for i in top if i not in s][: max(KS)] for s in seen])
    rows, items = truth.row_user[is_cold], truth.items[is_cold]
    pop = E.hit_rates(np.tile(top[: max(KS)], (len(truth.users), 1)), rows, items, KS)
    pop_served = E.hit_rates(unseen_top, rows, items, KS)
    unseen = catalog_size - np.array([len(s) for s in truth.seen])[rows]
    return {
        "random": {
            **{f"cold_hit_rate@{k}": k / catalog_size for k in KS},
            **{f"served_cold_hit_rate@{k}": float(np.mean(k / unseen)) for k in KS},
        },
        "popularity": {
            **{f"cold_{k}": v for k, v in pop.items()},
            **{f"served_cold_{k}": v for k, v in pop_served.items()},
        },
    }


# --------------------------------------------------------------- report
WARM_COLUMNS = (
    ("hit_rate@10", "HR@10"), ("hit_rate@50", "HR@50"), ("hit_rate@100", "HR@100"),
    ("ndcg@10", "NDCG@10"), ("precision@10", "P@10"), ("recall@10", "R@10"),
    ("rmse", "RMSE"), ("seconds", "train+export s"),
)  # fmt: skip
COLD_COLUMNS = (
    ("cold_hit_rate@10", "cold HR@10"), ("cold_hit_rate@50", "cold HR@50"),
    ("cold_hit_rate@100", "cold HR@100"), ("warm_hit_rate@100", "warm-item HR@100"),
    ("seconds", "train+export s"),
)  # fmt: skip
SERVED_COLUMNS = tuple(
    (f"served_{key}", label) for key, label in COLD_COLUMNS if key != "seconds"
)


def table(rows: dict[str, dict], columns: tuple) -> str:
    """Markdown table of means; '±' is half the range over repeated runs."""
    lines = ["| variant | " + " | ".join(label for _, label in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, metrics in rows.items():
        cells = []
        for key, _ in columns:
            value, spread = metrics.get(key), metrics.get("spread", {}).get(key)
            if value is None:
                cells.append("–")
            elif key == "seconds":
                cells.append(f"{value:.0f}")
            else:
                cells.append(f"{value:.4f}" + ("" if spread is None else f" ±{spread / 2:.4f}"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(payload: dict) -> list[str]:
    """Warm regression check and the cold-item target, in words."""
    warm, cold = payload["warm"], payload["cold"]
    base, text = warm["without_text"], warm["with_text"]
    lines = []
    for key, label, better in (("hit_rate@100", "HR@100", 1), ("ndcg@10", "NDCG@10", 1),
                               ("rmse", "RMSE", -1)):
        delta = text[key] - base[key]
        noise = (base.get("spread", {}).get(key, 0.0) + text.get("spread", {}).get(key, 0.0)) / 2
        verdict = ("unchanged" if abs(delta) < SAME else
                   "within the run-to-run spread" if abs(delta) <= noise else
                   "better" if delta * better > 0 else "worse")
        lines.append(f"- warm {label}: {base[key]:.4f} -> {text[key]:.4f} "
                     f"({delta:+.5f}, {verdict} with text)")
    for rule, words in (("", "training items ranked"), ("served_", "as served")):
        hr = cold["with_text"][f"{rule}cold_hit_rate@100"]
        hr0 = cold["without_text"][f"{rule}cold_hit_rate@100"]
        rnd = cold["random"][f"{rule}cold_hit_rate@100"]
        line = (f"- cold HR@100, {words}: with text {hr:.4f}, without text {hr0:.4f}, "
                f"random {rnd:.4f} ({hr / rnd:.1f}x random with text)")
        if payload["setup"]["dataset"] == "ml-100k":
            status = "met" if hr >= COLD_TARGET else f"missed by {COLD_TARGET - hr:.4f}"
            line += f"; target >= {COLD_TARGET}: {status}"
        lines.append(line)
    return lines


def markdown(payload: dict) -> str:
    setup, enc = payload["setup"], payload["encoder"]
    warm = {k: payload["warm"][k] for k in ("without_text", "with_text")}
    cold = payload["cold"]
    return "\n".join([
        f"# TextEncoder benchmark: {setup['dataset']} {setup['split']}",
        "",
        f"Host: {setup['host']}. Total wall time {payload['seconds']['total']:.0f}s. "
        f"Each model variant trained {setup.get('repeats', 1)}x (mean"
        + (", ± half the range over the runs)." if setup.get("repeats", 1) > 1 else
           "; a single run: retraining on another data order can move NDCG@10 and RMSE by "
           "~0.01, see --repeats)."),
        "",
        "## Text encoder",
        "",
        f"{enc['params']:,} parameters, {enc['embedding_dim']}-d vectors for {enc['items']:,} "
        f"items (vocabulary {enc['vocabulary']:,}, {enc['mean_text_tokens']} tokens per text). "
        f"MLM pretraining {enc['mlm_steps']} steps: {enc['pretrain_seconds']}s "
        f"(loss {enc['mlm_loss_before']:.2f} -> {enc['mlm_loss_after']:.2f}, masked-token "
        f"accuracy {enc['mlm_accuracy_after']:.2f}); encoding the catalogue "
        f"{enc['encode_seconds']}s; whole component {enc['total_seconds']}s. On disk: "
        f"TF SavedModel {enc['saved_model_mb']} MB, Keras model {enc['keras_model_mb']} MB."
        + (" (Encoder reused from the work-dir cache; times are from its run.)"
           if enc["reused_from_cache"] else ""),
        "",
        "## Warm ablation (official held-out ratings, full catalogue index)",
        "",
        f"{setup['warm']['train_rows']:,} training / {setup['warm']['eval_rows']:,} held-out "
        f"ratings, {setup['catalog']:,} catalogue items, {setup['warm']['test_users']:,} test "
        "users.",
        "",
        table(warm, WARM_COLUMNS),
        "",
        "## Cold items",
        "",
        f"{setup['cold']['items']} of {setup['cold']['rated_items']} rated items (fraction "
        f"{setup['cold']['fraction']}, seed {setup['cold']['seed']}) lose all "
        f"{setup['cold']['removed_train_rows']:,} training ratings; "
        f"{setup['cold']['test_interactions']:,} held-out interactions on them "
        f"({setup['cold']['test_users']:,} users) are ranked against all "
        f"{setup['catalog']:,} catalogue items, under two rules.",
        "",
        "**Training items ranked** (`retrieve`, FactorizedTopK semantics as in quality.py): "
        "a cold item must also beat the items the user already rated, which the model has "
        "learned to score high.",
        "",
        table({k: cold[k] for k in ("random", "popularity", "without_text", "with_text")},
              COLD_COLUMNS),
        "",
        "**As served** (`recommend`, k=100: the user's training items excluded, blend "
        "re-ranking): what a user of the served model gets.",
        "",
        table({k: cold[k] for k in ("random", "popularity", "without_text", "with_text")},
              SERVED_COLUMNS),
        "",
        *verdicts(payload),
        "",
        "HR@K: per held-out interaction, is the item in the user's top K of the whole "
        "catalogue. NDCG/P/R@10: `recommend` (training items excluded, blend re-ranking), "
        "binary relevance = every held-out item. RMSE: `serving_default` on the raw held-out "
        "examples. Random: K/N, or K/(N - the user's training items) as served. Popularity: "
        "the most-rated training items (cold items have none, so 0). 'warm-item HR@100' is "
        "the cold-protocol model on the other held-out interactions.",
        "",
        f"Model config: `{json.dumps(payload['config']['model'])}`",
        "",
        f"Encoder config: `{json.dumps(payload['config']['encoder'])}`",
        "",
    ])


# ----------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k", choices=("ml-100k", "ml-latest-small"))
    parser.add_argument("--data", help="extracted dataset directory "
                        "(default <repo>/../shared/data/<dataset>)")
    parser.add_argument("--split", default=None, help="ML-100K split u1..u5 (default u1); "
                        "ml-latest-small uses a per-user time split")
    parser.add_argument("--epochs", type=int, help="recommender epochs (default: ModelConfig)")
    parser.add_argument("--config", default="{}", help="JSON ModelConfig overrides")
    parser.add_argument("--encoder-config", default="{}", help="JSON TextEncoderConfig overrides")
    parser.add_argument("--cold-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the cold-item draw")
    parser.add_argument("--repeats", type=int, default=1,
                        help="train each variant N times (training-data order seeded 0..N-1); "
                        "report the mean and ± half the range")
    parser.add_argument("--skip-warm", action="store_true",
                        help="cold protocol only (prints, writes no results)")
    parser.add_argument("--work-dir", default=str(REPO / "outputs" / "text_encoder"))
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    return parser.parse_args(argv)


def _timed(label: str, seconds: dict, t0: float) -> None:
    seconds[label] = round(time.time() - t0, 1)
    print(f"[{label}] {seconds[label]:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    split, data, user_overrides = resolve(args)
    encoder_config = TextEncoderConfig.from_exec_properties(json.loads(args.encoder_config))
    work_root = Path(args.work_dir)
    label = f"{args.dataset}_{split or 'time'}"
    seconds: dict[str, float] = {}
    start = t0 = time.time()

    prepared, work = prepare(args.dataset, data, split, work_root, holdout=False)
    config = ModelConfig.from_dict(with_protocol(prepared, user_overrides))
    _timed("prepare_warm", seconds, t0)
    t0 = time.time()
    uri, metadata = encode_catalog(work / "examples" / "catalog", work_root / label,
                                   encoder_config)
    item_text = ItemText.load(uri)
    _timed("text_encoder", seconds, t0)
    catalog_size = prepared.report["rows"]["catalog"]

    warm: dict[str, dict] = {}
    truth = prepared.truth()
    if not args.skip_warm:
        for name, text in (("without_text", None), ("with_text", item_text)):
            t0, runs = time.time(), []
            for repeat in range(args.repeats):
                served, train_seconds = train(prepared, work, config, text, f"warm-{name}",
                                              seed=repeat)
                runs.append({**warm_metrics(served, prepared, truth), "seconds": train_seconds})
                print(f"warm {name}: {json.dumps(runs[-1])}", flush=True)
            warm[name] = repeated(runs)
            _timed(f"warm_{name}", seconds, t0)

    t0 = time.time()
    dataset = clean(load_dataset(args.dataset, data, split)).dataset
    cold_dataset, cold = hold_out_items(dataset, args.cold_fraction, args.seed)
    cold_prepared, cold_work = prepare_dataset(cold_dataset, f"{label}_cold", work_root)
    cold_truth = cold_prepared.truth()
    _timed("prepare_cold", seconds, t0)
    cold_results: dict[str, dict] = baselines(cold_truth, cold, catalog_size)
    for name, text in (("without_text", None), ("with_text", item_text)):
        t0, runs = time.time(), []
        for repeat in range(args.repeats):
            served, train_seconds = train(cold_prepared, cold_work, config, text,
                                          f"cold-{name}", seed=repeat)
            runs.append({**cold_metrics(served, cold_truth, cold), "seconds": train_seconds})
            print(f"cold {name}: {json.dumps(runs[-1])}", flush=True)
        cold_results[name] = repeated(runs)
        _timed(f"cold_{name}", seconds, t0)
    seconds["total"] = round(time.time() - start, 1)

    is_cold = cold_rows(cold_truth.items, cold)
    payload = {
        "setup": {
            "dataset": args.dataset,
            "repeats": args.repeats,
            "split": split or "per-user time (latest 20% held out)",
            "catalog": int(catalog_size),
            "warm": {
                "train_rows": int(len(truth.train_items)),
                "eval_rows": int(len(truth.items)),
                "test_users": int(len(truth.users)),
            },
            "cold": {
                "fraction": args.cold_fraction,
                "seed": args.seed,
                "items": len(cold),
                "rated_items": int(dataset.ratings[F.ITEM_ID].nunique()),
                "removed_train_rows": int(len(truth.train_items) - len(cold_truth.train_items)),
                "test_interactions": int(is_cold.sum()),
                "test_users": int(len(np.unique(cold_truth.row_user[is_cold]))),
            },
            "host": f"{platform.machine()}, {os.cpu_count()} CPUs, TF {tf.__version__}",
        },
        "config": {"model": dict(vars(config)), "encoder": encoder_config.to_dict()},
        "encoder": encoder_summary(metadata),
        "warm": warm,
        "cold": cold_results,
        "seconds": seconds,
    }
    if args.skip_warm:
        print(table(cold_results, COLD_COLUMNS))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"text_encoder_{args.dataset}.json").write_text(
        json.dumps(payload, indent=2, default=list)
    )
    report = markdown(payload)
    (out / f"text_encoder_{args.dataset}.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
