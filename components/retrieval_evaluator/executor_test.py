"""RetrievalEvaluator: hit-rate arithmetic, thresholds, and blessing output."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types import artifact_utils, channel_utils, standard_artifacts
from tfx.utils import path_utils

from mtrec.components.retrieval_evaluator.artifacts import RetrievalBlessing
from mtrec.components.retrieval_evaluator.component import RetrievalEvaluator
from mtrec.components.retrieval_evaluator.executor import (
    Executor,
    failed_thresholds,
    item_counts,
    relative_stderrs,
    sampled_pairs,
    top_items,
)
from mtrec.components.retrieval_evaluator.gate_notes import failure_lines
from mtrec.contracts.artifacts import RETRIEVAL_METRICS_FILE
from mtrec.contracts.signatures import EXCLUDED_SCORE
from mtrec.models.evaluation import (
    chance_ndcg,
    change_stderr,
    hit_rates,
    lift_stderr,
    popularity_ranking,
    ranking_metrics,
)


def test_hit_rates_count_the_rank_of_the_held_out_item():
    ranked = np.array([["a", "b", "c"], ["c", "a", "b"]], dtype=object)
    metrics = hit_rates(ranked, np.array([0, 0, 1]), np.array(["a", "c", "b"], dtype=object),
                        ks=(1, 3))
    assert metrics == {"hit_rate@1": pytest.approx(1 / 3), "hit_rate@3": 1.0}


def test_ranking_metrics_and_popularity():
    ranked = np.array([["a", "b"], ["x", "y"]], dtype=object)
    m = ranking_metrics(ranked, [{"b"}, {"q"}], k=2)
    assert m["precision@2"] == pytest.approx(0.25)
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["ndcg@2"] == pytest.approx((1 / np.log2(3)) / 2)
    assert popularity_ranking(np.array(["b", "a", "b", "c", "a", "b"]), 2).tolist() == ["b", "a"]
    counted = popularity_ranking(np.array(["a", "b", "c"]), 2, np.array([2, 3, 2]))
    assert counted.tolist() == ["b", "a"]


def test_the_relative_gates_standard_errors_by_hand():
    ours, popularity = np.array([1.0, 0.0, 0.5]), np.array([0.5, 0.5, 0.5])
    # Ratio of means 1: residuals ours - popularity = (0.5, -0.5, 0), sum of squares 0.5;
    # sqrt(0.5 / (3 * 2)) / mean(popularity) 0.5.
    assert lift_stderr(ours, popularity) == pytest.approx(np.sqrt(0.5 / 6) / 0.5)  # 0.577
    # Ratio 0.75 / 0.5 = 1.5: residuals (1 - 0.75, 0.5 - 0.75) = (0.25, -0.25);
    # sqrt(0.125 / (2 * 1)) / 0.5 = 0.5.
    assert lift_stderr(np.array([1.0, 0.5]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    # Differences (0.5, -0.5, 0): sample variance 0.25, over 3 users.
    assert change_stderr(ours, popularity) == pytest.approx(np.sqrt(0.25 / 3))  # 0.289
    assert np.isnan(lift_stderr(ours[:1], popularity[:1]))  # one user: no spread
    assert np.isnan(lift_stderr(ours, 0 * popularity))  # the lift itself is undefined
    assert np.isnan(change_stderr(ours[:1], popularity[:1]))
    assert relative_stderrs(ours, popularity, None) == {
        "ndcg@10_lift_stderr": pytest.approx(0.57735, abs=1e-5)}
    assert set(relative_stderrs(ours, popularity, popularity)) == {
        "ndcg@10_lift_stderr", "ndcg@10_change_stderr"}


def test_thresholds_must_name_a_computed_k():
    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    model = channel_utils.as_channel([standard_artifacts.Model()])
    with pytest.raises(ValueError, match="must name"):
        RetrievalEvaluator(examples=examples, model=model, thresholds={"hit_rate@7": 0.1})
    with pytest.raises(ValueError, match="hit_rate@K|must name"):
        RetrievalEvaluator(examples=examples, model=model, thresholds={"ndcg@5_lift": 0.1})
    component = RetrievalEvaluator(examples=examples, model=model,
                                   thresholds={"hit_rate@100": 0.1})
    # Not TFX's ModelBlessing: KFP's latest-blessed-model query must not find it (artifacts.py).
    assert component.outputs["blessing"].type is RetrievalBlessing


def _examples(tmp_path, splits: dict[str, list[tuple[str, str]]]) -> standard_artifacts.Examples:
    artifact = standard_artifacts.Examples()
    artifact.uri = str(tmp_path)
    artifact.split_names = artifact_utils.encode_split_names(list(splits))
    for split, pairs in splits.items():
        path = tmp_path / f"Split-{split}"
        path.mkdir()
        with tf.io.TFRecordWriter(str(path / "data.gz"), "GZIP") as writer:
            for user, item in pairs:
                feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
                           for k, v in (("user_id", user), ("item_id", item))}
                writer.write(tf.train.Example(
                    features=tf.train.Features(feature=feature)).SerializeToString())
    return artifact


def test_eval_users_are_sampled_whole_and_train_items_counted(tmp_path):
    pairs = [(f"u{u}", f"i{(u + j) % 7}") for u in range(50) for j in range(3)]
    examples = _examples(tmp_path, {"eval": pairs, "train": [("u0", "i1")] * 3 + [("u1", "i2")]})
    users, items, total = sampled_pairs(examples, "eval", max_users=10)
    assert total == 50 and len(np.unique(users)) == 10
    assert len(users) == 30  # every interaction of each kept user
    again, _, _ = sampled_pairs(examples, "eval", max_users=10)
    np.testing.assert_array_equal(users, again)  # seeded: the same users each run
    everyone, _, _ = sampled_pairs(examples, "eval", max_users=0)
    assert len(everyone) == len(pairs)
    assert item_counts(examples, "train") == {b"i1": 3, b"i2": 1}


# ------------------------------------------------- the served-path, relative gate
# Eval users each hold out one item; the train split makes "p" the most popular.
TRAIN = [(f"u{u}", "p") for u in range(6)] + [("u0", "a"), ("u1", "b"), ("u2", "c")]
EVAL = [("u0", "b"), ("u1", "c"), ("u2", "a"), ("u3", "a"), ("u4", "b"), ("u5", "c")]


class _FixedModel(tf.Module):
    """A SavedModel whose `recommend` and `retrieve` serve one fixed list per user."""

    def __init__(self, lists: dict[str, list[str]], catalogue: list[str] | None = None):
        super().__init__()
        users = sorted(lists)
        self._users = tf.constant(users)
        self._lists = tf.constant([lists[u] for u in users])
        if catalogue:  # as models/serving_module.py keeps it
            self.catalog_ids = tf.Variable(tf.constant(catalogue))

    def _rows(self, user_id, k):
        row = tf.argmax(tf.cast(tf.equal(user_id[:, None], self._users[None, :]), tf.int32), 1)
        return tf.gather(self._lists, row)[:, :k]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32)])
    def recommend(self, user_id, k):
        return {"item_ids": self._rows(user_id, k)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32)])
    def retrieve(self, user_id, k):
        return {"item_ids": self._rows(user_id, k)}


def _save(tmp_path, name: str, lists: dict[str, list[str]],
          catalogue: list[str] | None = None) -> standard_artifacts.Model:
    module = _FixedModel(lists, catalogue)
    artifact = standard_artifacts.Model()
    artifact.uri = str(tmp_path / name)
    artifact.id = hash(name) % 1000
    tf.saved_model.save(module, path_utils.serving_model_path(artifact.uri),
                        signatures={"recommend": module.recommend, "retrieve": module.retrieve})
    return artifact


def _popular_lists() -> dict[str, list[str]]:
    """What popularity serves once each user's training items are excluded."""
    seen = {}
    for u, i in TRAIN:
        seen.setdefault(u, set()).add(i)
    order = ["p", "a", "b", "c"]  # by training count, ties by id
    return {u: ([i for i in order if i not in seen[u]] + ["", ""])[:4] for u in seen}


