"""Popularity and coverage: one definition for the RetrievalEvaluator and
benchmarks/served_quality.py, pinned by hand on a tiny log.

They disagreed on the sample: popularity P@10 0.1270 (evaluator) against 0.1278
(benchmark: ties in np.argpartition's order), coverage@10 over 797 items against 796,
where the model serves 800.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from mtrec.components.retrieval_evaluator.executor import evaluate
from mtrec.components.retrieval_evaluator.served_lists import (
    catalogue_ids,
    popular_top_k,
    popular_unseen,
    popularity_counts,
    served_catalogue,
    with_unrated,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from served_metrics import GroundTruth, measure, popularity_outputs, served_outputs

# Training: p by 3 users; a and b by 2 (a tie); c and d by 1 (a tie).
TRAIN = [("u0", "a"), ("u0", "p"), ("u1", "b"), ("u1", "p"), ("u2", "c"), ("u2", "p"),
         ("u3", "a"), ("u3", "b"), ("u3", "d")]
# Held out: x has no training rating; the model also serves y, which nobody rated.
EVAL = [("u0", "b"), ("u1", "d"), ("u2", "b"), ("u3", "c"), ("u3", "x")]
CATALOGUE = ["a", "b", "c", "d", "p", "x", "y"]
# What the model serves: b, c, d, x and y, 5 distinct items.
SERVED = {"u0": ["b", "x"], "u1": ["d", "y"], "u2": ["b", "c"], "u3": ["c", "x"]}

# Popularity's unseen lists, ties by id, then the catalogue's unrated x and y: u0 [b c d
# x y], u1 [a c d x y], u2 [a b d x y], u3 [p c x y]. The held-out items' ranks: u0 b 1,
# u1 d 3, u2 b 2, u3 c 2 and x 3 (without the unrated items, u3's list ended at c).
BY_HAND = {
    "ndcg@10": (1 + 1 / np.log2(4) + 1 / np.log2(3)
                + (1 / np.log2(3) + 1 / np.log2(4)) / (1 + 1 / np.log2(3))) / 4,
    "precision@10": (0.1 + 0.1 + 0.1 + 0.2) / 4,  # u3 has two hits in ten
    "recall@10": 1.0,
    "hit_rate@10": 5 / 5,  # retrieve (seen kept): p a b c d x y holds every held-out item
}
COVERAGE = 5 / 7  # of the 7 items the model serves: not 5/6 (train + eval), nor 5/5


def test_popularity_breaks_ties_by_id_and_leaves_each_users_items_out():
    counts = popularity_counts(item for _, item in TRAIN)
    assert counts == {"a": 2, "b": 2, "c": 1, "d": 1, "p": 3}
    assert popular_top_k(counts, 4).tolist() == ["p", "a", "b", "c"]
    rows = popular_unseen(counts, [{"a", "p"}, {"b", "p"}, {"a", "b", "c", "d", "p"}], 3)
    assert rows.tolist() == [["b", "c", "d"], ["a", "c", "d"], [b"", b"", b""]]


def test_popularity_ranks_the_catalogues_unrated_items_last_by_id():
    counts = with_unrated(popularity_counts(["b", "a", "b"]), ["z", "b", "y", "a"])
    assert counts == {"b": 2, "a": 1, "y": 0, "z": 0}
    assert popular_top_k(counts, 4).tolist() == ["b", "a", "y", "z"]
    assert popular_unseen(counts, [{"a", "y"}], 3).tolist() == [["b", "z", b""]]


class _Catalogue:
    catalog_ids = tf.constant([b"i1", b"i2", b"i3"])


def test_the_catalogue_is_the_one_the_model_serves():
    assert served_catalogue(_Catalogue(), ["i1"]) == 3
    assert served_catalogue(object(), ["i1", "i2", "i1"]) == 2  # no catalogue: the items seen


class _Served(tf.Module):
    """`recommend` and `retrieve` serve SERVED; `catalog_ids` as models/serving_module.py."""

    def __init__(self) -> None:
        super().__init__()
        users = sorted(SERVED)
        self._users = tf.constant(users)
        self._lists = tf.constant([(SERVED[u] + [""] * 8)[:8] for u in users])
        self.catalog_ids = tf.Variable(tf.constant([i.encode() for i in CATALOGUE]))

    def _rows(self, user_id: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
        row = tf.argmax(tf.cast(tf.equal(user_id[:, None], self._users[None, :]), tf.int32), 1)
        return tf.gather(self._lists, row)[:, :k]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32)])
    def recommend(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"item_ids": self._rows(user_id, k)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32)])
    def retrieve(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"item_ids": self._rows(user_id, k)}


def _examples(where: Path) -> standard_artifacts.Examples:
    artifact = standard_artifacts.Examples()
    artifact.uri = str(where)
    artifact.split_names = artifact_utils.encode_split_names(["train", "eval"])
    for split, pairs in (("train", TRAIN), ("eval", EVAL)):
        (where / f"Split-{split}").mkdir(parents=True)
        with tf.io.TFRecordWriter(str(where / f"Split-{split}" / "data.gz"), "GZIP") as w:
            for user, item in pairs:
                feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
                           for k, v in (("user_id", user), ("item_id", item))}
                w.write(tf.train.Example(
                    features=tf.train.Features(feature=feature)).SerializeToString())
    return artifact


def test_the_evaluator_and_the_benchmark_agree_with_the_hand_values(tmp_path: Path):
    module = _Served()
    tf.saved_model.save(module, str(tmp_path / "model"),
                        signatures={"recommend": module.recommend, "retrieve": module.retrieve})
    pipeline = evaluate(str(tmp_path / "model"), _examples(tmp_path / "examples"), [10],
                        "eval", "train")

    def column(pairs: list[tuple[str, str]], at: int) -> np.ndarray:
        return np.array([pair[at] for pair in pairs], dtype=object)

    truth = GroundTruth.from_arrays(column(TRAIN, 0), column(TRAIN, 1), np.full(len(TRAIN), 4.0),
                                    column(EVAL, 0), column(EVAL, 1), np.full(len(EVAL), 4.0))
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    popularity = measure(truth, popularity_outputs(truth, catalogue_ids(loaded)))
    served = measure(truth, served_outputs(loaded.signatures, truth, ratings=False,
                                           model=loaded))
    for name, value in BY_HAND.items():
        assert pipeline["popularity_" + name] == pytest.approx(value), name
        assert popularity[name] == pytest.approx(value), name
    assert pipeline["coverage@10"] == pytest.approx(COVERAGE)
    assert served["coverage@10"] == pytest.approx(COVERAGE)
