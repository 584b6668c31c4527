"""What the TextEncoder buys the recommender: warm ablation and a cold-item protocol.

    .venv/bin/python benchmarks/text_encoder.py --dataset ml-100k --split u1
    .venv/bin/python benchmarks/text_encoder.py --dataset ml-latest-small

One run, per dataset, for the variants (--variants): no text; scratch (a small
BERT pretrained with masked LM on the catalogue alone); minilm (all-MiniLM-L6-v2,
frozen: the default); minilm_mlm (MiniLM after domain masked LM on the catalogue):

1. the TextEncoder (components/text_encoder, `run_text_encoder`) builds each
   encoder and encodes every item; its metadata.json gives the times, sizes
   and encoding items/s reported;
2. warm ablation: the same model (Trainer's `train_and_export`, full catalogue
   via `catalog_dir` in every run) without and with each text variant, measured
   through the exported signatures: HR@K from `retrieve` (full catalogue, seen
   included), NDCG@10 from `recommend` (training items excluded), RMSE from
   `serving_default`;
3. cold items: a seeded 10% of the rated items lose every training rating (they
   stay in the catalogue, so Transform maps them to OOV ids and the index embeds
   them from their features and text); the test interactions on them are
   ranked against the FULL catalogue, once with `retrieve` (the user's training
   items ranked too) and once with `recommend` (as served: training items
   excluded); HR@10/50/100 for the model with and without text, random and
   popularity (0: no training ratings); the same HR@K on the held-out
   interactions with items that arrived after the split (no training ratings
   of their own, not drawn): the real new items the draw stands in for.

`--repeats N` trains every variant N times on data shuffled by seeds `--first-seed`..
(the cold draw stays `--seed`) and reports the mean and half the range: single-run warm
deltas are within noise. `--merge` adds seeds run later (`--out` elsewhere) to a result.

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
from typing import TYPE_CHECKING

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)
from mtrec.contracts.artifacts import DESCRIPTION_EMBEDDINGS_FILE, METADATA_FILE
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
from mtrec.models.config import ModelConfig
from mtrec.models.item_text import ItemText
from mtrec.models.trainer import train_and_export

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_data import (
    Prepared,
    prepare,
    prepare_dataset,
    resolve,
    shuffled,
    with_protocol,
)
from text_encoder_metrics import (
    arrived_rows,
    baselines,
    cold_metrics,
    cold_rows,
    warm_metrics,
)
from text_encoder_report import (
    COLD_COLUMNS,
    aggregate,
    encoder_summary,
    merge_files,
    table,
    write_results,
)
from transform_local import as_dataset

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from quality_data import Truth

# Per variant: (the catalogue's text vectors or None, TextEncoderConfig dict, encoder summary).
Encoded = tuple[ItemText | None, dict | None, dict | None]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
EVAL_FRACTION = 0.2  # write_examples' default per-user time split
# Encoder variants: TextEncoderConfig overrides (None: no text vectors at all).
VARIANTS: dict[str, dict | None] = {
    "no_text": None,
    "scratch": {"mode": "scratch"},
    "minilm": {"mode": "pretrained"},
    "minilm_mlm": {"mode": "pretrained_mlm"},
}


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
    # An artifact from before the description table is encoded again.
    if metadata_file.exists() and (uri / DESCRIPTION_EMBEDDINGS_FILE).exists():
        metadata = json.loads(metadata_file.read_text())
        metadata["reused_from_cache"] = True
        return str(uri), metadata
    shutil.rmtree(uri, ignore_errors=True)
    metadata = run_text_encoder(files, str(uri), config)
    metadata["reused_from_cache"] = False
    return str(uri), metadata


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
    parser.add_argument("--encoder-config", default="{}",
                        help="JSON TextEncoderConfig overrides for every text variant")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {list(VARIANTS)}")
    parser.add_argument("--cold-variants", help="the variants of the cold protocol "
                        "(default --variants)")
    parser.add_argument("--warm-variants", help="the variants of the warm ablation "
                        "(default --variants)")
    parser.add_argument("--resume", action="store_true", help="keep the results in the "
                        "output JSON and skip the variants measured there")
    parser.add_argument("--cold-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the cold-item draw")
    parser.add_argument("--repeats", type=int, default=1,
                        help="train each variant N times (training-data order seeded "
                        "first-seed..first-seed+N-1); report the mean and ± half the range")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first training seed (with --merge: add seeds to a result)")
    parser.add_argument("--merge", nargs=2, metavar=("JSON", "MORE_JSON"),
                        help="add MORE_JSON's runs (other seeds, same setup) to JSON's and "
                        "rewrite JSON and its markdown; nothing is trained")
    parser.add_argument("--skip-warm", action="store_true",
                        help="cold protocol only (the results then have no warm table)")
    parser.add_argument("--skip-cold", action="store_true",
                        help="warm ablation only (the cold tables then hold the baselines)")
    parser.add_argument("--work-dir", default=str(REPO / "outputs" / "text_encoder"))
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    return parser.parse_args(argv)


def _timed(label: str, seconds: dict, t0: float) -> None:
    seconds[label] = round(time.time() - t0, 1)
    print(f"[{label}] {seconds[label]:.0f}s", flush=True)


def _encoders(args: argparse.Namespace, catalog_dir: Path, work_root: Path, seconds: dict
              ) -> dict[str, Encoded]:
    """Per variant: (ItemText or None, TextEncoderConfig dict, encoder summary)."""
    names = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    shared = json.loads(args.encoder_config)
    out: dict[str, Encoded] = {}
    for name in names:
        variant = VARIANTS[name]
        if variant is None:
            out[name] = (None, None, None)
            continue
        t0 = time.time()
        config = TextEncoderConfig.from_exec_properties({**shared, **variant})
        uri, metadata = encode_catalog(catalog_dir, work_root, config)
        out[name] = (ItemText.load(uri), config.to_dict(), encoder_summary(metadata))
        _timed(f"encoder_{name}", seconds, t0)
        print(f"encoder {name}: {json.dumps(out[name][2])}", flush=True)
    return out


def _train_variants(
    encoders: dict[str, Encoded],
    prepared: Prepared,
    work: Path,
    config: ModelConfig,
    seeds: Iterable[int],
    metrics_fn: Callable[[dict], dict],
    tag: str,
    seconds: dict,
) -> dict[str, dict]:
    results = {}
    for name, (text, _, _) in encoders.items():
        t0, runs = time.time(), []
        for seed in seeds:
            served, train_seconds = train(prepared, work, config, text, f"{tag}-{name}", seed)
            runs.append({**metrics_fn(served), "seconds": train_seconds, "seed": seed})
            print(f"{tag} {name}: {json.dumps(runs[-1])}", flush=True)
        results[name] = aggregate(runs)
        _timed(f"{tag}_{name}", seconds, t0)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge_files(*map(Path, args.merge))
    split, data, user_overrides = resolve(args)
    work_root = Path(args.work_dir)
    label = f"{args.dataset}_{split or 'time'}"
    seconds: dict[str, float] = {}
    start = t0 = time.time()

    prepared, work = prepare(args.dataset, data, split, work_root, holdout=False)
    config = ModelConfig.from_dict(with_protocol(prepared, user_overrides))
    _timed("prepare_warm", seconds, t0)
    encoders = _encoders(args, work / "examples" / "catalog", work_root / label, seconds)
    catalog_size = prepared.report["rows"]["catalog"]

    truth = prepared.truth()
    t0 = time.time()
    dataset = clean(load_dataset(args.dataset, data, split)).dataset
    cold_dataset, cold = hold_out_items(dataset, args.cold_fraction, args.seed)
    cold_prepared, cold_work = prepare_dataset(cold_dataset, f"{label}_cold", work_root)
    cold_truth = cold_prepared.truth()
    _timed("prepare_cold", seconds, t0)
    cold_results: dict[str, dict] = baselines(cold_truth, cold, catalog_size)
    warm: dict[str, dict] = {}
    # Cold first, then warm a variant at a time, the results rewritten after each
    # step: a run cut short on a busy box still leaves what it measured.
    steps = [] if args.skip_cold else [
        ("cold", name) for name in (args.cold_variants or args.variants).split(",")]
    if not args.skip_warm:
        steps += [("warm", name) for name in (args.warm_variants or args.variants).split(",")]
    if args.resume:  # what an earlier run of the same setup measured
        done = json.loads((Path(args.out) / f"text_encoder_{args.dataset}.json").read_text())
        cold_results.update(done["cold"])
        warm.update(done["warm"])
        seconds.update({f"earlier_{k}": v for k, v in done["seconds"].items()})
        steps = [(tag, n) for tag, n in steps if n not in (cold_results, warm)[tag == "warm"]]
    seeds = range(args.first_seed, args.first_seed + args.repeats)
    for tag, name in steps:
        chosen = {name: encoders[name]}
        if tag == "cold":
            cold_results.update(_train_variants(
                chosen, cold_prepared, cold_work, config, seeds,
                lambda served: cold_metrics(served, cold_truth, cold), "cold", seconds,
            ))  # fmt: skip
        else:
            warm.update(_train_variants(
                chosen, prepared, work, config, seeds,
                lambda served: warm_metrics(served, prepared, truth), "warm", seconds,
            ))  # fmt: skip
        seconds["total"] = round(time.time() - start, 1)
        _write(args, encoders, config, (split, dataset, truth, cold_truth, cold, catalog_size),
               warm, cold_results, seconds)
    print(table(cold_results, COLD_COLUMNS))
    return 0


def _write(
    args: argparse.Namespace,
    encoders: dict[str, Encoded],
    config: ModelConfig,
    data: tuple[str | None, Dataset, Truth, Truth, set[str], int],
    warm: dict[str, dict],
    cold_results: dict[str, dict],
    seconds: dict[str, float],
) -> None:
    """benchmarks/results/text_encoder_<dataset>.{json,md} from what has run so far."""
    split, dataset, truth, cold_truth, cold, catalog_size = data
    is_cold = cold_rows(cold_truth.items, cold)
    payload = {
        "setup": {
            "dataset": args.dataset,
            "repeats": args.repeats,
            "first_seed": args.first_seed,
            "variants": list(encoders),
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
                "arrived_interactions": int(arrived_rows(cold_truth, cold).sum()),
            },
            "host": f"{platform.machine()}, {os.cpu_count()} CPUs, TF {tf.__version__}",
        },
        "config": {
            "model": dict(vars(config)),
            "encoders": {name: enc[1] for name, enc in encoders.items() if enc[1]},
        },
        "encoders": {name: enc[2] for name, enc in encoders.items() if enc[2]},
        "warm": warm,
        "cold": cold_results,
        "seconds": seconds,
    }
    write_results(Path(args.out), payload)


if __name__ == "__main__":
    sys.exit(main())