def _oracle_lists() -> dict[str, list[str]]:
    held = dict(EVAL)
    return {u: [held[u], "p", "", ""] for u in held}


def _evaluate(tmp_path, model, baseline=None, thresholds=None, splits=None
              ) -> RetrievalBlessing:
    where = tmp_path / f"examples-{model.id}-{baseline.id if baseline else 0}"
    where.mkdir()
    examples = _examples(where, splits or {"train": TRAIN, "eval": EVAL})
    blessing = RetrievalBlessing()
    # Not created here: a KFP pod's launcher does not create output folders either.
    blessing.uri = str(tmp_path / f"blessing-{model.id}-{baseline.id if baseline else 0}")
    inputs = {"model": [model], "examples": [examples]}
    if baseline is not None:
        inputs["baseline_model"] = [baseline]
    Executor().Do(inputs, {"blessing": [blessing]}, {
        "ks": json.dumps([1, 2]),
        "thresholds": json.dumps(thresholds or {"ndcg@10_lift": 0.05, "ndcg@10_change": -0.01}),
        "eval_split": "eval", "train_split": "train", "max_users": 0,
    })
    return blessing


def _bless(tmp_path, model, baseline=None, thresholds=None, splits=None
           ) -> tuple[bool, dict]:
    blessing = _evaluate(tmp_path, model, baseline, thresholds, splits)
    with open(os.path.join(blessing.uri, RETRIEVAL_METRICS_FILE)) as f:
        report = json.load(f)
    return blessing.get_int_custom_property("blessed") == 1, report


