"""Artifact reads go through tf.io.gfile: they work on a non-local filesystem.

TF's in-memory `ram://` filesystem stands in for `gs://`: Python's glob and
os.path see neither, which is how the Trainer once found "no catalogue files"
and the RetrievalEvaluator scored zero interactions on a gs:// pipeline root.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from mtrec.components.retrieval_evaluator.executor import item_counts, sampled_pairs
from mtrec.contracts import features as F
from mtrec.contracts.pipeline import CATALOG_SPLIT, EVAL_SPLIT, TRAIN_SPLIT
from mtrec.data.artifact_io import read_split, split_dir, split_files
from mtrec.models.item_catalog import read_catalog
from mtrec.models.item_titles import DISPLAY_TITLE
from mtrec.models.reindex import item_example


def _ram_root() -> str:
    return f"ram://mtrec-{uuid.uuid4().hex}"


def _examples(uri: str, splits: dict[str, list[bytes]]) -> standard_artifacts.Examples:
    """An Examples artifact at `uri` with one gzipped shard per split."""
    artifact = standard_artifacts.Examples()
    artifact.uri = uri
    artifact.split_names = artifact_utils.encode_split_names(list(splits))
    for split, records in splits.items():
        folder = split_dir(uri, split)
        tf.io.gfile.makedirs(folder)
        with tf.io.TFRecordWriter(f"{folder}/data_tfrecord-00000-of-00001.gz", "GZIP") as w:
            for record in records:
                w.write(record)
    return artifact


def _pair(user: str, item: str) -> bytes:
    feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
               for k, v in ((F.USER_ID, user), (F.ITEM_ID, item))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_split_dir_is_tfx_split_layout():
    artifact = _examples(_ram_root(), {TRAIN_SPLIT: []})
    assert split_dir(artifact.uri, TRAIN_SPLIT) == artifact_utils.get_split_uri(
        [artifact], TRAIN_SPLIT
    )


def test_split_files_and_read_split_on_ram_filesystem():
    root = _ram_root()
    _examples(root, {TRAIN_SPLIT: [b"a", b"b"]})
    files = split_files(split_dir(root, TRAIN_SPLIT))
    assert [f.rsplit("/", 1)[1] for f in files] == ["data_tfrecord-00000-of-00001.gz"]
    assert list(read_split(split_dir(root, TRAIN_SPLIT)).as_numpy_iterator()) == [b"a", b"b"]
    with pytest.raises(FileNotFoundError, match="no \\* files in ram://"):
        split_files(split_dir(root, EVAL_SPLIT))
    assert split_files(split_dir(root, EVAL_SPLIT), required=False) == []


def test_retrieval_evaluator_reads_splits_on_ram_filesystem():
    train = [_pair("u1", "a"), _pair("u1", "b"), _pair("u2", "a")]
    held_out = [_pair("u1", "c"), _pair("u2", "b"), _pair("u3", "a")]
    examples = _examples(_ram_root(), {TRAIN_SPLIT: train, EVAL_SPLIT: held_out})
    assert item_counts(examples, TRAIN_SPLIT) == {b"a": 2, b"b": 1}
    users, items, total = sampled_pairs(examples, EVAL_SPLIT, max_users=0)
    assert total == 3
    assert sorted(zip(users.tolist(), items.tolist(), strict=True)) == [
        (b"u1", b"c"), (b"u2", b"b"), (b"u3", b"a")
    ]


def test_trainer_catalogue_read_on_ram_filesystem(transformed_synthetic):
    """The CatalogTrainer hands run_fn the catalogue split's URI; read_catalog reads it."""
    tft_output = transformed_synthetic[0]
    rows = [
        {F.ITEM_ID: item, F.TITLE: f"Film {item}", F.GENRES: "Drama|Comedy",
         F.DESCRIPTION: "", F.YEAR: 1990 + n}
        for n, item in enumerate(["new-1", "new-2", "new-1"])  # a duplicate id: first wins
    ]
    catalog = _examples(_ram_root(), {CATALOG_SPLIT: [item_example(pd.Series(r)) for r in rows]})
    columns = read_catalog(artifact_utils.get_split_uri([catalog], CATALOG_SPLIT), tft_output)
    assert columns[F.ITEM_ID_XF].tolist() == [b"new-1", b"new-2"]
    assert columns[F.GENRES_MULTI_HOT].shape[0] == 2
    # Each item's display title, from its raw title and year (describe_items' table).
    assert columns[DISPLAY_TITLE].tolist() == ["Film new-1 (1990)", "Film new-2 (1991)"]
