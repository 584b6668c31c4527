"""Data for benchmarks/quality.py: load, clean, write examples, transform once, cache.

The MovieLens files are read from outside the repository and everything
derived from them (examples, transform output, models) goes under a work
directory (default `outputs/quality`, git-ignored): ML-100K may not be
redistributed.

`holdout=True` is for tuning: the official test split is dropped and a
validation split is carved from the training ratings instead (a seeded random
20% for ML-100K's random u-splits, the latest 20% per user for time splits),
so hyper-parameters are never chosen on the test set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import tensorflow as tf
from served_metrics import GroundTruth

from mtrec.contracts import features as F
from mtrec.contracts.pipeline import EVAL_SPLIT, TRAIN_SPLIT
from mtrec.data import clean, load_dataset
from mtrec.data.artifact_io import read_split
from mtrec.data.digest import dataset_digest, examples_code
from mtrec.data.examples import time_split, write_examples
from mtrec.data.tables import SPLIT, Dataset
from mtrec.models.config import with_protocol_overrides

if TYPE_CHECKING:
    import argparse

    import tensorflow_transform as tft

HOLDOUT_FRACTION = 0.2
_SOURCES = ("models/preprocessing.py", "contracts/features.py", "benchmarks/transform_local.py")


@dataclasses.dataclass
class Prepared:
    """Transformed train/eval columns plus what the evaluation needs as ground truth."""

    name: str
    tft_output: tft.TFTransformOutput
    train: dict[str, np.ndarray]  # transformed training columns
    eval: dict[str, np.ndarray]  # transformed held-out columns
    eval_examples: np.ndarray  # serialized raw held-out tf.Examples (serving_default input)
    report: dict  # write_examples' report

    def truth(self) -> Truth:
        return Truth.build(self.train, self.eval, self.tft_output)


@dataclasses.dataclass
class Truth(GroundTruth):
    """GroundTruth plus the genres of each test user's held-out liked items (interest AUC)."""

    liked_genres: np.ndarray  # [U, G] bool

    @classmethod
    def build(cls, train: dict, held_out: dict, tft_output: tft.TFTransformOutput) -> Truth:
        base = GroundTruth.from_arrays(
            train[F.USER_ID_XF], train[F.ITEM_ID_XF], train[F.RATING_XF],
            held_out[F.USER_ID_XF], held_out[F.ITEM_ID_XF], held_out[F.RATING_XF],
        )  # fmt: skip
        num_genres = tft_output.vocabulary_size_by_name(F.GENRE_VOCAB)
        liked = held_out[F.LIKED_XF] > 0
        genres = held_out[F.GENRES_MULTI_HOT][:, :num_genres] > 0
        liked_genres = np.zeros((len(base.users), num_genres), dtype=bool)
        np.logical_or.at(liked_genres, base.row_user[liked], genres[liked])
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(GroundTruth)}
        return cls(**fields, liked_genres=liked_genres)


def holdout_split(dataset: Dataset, seed: int = 0) -> Dataset:
    """Replace the test split by a validation split carved from the training ratings."""
    ratings = dataset.ratings
    if SPLIT in ratings.columns:
        train = ratings[ratings[SPLIT] == TRAIN_SPLIT].reset_index(drop=True)
        rng = np.random.default_rng(seed)
        is_eval = rng.random(len(train)) < HOLDOUT_FRACTION
    else:
        # A time split: hold out the latest 20% of each user's training ratings.
        train = ratings[~time_split(ratings, HOLDOUT_FRACTION)].reset_index(drop=True)
        is_eval = time_split(train, HOLDOUT_FRACTION)
    train = train.assign(**{SPLIT: np.where(is_eval, EVAL_SPLIT, TRAIN_SPLIT)})
    return dataclasses.replace(dataset, name=f"{dataset.name}+holdout", ratings=train)


def _digest(dataset: Dataset) -> str:
    h = hashlib.sha256(dataset.name.encode())
    ratings = dataset.ratings
    h.update(pd.util.hash_pandas_object(ratings, index=False).values.tobytes())
    root = Path(__file__).resolve().parents[1]
    for name in _SOURCES:
        h.update((root / name).read_bytes())
    # Items, users and tags too, and the code that writes examples: keyed on the ratings
    # alone, a re-run after a change of data/tags.py read the examples written before it.
    h.update(dataset_digest(dataset, {"code": examples_code()}).encode())
    return h.hexdigest()[:12]


def _serialized(directory: Path) -> np.ndarray:
    records = read_split(str(directory), required=False).batch(8192)
    return np.concatenate([b for b in records.as_numpy_iterator()])