def test_a_model_no_better_than_popularity_is_not_blessed(tmp_path):
    popular = _save(tmp_path, "popular", _popular_lists())
    blessed, report = _bless(tmp_path, popular)
    metrics = report["metrics"]
    # By hand: popularity's unseen lists are u0 [b,c], u1 [a,c], u2 [a,b], u3-u5 [a,b,c];
    # the held-out item sits at rank 1, 2, 1, 1, 2, 3; one relevant item each (ideal DCG 1).
    by_hand = (1 + 1 / np.log2(3) + 1 + 1 + 1 / np.log2(3) + 0.5) / 6
    assert metrics["popularity_ndcg@10"] == pytest.approx(by_hand)
    assert metrics["ndcg@10"] == pytest.approx(by_hand)
    assert metrics["ndcg@10_lift"] == pytest.approx(0.0)
    assert metrics["ndcg@10_lift_stderr"] == pytest.approx(0.0)  # the same lists, user by user
    assert not blessed and set(report["failed"]) == {"ndcg@10_lift"}
    # a, b and c of the 4 training items are served (padding is not an item); each was
    # rated by 1 of the 6 training users: novelty log2(6).
    assert metrics["coverage@10"] == pytest.approx(3 / 4)
    assert metrics["novelty@10"] == pytest.approx(np.log2(6))


def test_a_better_model_is_blessed_and_a_regression_against_the_baseline_is_not(tmp_path):
    oracle = _save(tmp_path, "oracle", _oracle_lists())
    blessed, report = _bless(tmp_path, oracle)
    assert blessed and report["metrics"]["ndcg@10"] == pytest.approx(1.0)
    assert "ndcg@10_change" not in report["metrics"]  # no baseline: the gate is skipped

    worse = _oracle_lists()
    worse["u0"] = ["p", "c", "", ""]  # one user loses the held-out item: NDCG@10 1 -> 5/6
    candidate = _save(tmp_path, "worse", worse)
    blessed, report = _bless(tmp_path, candidate, baseline=oracle,
                             thresholds={"ndcg@10_change": -0.01})
    assert report["metrics"]["baseline_ndcg@10"] == pytest.approx(1.0)
    assert report["metrics"]["ndcg@10_change"] == pytest.approx(-1 / 6)
    # Per-user changes (-1, 0, 0, 0, 0, 0): sample variance ((5/6)^2 + 5 (1/6)^2) / 5 = 1/6,
    # over 6 users: sqrt(1/36).
    assert report["metrics"]["ndcg@10_change_stderr"] == pytest.approx(1 / 6)
    assert not blessed


def test_thresholds_on_metrics_that_were_not_computed_fail_loudly():
    with pytest.raises(KeyError, match="hit_rate@7"):
        failed_thresholds({"hit_rate@10": 0.5}, {"hit_rate@7": 0.1})
    assert failed_thresholds({"ndcg@10": 0.5}, {"ndcg@10_change": 0.0}) == {}


