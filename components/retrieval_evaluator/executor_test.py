"""RetrievalEvaluator: hit-rate arithmetic, thresholds, and blessing output."""

from __future__ import annotations

import numpy as np
import pytest
from tfx.types import artifact_utils, channel_utils, standard_artifacts

from mtrec.components.retrieval_evaluator.component import RetrievalEvaluator
from mtrec.components.retrieval_evaluator.executor import item_counts, sampled_pairs
from mtrec.models.evaluation import hit_rates, popularity_ranking, ranking_metrics


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


def test_thresholds_must_name_a_computed_k():
    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    model = channel_utils.as_channel([standard_artifacts.Model()])
    with pytest.raises(ValueError, match="hit_rate@K"):
        RetrievalEvaluator(examples=examples, model=model, thresholds={"hit_rate@7": 0.1})
    component = RetrievalEvaluator(examples=examples, model=model,
                                   thresholds={"hit_rate@100": 0.1})
    assert component.outputs["blessing"].type == standard_artifacts.ModelBlessing


def _examples(tmp_path, splits: dict[str, list[tuple[str, str]]]) -> standard_artifacts.Examples:
    import tensorflow as tf

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
