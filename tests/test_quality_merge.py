"""quality.py --merge: seeds from a second run added to a committed result."""

from __future__ import annotations

import json

import pytest

import tests.transform_support  # noqa: F401  (puts benchmarks/ on sys.path)

# isort: split
from quality import SEEDED, main
from quality_report import aggregate, merged, multitask_verdicts


def _payload(seeds: list[int], ndcg: list[float]) -> dict:
    runs = [{"ndcg@10": v, "seed": s} for s, v in zip(seeds, ndcg, strict=True)]
    popularity = [{"ndcg@10": 0.3, "seed": 0}]
    results = {
        "popularity": {**aggregate(popularity), "runs": popularity},
        "joint": {**aggregate(runs), "runs": runs},
    }
    return {"setup": {"seeds": f"{len(seeds)} on u1"}, "config": {},
            "folds": {"u1": {"results": results}}}


def test_runs_are_appended_and_the_seed_statistics_recomputed():
    payload = merged(_payload([0, 1], [0.50, 0.52]), _payload([2], [0.57]), SEEDED)
    joint = payload["folds"]["u1"]["results"]["joint"]
    assert [r["seed"] for r in joint["runs"]] == [0, 1, 2]
    assert joint["n"] == 3
    assert joint["mean"]["ndcg@10"] == pytest.approx(0.53)  # (0.50 + 0.52 + 0.57) / 3
    assert joint["std"]["ndcg@10"] == pytest.approx(0.036055, abs=1e-6)  # ddof 1
    # The unseeded baseline keeps the first result's single run.
    assert len(payload["folds"]["u1"]["results"]["popularity"]["runs"]) == 1
    assert payload["summary"]["joint"]["mean"]["ndcg@10"] == pytest.approx(0.53)
    assert "seeds 0, 1, 2 on u1 (joint)" in payload["setup"]["seeds"]


def test_a_seed_in_both_results_is_refused():
    with pytest.raises(SystemExit, match="seeds \\[1\\]"):
        merged(_payload([0, 1], [0.5, 0.5]), _payload([1], [0.6]), SEEDED)


def test_dropped_variants_keep_only_the_new_runs():
    payload = merged(_payload([0, 1], [0.50, 0.52]), _payload([2], [0.57]), SEEDED, drop=("joint",))
    joint = payload["folds"]["u1"]["results"]["joint"]
    assert [r["seed"] for r in joint["runs"]] == [2]
    assert joint["mean"]["ndcg@10"] == pytest.approx(0.57)


def test_a_code_note_is_kept_in_the_json_and_shown_in_the_markdown(tmp_path):
    path = tmp_path / "quality_ml-100k_u1.json"
    payload = _payload([0], [0.5])
    payload["setup"].update(dataset="ml-100k", host="test", folds=["u1"])
    payload["folds"]["u1"]["setup"] = {"train_rows": 8, "eval_rows": 2, "catalog": 3,
                                       "test_users": 1, "split_rule": "official"}
    payload["summary"] = payload["folds"]["u1"]["results"]
    path.write_text(json.dumps(payload))
    assert main(["--render", str(path), "--note", "RMSE rows predate clipping"]) == 0
    assert json.loads(path.read_text())["setup"]["code_note"] == "RMSE rows predate clipping"
    assert "**Code note:** RMSE rows predate clipping" in path.with_suffix(".md").read_text()


def test_a_run_without_single_task_variants_says_where_they_are_compared():
    payload = _payload([0], [0.5])
    payload["setup"]["dataset"] = "ml-100k"
    payload["summary"] = {"joint": {"mean": {"ndcg@10": 0.5}}}
    assert multitask_verdicts(payload) == [
        "- no single-task variant in this run: quality_ml-100k_u1.md compares them on ML-100K's u1"]