def test_a_lift_over_a_popularity_of_zero_blesses_and_mlmd_can_store_it(tmp_path):
    # Each user's held-out item is one no training user rated: popularity never serves
    # it (NDCG@10 0), the model does (1), so the lift is inf, which MLMD's SQL refused
    # as a float property (a tiny generic log failed the RetrievalEvaluator so).
    splits = {"train": [(f"u{u}", "p") for u in range(3)],
              "eval": [("u0", "x"), ("u1", "y"), ("u2", "x")]}
    model = _save(tmp_path, "oracle", {"u0": ["x", "", "", ""], "u1": ["y", "", "", ""],
                                       "u2": ["x", "", "", ""]})
    blessing = _evaluate(tmp_path, model, splits=splits)
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_string_custom_property("ndcg_at_10_lift") == "inf"
    assert blessing.get_float_custom_property("ndcg_at_10") == pytest.approx(1.0)
    store = metadata_store.MetadataStore(metadata_store_pb2.ConnectionConfig(
        sqlite=metadata_store_pb2.SqliteMetadataSourceConfig(
            filename_uri=str(tmp_path / "mlmd.sqlite"),
            connection_mode=metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)))
    blessing.type_id = store.put_artifact_type(blessing.artifact_type)
    [stored] = store.get_artifacts_by_id(store.put_artifacts([blessing.mlmd_artifact]))
    assert stored.custom_properties["ndcg_at_10_lift"].string_value == "inf"


def test_eval_items_without_training_ratings_are_in_reach(tmp_path):
    # Only "p" has training ratings; the held-out x and y are catalogue items nobody
    # rated in training. k was bounded by the 1 training item, so retrieve and
    # recommend were asked for one item and x and y could never be hit.
    splits = {"train": [(f"u{u}", "p") for u in range(3)],
              "eval": [("u0", "x"), ("u1", "y"), ("u2", "x")]}
    model = _save(tmp_path, "second", {"u0": ["p", "x", "", ""], "u1": ["p", "y", "", ""],
                                       "u2": ["p", "x", "", ""]})
    _, report = _bless(tmp_path, model, thresholds={"hit_rate@2": 0.0}, splits=splits)
    metrics = report["metrics"]
    assert metrics["hit_rate@1"] == 0.0 and metrics["hit_rate@2"] == pytest.approx(1.0)
    assert metrics["ndcg@10"] == pytest.approx(1 / np.log2(3))  # each at rank 2
    assert metrics["coverage@10"] == pytest.approx(3 / 3)  # p, x, y of p, x, y


def test_padding_with_excluded_items_is_no_recommendation(tmp_path):
    # u0 has one unseen item left; recommend pads its list with excluded (seen) items,
    # score EXCLUDED_SCORE, which coverage must not count as recommended.
    class _Padded(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string),
                                      tf.TensorSpec([], tf.int32)])
        def recommend(self, user_id, k):
            n = tf.shape(user_id)[0]
            ids = tf.tile(tf.constant([["x", "p", "q"]]), [n, 1])[:, :k]
            scores = tf.tile(tf.constant([[1.0, EXCLUDED_SCORE, EXCLUDED_SCORE]]), [n, 1])
            return {"item_ids": ids, "scores": scores[:, :k]}

    module = _Padded()
    path = str(tmp_path / "padded")
    tf.saved_model.save(module, path, signatures={"recommend": module.recommend})
    ranked = top_items(path, "recommend", np.array([b"u0", b"u1"], dtype=object), 3)
    assert ranked.tolist() == [[b"x", b"", b""], [b"x", b"", b""]]


def test_chance_ndcg_by_hand():
    # Positions 1-10 discount 1/log2(i + 1); their sum S10 = 4.5436, the first two 1.6309.
    s10 = float(np.sum(1 / np.log2(np.arange(2, 12))))
    chance = chance_ndcg(np.array([6, 54, 10, 2]), np.array([6, 4, 1, 1]),
                         np.array([6, 4, 2, 1]), 10)
    # 6 unseen, all held out: any order is perfect. 54 unseen, 4 held out: 4/54 * S10
    # over the ideal 1 + 1/log2(3) + 1/2 + 1/log2(5). 10 unseen, 1 of the 2 held out
    # servable: S10 / 10 over 1 + 1/log2(3). 2 unseen, 1 held out: (1 + 1/log2(3)) / 2.
    assert chance.tolist() == pytest.approx([
        1.0, 4 / 54 * s10 / (1 + 1 / np.log2(3) + 0.5 + 1 / np.log2(5)),
        s10 / 10 / (1 + 1 / np.log2(3)), (1 + 1 / np.log2(3)) / 2])
    assert chance_ndcg(np.array([0]), np.array([0]), np.array([1]), 10).tolist() == [0.0]


