"""RetrievalEvaluator: hit-rate arithmetic, thresholds, and blessing output."""

from __future__ import annotations

import numpy as np
import pytest
from tfx.types import channel_utils, standard_artifacts

from mtrec.components.retrieval_evaluator.component import RetrievalEvaluator
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


def test_thresholds_must_name_a_computed_k():
    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    model = channel_utils.as_channel([standard_artifacts.Model()])
    with pytest.raises(ValueError, match="hit_rate@K"):
        RetrievalEvaluator(examples=examples, model=model, thresholds={"hit_rate@7": 0.1})
    component = RetrievalEvaluator(examples=examples, model=model,
                                   thresholds={"hit_rate@100": 0.1})
    assert component.outputs["blessing"].type == standard_artifacts.ModelBlessing
