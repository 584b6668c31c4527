"""Write a (cleaned) Dataset as gzipped TFRecords of tf.train.Example for ExampleGen.

Layout under out_dir:
  train/part-NNNNN-of-NNNNN.tfrecord.gz   one example per training rating (features.RAW_FEATURES)
  eval/part-NNNNN-of-NNNNN.tfrecord.gz    one example per held-out rating
  catalog/part-NNNNN-of-NNNNN.tfrecord.gz one example per item (features.ITEM_FEATURES)
  ingest_report.json                      row counts and the split rule used

The split is the dataset's official one when it has a `split` column, else
each user's latest `eval_fraction` of ratings (by time) go to eval. `history`
only ever holds *train* items rated strictly earlier, newest first, so no eval
interaction leaks into any feature.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.artifacts import (
    INGEST_GENRES,
    INGEST_ITEMS,
    INGEST_ITEMS_WITH_GENRES,
    INGEST_ITEMS_WITH_TEXT,
    INGEST_RATING_VALUES,
    INGEST_REPORT_FILE,
    INGEST_ROWS,
    INGEST_SOURCE,
    INGEST_SPLIT_PROTOCOL,
    INGEST_SPLIT_RULE,
    INGEST_USERS,
)
from mtrec.contracts.pipeline import CATALOG_SPLIT, EVAL_SPLIT, SPLITS, TRAIN_SPLIT
from mtrec.data import tfexample as W
from mtrec.data.artifact_io import COMPRESSION
from mtrec.data.labels import like_counts, mean_rating_rmse
from mtrec.data.splits import UNKNOWN_PROTOCOL, eval_mask, split_protocol, time_split
from mtrec.data.tables import Dataset, distinct_genres, items_with_genres, items_with_text
from mtrec.data.tags import with_tag_descriptions

__all__ = ["history_index", "recorded_split_protocol", "time_split", "write_examples"]
# zlib level 1: ~4x faster to write than the default level for ~20% larger
# files; ImportExampleGen re-encodes them anyway.
GZIP_OPTIONS = tf.io.TFRecordOptions(compression_type=COMPRESSION, compression_level=1)


def history_index(
    user_code: np.ndarray, ts: np.ndarray, is_train: np.ndarray, history_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each row's history lives: (train_sorted, lo, hi).

    train_sorted holds the train rows' indices sorted by (user, timestamp, row);
    row r's history is train_sorted[lo[r]:hi[r]] reversed (newest first): the
    same user's train ratings strictly earlier than r, at most history_len.
    A binary search on a combined (user, timestamp rank) key finds hi.
    """
    ts_rank = np.unique(ts, return_inverse=True)[1].astype("int64")
    n_ts = int(ts_rank.max()) + 1 if len(ts) else 1
    key = user_code.astype("int64") * n_ts + ts_rank
    train_idx = np.flatnonzero(is_train)
    train_sorted = train_idx[np.argsort(key[train_idx], kind="stable")]
    train_keys = key[train_sorted]
    hi = np.searchsorted(train_keys, key, side="left")
    first = np.searchsorted(train_keys, user_code.astype("int64") * n_ts, side="left")
    lo = np.maximum(first, hi - history_len)
    return train_sorted, lo, hi


def _text(values: pd.Series, default: str) -> list[bytes]:
    filled = values.astype(object).where(values.notna(), default).astype(str)
    return [v.encode("utf-8") for v in filled]


def _ints(values: pd.Series) -> list[int]:
    return pd.to_numeric(values, errors="coerce").fillna(0).astype("int64").tolist()