def test_a_model_below_a_random_order_is_refused_though_above_popularity(tmp_path):
    """A log whose held-out items are new releases nobody rated in training: popularity
    ranks them last, and a model that ranks them below chance beat it and was pushed."""
    catalogue = ["a", "b", "p", "x"]
    splits = {"train": [(f"u{u}", "p") for u in range(3)],
              "eval": [(f"u{u}", "x") for u in range(3)]}
    model = _save(tmp_path, "below-chance", {f"u{u}": ["a", "x", "b"] for u in range(3)},
                  catalogue)
    gates = {"ndcg@10_lift": 0.05, "ndcg@10_chance_lift": 0.05}
    blessed, report = _bless(tmp_path, model, thresholds=gates, splits=splits)
    metrics = report["metrics"]
    # Popularity serves a, b, x (x unrated: last, ties by id): x at rank 3, NDCG 1/2; it
    # was 0 when popularity's lists held only rated items. Chance: 1 of 3 unseen held
    # out, (1 + 1/log2(3) + 1/2) / 3 = 0.7103. The model: rank 2, 1/log2(3) = 0.6309.
    assert metrics["popularity_ndcg@10"] == pytest.approx(0.5)
    assert metrics["chance_ndcg@10"] == pytest.approx((1 + 1 / np.log2(3) + 0.5) / 3)
    assert metrics["ndcg@10"] == pytest.approx(1 / np.log2(3))
    assert metrics["ndcg@10_lift"] == pytest.approx(2 / np.log2(3) - 1)  # 0.26: passes
    assert not blessed and set(report["failed"]) == {"ndcg@10_chance_lift"}
    assert report["failed"]["ndcg@10_chance_lift"][0] == pytest.approx(
        1 / np.log2(3) / ((1 + 1 / np.log2(3) + 0.5) / 3) - 1)  # -0.112

    oracle = _save(tmp_path, "first", {f"u{u}": ["x", "a", "b"] for u in range(3)}, catalogue)
    blessed, report = _bless(tmp_path, oracle, thresholds=gates, splits=splits)
    assert blessed and report["metrics"]["ndcg@10_chance_lift"] == pytest.approx(
        3 / (1 + 1 / np.log2(3) + 0.5) - 1)


def test_one_user_whose_unseen_items_are_all_held_out_is_no_evidence(tmp_path):
    """A one-user log: with its seen items excluded, every order scores NDCG@10 1.0."""
    catalogue = [f"i{i}" for i in range(5)]
    splits = {"train": [("solo", "i0"), ("solo", "i1"), ("solo", "i2")],
              "eval": [("solo", "i3"), ("solo", "i4")]}
    model = _save(tmp_path, "solo", {"solo": ["i3", "i4"]}, catalogue)
    blessed, report = _bless(tmp_path, model, splits=splits,
                             thresholds={"ndcg@10_chance_lift": 0.05})
    assert report["metrics"]["ndcg@10"] == report["metrics"]["chance_ndcg@10"] == 1.0
    assert not blessed and report["metrics"]["ndcg@10_chance_lift"] == 0.0
    assert np.isnan(report["metrics"]["ndcg@10_chance_lift_stderr"])  # one user


def test_a_whole_user_holdout_counts_its_cold_users_and_says_the_gate_cannot_tell(tmp_path):
    """Eval users with no training rating are served the new-user prior (popularity),
    whatever the model learned: lift 0.000, standard error 0.000, and a note that says
    the eval split cannot tell, not that the model is no better than popularity."""
    splits = {"train": TRAIN, "eval": [("n0", "a"), ("n1", "b"), ("n2", "p"), ("u0", "b")]}
    prior = ["p", "a", "b", "c"]
    model = _save(tmp_path, "prior", {"n0": prior, "n1": prior, "n2": prior,
                                      "u0": ["b", "c", "", ""]})
    blessed, report = _bless(tmp_path, model, splits=splits)
    assert report["metrics"]["eval_cold_users"] == 3 and report["metrics"]["eval_users"] == 4
    assert not blessed and not failure_lines(report["metrics"], report["failed"], {})[1:]
    cold = _save(tmp_path, "cold", {"n0": prior, "n1": prior, "n2": prior})
    splits["eval"] = splits["eval"][:3]
    blessed, report = _bless(tmp_path, cold, splits=splits)
    assert report["metrics"]["eval_cold_users"] == 3 and not blessed
    lines = failure_lines(report["metrics"], report["failed"], report["thresholds"])
    assert lines[1] == (
        "retrieval gate: the eval split cannot tell this model from popularity: none of the 3 "
        "eval users has a training rating (a whole-user holdout), so each is served the "
        "new-user prior, whatever the model learned, as popularity would serve them; to push "
        """anyway, --retrieval-thresholds '{"ndcg@10_change": -0.01}'""")