def prepare(
    source: str, path: str | None, split: str | None, work_root: Path, holdout: bool = False
) -> tuple[Prepared, Path]:
    """Examples + Transform for one dataset/split, reused when inputs are unchanged."""
    dataset = clean(load_dataset(source, path, split)).dataset
    if holdout:
        dataset = holdout_split(dataset)
    label = f"{source}_{split or 'time'}{'_holdout' if holdout else ''}"
    return prepare_dataset(dataset, label, work_root)


def prepare_dataset(dataset: Dataset, label: str, work_root: Path) -> tuple[Prepared, Path]:
    """Examples + Transform for a built Dataset, cached under work_root/label/<digest>."""
    import tensorflow_transform as tft
    from transform_local import read_transformed, transform_examples

    work = work_root / label / _digest(dataset)
    done = work / "DONE"
    # A cache from before write_examples reported the split protocol is rebuilt.
    if not done.exists() or "split_protocol" not in json.loads(done.read_text()):
        shutil.rmtree(work, ignore_errors=True)
        report = write_examples(dataset, work / "examples")
        transform_examples(str(work / "examples"), str(work / "xf"))
        done.write_text(json.dumps(report))
    tft_output = tft.TFTransformOutput(str(work / "xf" / "transform"))
    columns = {
        s: read_transformed(tft_output, work / "xf" / "transformed" / s) for s in ("train", "eval")
    }
    prepared = Prepared(
        name=label,
        tft_output=tft_output,
        train=columns["train"],
        eval=columns["eval"],
        eval_examples=_serialized(work / "examples" / "eval"),
        report=json.loads(done.read_text()),
    )
    return prepared, work


def with_protocol(prepared: Prepared, overrides: dict) -> dict:
    """ModelConfig overrides: the split protocol's (the same ones the pipeline's Trainer
    applies, models/config.py PROTOCOL_OVERRIDES), then the benchmark's --config / --epochs."""
    return with_protocol_overrides(prepared.report["split_protocol"], overrides)


def add_data_arguments(parser: argparse.ArgumentParser, datasets: tuple[str, ...],
                       split_help: str) -> None:
    """The flags resolve() reads: --dataset, --data, --split, --config, --epochs."""
    parser.add_argument("--dataset", default="ml-100k", choices=datasets)
    parser.add_argument("--data", help="extracted dataset directory "
                        "(default <repo>/../shared/data/<dataset>)")
    parser.add_argument("--split", default=None, help=split_help)
    parser.add_argument("--config", default="{}", help="JSON ModelConfig overrides")
    parser.add_argument("--epochs", type=int, help="epochs for our model (default: config)")


def resolve(args: argparse.Namespace) -> tuple[str | None, str | None, dict]:
    """(split, data directory, the user's ModelConfig overrides) from a benchmark's common
    arguments: --dataset, --split, --data, --config, --epochs. Exits with a clear message
    when the split does not exist or the files are not there. The split protocol's
    settings come on top once the data is prepared (with_protocol)."""
    overrides = json.loads(args.config)
    if args.epochs:
        overrides["epochs"] = args.epochs
    split = args.split or ("u1" if args.dataset == "ml-100k" else None)
    if args.dataset != "ml-100k" and split is not None:
        raise SystemExit(f"{args.dataset} has no official splits; drop --split")
    if args.dataset == "sample":  # built in (mtrec/data/sample): no files to find
        return None, None, overrides
    data = args.data or default_data_path(args.dataset)
    if not Path(data).is_dir():
        raise SystemExit(
            f"error: {args.dataset} not found at {data}. Put the extracted GroupLens files "
            f"there or pass --data DIR (e.g. `python -m mtrec.data.download {args.dataset} "
            "--dest DIR`). MovieLens files are never copied into the repository."
        )
    return split, data, overrides


def default_data_path(source: str) -> str:
    """<repo>/../shared/data/<source>: the MovieLens copies live outside the repository."""
    return os.path.join(Path(__file__).resolve().parents[2], "shared", "data", source)


def shuffled(columns: dict[str, np.ndarray], batch_size: int, seed: int) -> tf.data.Dataset:
    """Training batches reshuffled every epoch, in an order fixed by `seed` alone.

    tf.data fixes a shuffle's seeds when the dataset is built, from the global
    seed of that moment (unset in a fresh process, 0 after a first
    train_and_export): setting it here makes a run independent of what the
    process trained before. Repeats use seeds 0, 1, ...
    """
    tf.keras.utils.set_random_seed(seed)
    n = len(next(iter(columns.values())))
    return (
        tf.data.Dataset.from_tensor_slices(columns)
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
