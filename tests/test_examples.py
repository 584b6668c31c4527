"""Examples writer: features and types, the split rule, no history leakage, catalog, shards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.artifacts import INGEST_REPORT_FILE
from mtrec.data import tfexample as W
from mtrec.data.cleaning import clean
from mtrec.data.examples import time_split, write_examples
from mtrec.data.synthetic import generate
from mtrec.data.tables import SPLIT, Dataset, empty_malformed, make_items, make_users

KIND = {name: "bytes_list" for name in F.RAW_FEATURES}
KIND.update({name: "int64_list" for name in F.INT_FEATURES})
KIND.update({name: "float_list" for name in F.FLOAT_FEATURES})


def read(out: Path, split: str) -> list[tf.train.Example]:
    files = sorted(str(p) for p in (out / split).glob("part-*.tfrecord.gz"))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [tf.train.Example.FromString(record.numpy()) for record in dataset]


def values(example: tf.train.Example, name: str) -> list:
    feature = example.features.feature[name]
    out = list(getattr(feature, KIND[name]).value)
    return [v.decode() for v in out] if KIND[name] == "bytes_list" else out


def frame(examples: list[tf.train.Example], split: str) -> pd.DataFrame:
    rows = [{name: values(e, name) for name in F.RAW_FEATURES} for e in examples]
    df = pd.DataFrame(rows)
    for name in F.RAW_FEATURES:
        if name not in F.LIST_FEATURES:
            df[name] = df[name].str[0]
    return df.assign(split=split)


@pytest.fixture(scope="module")
def small() -> Dataset:
    return clean(generate(n_users=50, n_items=80, n_ratings=1500, seed=3)).dataset


@pytest.fixture(scope="module")
def written(small: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("examples")
    report = write_examples(small, out, history_len=5)
    return out, report


def test_features_and_types(written: tuple[Path, dict], small: Dataset) -> None:
    out, report = written
    train, evals = read(out, "train"), read(out, "eval")
    assert report["rows"] == {"train": len(train), "eval": len(evals), "catalog": 80}
    assert len(train) + len(evals) == len(small.ratings)
    assert json.loads((out / INGEST_REPORT_FILE).read_text()) == report
    assert report["n_users"] == 50 and report["n_items"] == small.ratings[F.ITEM_ID].nunique()
    assert report["n_items_with_genres"] == sum(len(g) > 0 for g in small.items[F.GENRES])
    assert report["n_items_with_text"] == len(small.items)  # each has a title
    assert report["rating_values"] == small.ratings[F.RATING].nunique() > 1
    for example in train[:50] + evals[:50]:
        assert set(example.features.feature) == set(F.RAW_FEATURES)
        for name in F.RAW_FEATURES:
            assert example.features.feature[name].WhichOneof("kind") == KIND[name]
            if name not in F.LIST_FEATURES:
                assert len(values(example, name)) == 1


def test_rows_match_the_dataset(written: tuple[Path, dict], small: Dataset) -> None:
    out, _ = written
    got = frame(read(out, "train"), "train")
    expected = small.ratings.merge(small.users, on=F.USER_ID).merge(small.items, on=F.ITEM_ID)
    merged = got.merge(expected, on=[F.USER_ID, F.ITEM_ID], suffixes=("", "_want"))
    assert len(merged) == len(got)
    for name in (
        F.RATING,
        F.TIMESTAMP,
        F.AGE,
        F.GENDER,
        F.OCCUPATION,
        F.TITLE,
        F.GENRES,
        F.DESCRIPTION,
        F.YEAR,
    ):
        assert (merged[name] == merged[f"{name}_want"]).all(), name


def test_time_split_rule(written: tuple[Path, dict]) -> None:
    out, _ = written
    df = pd.concat([frame(read(out, s), s) for s in ("train", "eval")])
    for _, user in df.groupby(F.USER_ID):
        n_eval = (user["split"] == "eval").sum()
        assert n_eval == min(len(user) - 1, max(1, int(np.floor(len(user) * 0.2 + 0.5))))
        assert (
            user.loc[user["split"] == "eval", F.TIMESTAMP].min()
            >= user.loc[user["split"] == "train", F.TIMESTAMP].max()
        )


def test_history_is_earlier_train_items_only(written: tuple[Path, dict]) -> None:
    out, _ = written
    df = pd.concat([frame(read(out, s), s) for s in ("train", "eval")], ignore_index=True)
    train = df[df["split"] == "train"]
    by_user = {u: g.sort_values(F.TIMESTAMP, ascending=False) for u, g in train.groupby(F.USER_ID)}
    eval_items = df[df["split"] == "eval"].groupby(F.USER_ID)[F.ITEM_ID].agg(set)
    assert df[F.HISTORY].map(len).max() == 5
    for row in df.itertuples():
        earlier = by_user[getattr(row, F.USER_ID)]
        earlier = earlier[earlier[F.TIMESTAMP] < getattr(row, F.TIMESTAMP)]
        history = getattr(row, F.HISTORY)
        assert history == earlier[F.ITEM_ID].tolist()[:5]
        assert not set(history) & eval_items.get(getattr(row, F.USER_ID), set())


def test_catalog(written: tuple[Path, dict], small: Dataset) -> None:
    out, _ = written
    catalog = read(out, "catalog")
    assert len(catalog) == len(small.items)
    assert all(set(e.features.feature) == set(F.ITEM_FEATURES) for e in catalog)
    first = {name: values(catalog[0], name) for name in F.ITEM_FEATURES}
    item = small.items.iloc[0]
    assert first[F.ITEM_ID] == [item[F.ITEM_ID]] and first[F.GENRES] == item[F.GENRES]


def test_parse_with_tf_feature_spec(written: tuple[Path, dict]) -> None:
    out, _ = written
    spec = {}
    for name in F.RAW_FEATURES:
        dtype = {"bytes_list": tf.string, "int64_list": tf.int64, "float_list": tf.float32}[
            KIND[name]
        ]
        spec[name] = (
            tf.io.VarLenFeature(dtype)
            if name in F.LIST_FEATURES
            else tf.io.FixedLenFeature([], dtype)
        )
    files = [str(p) for p in (out / "eval").glob("*.gz")]
    batch = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8)))
    parsed = tf.io.parse_example(batch, spec)
    assert parsed[F.RATING].shape == (8,) and parsed[F.HISTORY].dense_shape[0] == 8


def official(rows: list[tuple]) -> Dataset:
    ratings = pd.DataFrame(rows, columns=[F.USER_ID, F.ITEM_ID, F.RATING, F.TIMESTAMP, SPLIT])
    users = make_users(pd.Series(["a"]), pd.Series([30]), pd.Series(["F"]))
    items = make_items(pd.Series(["x", "y", "z"]), pd.Series(["X", "Y", "Z"]))
    return Dataset("official", ratings, users, items, empty_malformed())


def test_official_split_and_defaults(tmp_path: Path) -> None:
    ds = official(
        [
            ("a", "x", 4.0, 10, "train"),
            ("a", "y", 3.0, 20, "eval"),
            ("a", "z", 5.0, 30, "train"),
            ("b", "q", 1.0, 5, "eval"),
        ]
    )
    report = write_examples(ds, tmp_path, eval_fraction=0.5)
    assert report["split_rule"] == "official"
    assert report["rows"] == {"train": 2, "eval": 2, "catalog": 3}
    assert report["n_items_with_genres"] == 0  # make_items without genres
    assert report["n_items_with_text"] == 3  # titles X, Y, Z
    got = pd.concat([frame(read(tmp_path, s), s) for s in ("train", "eval")])
    got = got.set_index(F.ITEM_ID)
    assert got.loc["y", "split"] == "eval" and got.loc["y", F.HISTORY] == ["x"]
    assert got.loc["z", F.HISTORY] == ["x"]  # the eval item y never appears in history
    unknown = got.loc["q"]  # user b and item q are in neither table
    assert (unknown[F.GENDER], unknown[F.OCCUPATION], unknown[F.AGE]) == (F.UNKNOWN, F.UNKNOWN, 0)
    assert (unknown[F.TITLE], unknown[F.GENRES], unknown[F.YEAR]) == ("", [], 0)


def test_shards_and_stale_files(small: Dataset, tmp_path: Path) -> None:
    report = write_examples(small, tmp_path, shards=3)
    assert len(list((tmp_path / "train").glob("part-*-of-00003.tfrecord.gz"))) == 3
    assert len(read(tmp_path, "train")) == report["rows"]["train"]
    write_examples(small, tmp_path, shards=1)
    assert len(list((tmp_path / "train").glob("*.gz"))) == 1


def test_rewriting_never_writes_through_a_file_an_artifact_links(small: Dataset,
                                                                   tmp_path: Path) -> None:
    """ImportExampleGen hard-links these files into its artifact
    (components/example_gen/executor.py): a second write must make new files."""
    write_examples(small, tmp_path, shards=1)
    part = tmp_path / "train" / "part-00000-of-00001.tfrecord.gz"
    linked = tmp_path / "artifact.tfrecord.gz"
    os.link(part, linked)
    before = linked.read_bytes()
    write_examples(small, tmp_path, shards=1, seed=1)  # other bytes at the same name
    assert part.read_bytes() != before and linked.read_bytes() == before


def test_time_split_edges() -> None:
    ratings = pd.DataFrame(
        {F.USER_ID: ["a", "b", "b", "c", "c", "c"], F.TIMESTAMP: [1, 5, 4, 1, 1, 1]}
    )
    assert time_split(ratings, 0.2).tolist() == [False, True, False, False, False, True]
    assert not time_split(ratings, 0.0).any()


def _ref(kind: str, values: list) -> tf.train.Feature:
    lists = {
        "bytes_list": tf.train.BytesList,
        "int64_list": tf.train.Int64List,
        "float_list": tf.train.FloatList,
    }
    return tf.train.Feature(**{kind: lists[kind](value=values)})


INT64_EDGES = [0, 1, -1, 127, 128, 300, 2**63 - 1, -(2**63)]


@pytest.mark.parametrize(
    "encoded,reference",
    [
        (W.bytes_feature([b"a", "é".encode(), b""]), _ref("bytes_list", [b"a", "é".encode(), b""])),
        (W.bytes_feature([b"x" * 300]), _ref("bytes_list", [b"x" * 300])),
        (W.bytes_feature([]), _ref("bytes_list", [])),
        (W.int64_feature(INT64_EDGES), _ref("int64_list", INT64_EDGES)),
        (W.int64_feature([]), _ref("int64_list", [])),
        (W.float_feature([0.5, -1.25, 5.0]), _ref("float_list", [0.5, -1.25, 5.0])),
        (W.float_feature([]), _ref("float_list", [])),
    ],
)
def test_wire_encoder_matches_protobuf(encoded: bytes, reference: tf.train.Feature) -> None:
    assert tf.train.Feature.FromString(encoded) == reference
    example = tf.train.Example.FromString(W.example(W.entry("f", encoded) + W.entry("g", b"")))
    expected = tf.train.Example()
    expected.features.feature["f"].CopyFrom(reference)
    expected.features.feature["g"].CopyFrom(tf.train.Feature())
    assert example == expected
    assert example.features.feature["f"].WhichOneof("kind") == reference.WhichOneof("kind")