def _item_entries(items: pd.DataFrame) -> dict[str, bytes]:
    """item_id -> encoded ITEM_FEATURES entries (one Features fragment per item)."""
    out = {}
    for item, title, genres, desc, year in zip(
        items[F.ITEM_ID].astype(str), _text(items[F.TITLE], ""), items[F.GENRES],
        _text(items[F.DESCRIPTION], ""), _ints(items[F.YEAR]), strict=True,
    ):
        genre_list = genres if isinstance(genres, (list, tuple, np.ndarray)) else []
        out[item] = (
            W.entry(F.ITEM_ID, W.bytes_feature([item.encode("utf-8")]))
            + W.entry(F.TITLE, W.bytes_feature([title]))
            + W.entry(F.GENRES, W.bytes_feature(str(g).encode("utf-8") for g in genre_list))
            + W.entry(F.DESCRIPTION, W.bytes_feature([desc]))
            + W.entry(F.YEAR, W.int64_feature([year]))
        )
    return out


def _user_entries(users: pd.DataFrame) -> dict[str, bytes]:
    """user_id -> encoded user attribute entries (all USER_FEATURES but history)."""
    return {
        user: W.entry(F.USER_ID, W.bytes_feature([user.encode("utf-8")]))
        + W.entry(F.AGE, W.int64_feature([age]))
        + W.entry(F.GENDER, W.bytes_feature([gender]))
        + W.entry(F.OCCUPATION, W.bytes_feature([occupation]))
        for user, age, gender, occupation in zip(
            users[F.USER_ID].astype(str), _ints(users[F.AGE]),
            _text(users[F.GENDER], F.UNKNOWN), _text(users[F.OCCUPATION], F.UNKNOWN),
            strict=True,
        )
    }


