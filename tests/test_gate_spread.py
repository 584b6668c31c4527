"""gate_spread.py's arithmetic and served_metrics.example_metrics, against values
worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import tests.transform_support  # noqa: F401  (puts benchmarks/ on sys.path)

# isort: split
from gate_spread import GATES, main, markdown, parse_args, summarize
from quality_data import resolve
from served_metrics import example_metrics

from mtrec.contracts import features as F


def _run(rmse: float, auc: float, epochs: int = 8) -> dict:
    return {"rmse": rmse, "relevance_auc": auc, "epochs": epochs, "seed": 0, "train_seconds": 1}


def test_summary_is_the_hand_spread_and_refusal_count(monkeypatch):
    """RMSE seeds (0.88, 0.89, 0.90): std 0.01, a difference's std 0.01 x sqrt 2, largest
    pair 0.02. A worse model at 0.905 is 0.025, 0.015, 0.005 worse: a 0.01 bound refuses
    it against two of three. AUC seeds (0.80, 0.81, 0.82), worse 0.745: 0.055-0.075 lower,
    refused against all three by 0.05; AUC is higher-is-better, so the sign flips."""
    monkeypatch.setitem(GATES, "rmse", ("rating RMSE", 1, 0.01))
    monkeypatch.setitem(GATES, "relevance_auc", ("relevance AUC", -1, 0.05))
    seeded = [_run(0.88, 0.80), _run(0.89, 0.81), _run(0.90, 0.82)]
    summary = summarize(seeded, [_run(0.905, 0.745, epochs=3)])
    rmse, auc = summary["rmse"], summary["relevance_auc"]
    assert rmse["std"] == pytest.approx(0.01)
    assert rmse["diff_std"] == pytest.approx(0.01 * np.sqrt(2))
    assert rmse["max_pair_diff"] == pytest.approx(0.02)
    assert rmse["bound_in_diff_std"] == pytest.approx(1 / np.sqrt(2))
    np.testing.assert_allclose(rmse["fewer_epochs"][0]["worsening"], [0.025, 0.015, 0.005])
    assert rmse["fewer_epochs"][0]["refused"] == 2
    np.testing.assert_allclose(auc["fewer_epochs"][0]["worsening"], [0.055, 0.065, 0.075])
    assert auc["fewer_epochs"][0]["refused"] == 3
    assert auc["mean"] == pytest.approx(0.81)
    payload = {
        "setup": {"dataset": "d", "split": "u1", "host": "h", "split_protocol": "random",
                  "epochs": 8, "seeds": 3, "eval_rows": 4},
        "runs": [*seeded, _run(0.905, 0.745, epochs=3)],
        "summary": summary,
    }
    text = markdown(payload)
    assert "| rating RMSE | 3 | 0.9050 | +0.0050 – +0.0250 | 2/3 |" in text
    assert "| relevance AUC | 3 | 0.7450 | +0.0550 – +0.0750 | 3/3 |" in text


def _examples(ratings: list[float]) -> np.ndarray:
    return np.array([
        tf.train.Example(features=tf.train.Features(feature={
            F.RATING: tf.train.Feature(float_list=tf.train.FloatList(value=[r]))
        })).SerializeToString()
        for r in ratings
    ])


def test_example_metrics_are_tfma_rmse_and_auc_by_hand():
    """Ratings (5, 4, 2, 1): liked = rating >= 4 = (1, 1, 0, 0). Relevance (0.9, 0.4, 0.6,
    0.1): of the 4 liked/not-liked pairs the liked item scores higher in 3 (0.4 < 0.6 is
    the miss), AUC 0.75. Rating predictions (4.5, 4, 2, 2): RMSE sqrt((0.25 + 1) / 4)."""
    predicted = {
        F.OUT_RATING: tf.constant([[4.5], [4.0], [2.0], [2.0]]),
        F.OUT_RELEVANCE: tf.constant([[0.9], [0.4], [0.6], [0.1]]),
    }
    seen = []

    def serving_default(examples):
        seen.append(examples)
        return predicted

    metrics = example_metrics(serving_default, _examples([5.0, 4.0, 2.0, 1.0]))
    assert len(seen) == 1
    assert metrics["rmse"] == pytest.approx(np.sqrt(1.25 / 4))
    assert metrics["relevance_auc"] == pytest.approx(0.75, abs=1e-3)


def test_render_recomputes_the_summary_from_the_runs(tmp_path):
    """--render rebuilds the summary (e.g. after a bound changed) from the runs alone."""
    runs = [_run(0.88, 0.80), _run(0.89, 0.81), _run(0.90, 0.82), _run(0.905, 0.745, epochs=3)]
    setup = {"dataset": "d", "split": "u1", "host": "h", "split_protocol": "random",
             "epochs": 8, "seeds": 3, "eval_rows": 4}
    path = tmp_path / "gate_spread_d_u1.json"
    path.write_text(json.dumps({"setup": setup, "runs": runs, "summary": {}}))
    assert main(["--render", str(path)]) == 0
    summary = json.loads(path.read_text())["summary"]
    assert summary["rmse"]["fewer_epochs"][0]["value"] == 0.905
    assert summary["relevance_auc"]["std"] == pytest.approx(0.01)
    assert "| relevance AUC | 3 | 0.7450 |" in (tmp_path / "gate_spread_d_u1.md").read_text()


def test_the_builtin_sample_needs_no_files_and_a_missing_dataset_says_where(tmp_path):
    """`--dataset sample` (what `make run` trains) reads mtrec/data/sample; a MovieLens set
    that is not there stops with the path it looked in."""
    assert resolve(parse_args(["--dataset", "sample", "--epochs", "2"])) == (
        None, None, {"epochs": 2})
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit, match=f"ml-100k not found at {missing}"):
        resolve(parse_args(["--data", str(missing)]))