class _ShardWriter:
    """Round-robin writer over `shards` gzipped TFRecord files in one directory.

    Streaming (rather than collecting all records first) keeps memory flat at
    millions of ratings; rows arrive in random order, so round-robin shards
    are statistically alike. Part files from an earlier write are removed, never
    written through: ImportExampleGen's artifacts hard-link them
    (components/example_gen/executor.py).
    """

    def __init__(self, directory: Path, shards: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("part-*.tfrecord.gz"):
            stale.unlink()
        self._writers = [
            tf.io.TFRecordWriter(
                str(directory / f"part-{i:05d}-of-{shards:05d}.tfrecord.gz"), GZIP_OPTIONS
            )
            for i in range(shards)
        ]
        self.count = 0

    def write(self, record: bytes) -> None:
        self._writers[self.count % len(self._writers)].write(record)
        self.count += 1

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


def write_examples(
    dataset: Dataset,
    out_dir: str | Path,
    *,
    eval_fraction: float = 0.2,
    history_len: int = F.HISTORY_LEN,
    shards: int = 1,
    seed: int = 0,
) -> dict:
    """Write train/eval/catalog TFRecords (see module docstring) and return the ingest report.

    Expects cleaned ratings (see cleaning.clean). Rows are written in a
    seeded random order so that shards are alike and readers need no large
    shuffle buffer; the same input and seed give the same files.
    """
    if not 0 <= eval_fraction < 1:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    if shards < 1 or history_len < 0:
        raise ValueError(f"need shards >= 1 and history_len >= 0, got {shards}, {history_len}")
    out = Path(out_dir)
    ratings = dataset.ratings.reset_index(drop=True)
    users = dataset.users.drop_duplicates(F.USER_ID)
    items = dataset.items.drop_duplicates(F.ITEM_ID)
    user_ids = ratings[F.USER_ID].astype(str).to_numpy()
    item_ids = ratings[F.ITEM_ID].astype(str).to_numpy()
    ts = ratings[F.TIMESTAMP].to_numpy().astype("int64")

    is_eval, split_rule = eval_mask(ratings, eval_fraction)
    items = with_tag_descriptions(items, dataset.tags, ratings, is_eval)

    # History: the user's train items strictly earlier, newest first.
    user_code = pd.factorize(user_ids)[0]
    train_sorted, lo, hi = history_index(user_code, ts, ~is_eval, history_len)
    encoded_ids = {i: W.bytes_element(i.encode("utf-8")) for i in pd.unique(item_ids)}
    history_elements = [encoded_ids[i] for i in item_ids[train_sorted]]

    # Users/items missing from their tables get the unknown/empty defaults.
    item_entries = _item_entries(pd.concat([items, _default_items(set(item_ids) - set(
        items[F.ITEM_ID].astype(str)))], ignore_index=True))
    user_entries = _user_entries(pd.concat([users, _default_users(set(user_ids) - set(
        users[F.USER_ID].astype(str)))], ignore_index=True))
    writers = {name: _ShardWriter(out / name, shards) for name in (*SPLITS, CATALOG_SPLIT)}
    try:
        rating_entries: dict[float, bytes] = {}
        # Plain lists: indexing them is much cheaper than indexing numpy arrays per row.
        rating_list = ratings[F.RATING].astype("float64").tolist()
        ts_list, lo_list, hi_list = ts.tolist(), lo.tolist(), hi.tolist()
        eval_list, user_list, item_list = is_eval.tolist(), user_ids.tolist(), item_ids.tolist()
        for row in np.random.default_rng(seed).permutation(len(ratings)).tolist():
            rating = rating_list[row]
            if rating not in rating_entries:
                rating_entries[rating] = W.entry(F.RATING, W.float_feature([rating]))
            history = b"".join(reversed(history_elements[lo_list[row]:hi_list[row]]))
            body = (user_entries[user_list[row]]
                    + W.entry(F.HISTORY, W.bytes_list_from_elements(history))
                    + item_entries[item_list[row]]
                    + W.entry(F.TIMESTAMP, W.int64_feature([ts_list[row]]))
                    + rating_entries[rating])
            writers[EVAL_SPLIT if eval_list[row] else TRAIN_SPLIT].write(W.example(body))
        for item in items[F.ITEM_ID].astype(str):
            writers[CATALOG_SPLIT].write(W.example(item_entries[item]))
    finally:
        for writer in writers.values():
            writer.close()

    report = {
        INGEST_SOURCE: dataset.name,
        INGEST_ROWS: {name: writer.count for name, writer in writers.items()},
        INGEST_USERS: int(len(pd.unique(user_ids))),
        INGEST_ITEMS: int(len(pd.unique(item_ids))),
        INGEST_ITEMS_WITH_GENRES: items_with_genres(items),
        INGEST_GENRES: distinct_genres(items),
        INGEST_ITEMS_WITH_TEXT: items_with_text(items),
        INGEST_RATING_VALUES: int(ratings[F.RATING].nunique()),
        **like_counts(ratings[F.RATING].to_numpy(), is_eval),
        **mean_rating_rmse(ratings[F.RATING].to_numpy(), is_eval),
        INGEST_SPLIT_RULE: split_rule,
        INGEST_SPLIT_PROTOCOL: split_protocol(ratings, is_eval),
        "history_len": history_len,
        "shards": shards,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / INGEST_REPORT_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def recorded_split_protocol(examples_root: str) -> str:
    """The split protocol write_examples recorded under `examples_root` (read with
    tf.io.gfile, so gs:// works), or UNKNOWN_PROTOCOL for examples written some other way."""
    path = os.path.join(examples_root, INGEST_REPORT_FILE)
    if not tf.io.gfile.exists(path):
        return UNKNOWN_PROTOCOL
    with tf.io.gfile.GFile(path) as f:
        return json.load(f).get(INGEST_SPLIT_PROTOCOL) or UNKNOWN_PROTOCOL


def _default_items(ids: set[str]) -> pd.DataFrame:
    ids_list = sorted(ids)
    return pd.DataFrame({F.ITEM_ID: ids_list, F.TITLE: "", F.GENRES: [[] for _ in ids_list],
                         F.DESCRIPTION: "", F.YEAR: 0})


def _default_users(ids: set[str]) -> pd.DataFrame:
    return pd.DataFrame({F.USER_ID: sorted(ids), F.AGE: 0, F.GENDER: F.UNKNOWN,
                         F.OCCUPATION: F.UNKNOWN})
