"""quality.py --merge: seeds from a second run added to a committed result."""

from __future__ import annotations

import json

import pytest

import tests.transform_support  # noqa: F401  (puts benchmarks/ on sys.path)

# isort: split
from quality import SEEDED, main
from quality_report import aggregate, merged, multitask_verdicts, summarize, target_verdicts


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


def _folds_payload(folds: list[str], rmse: float) -> dict:
    def result(ndcg: float, r50: float, rmse: float | None) -> dict:
        run = {"ndcg@10": ndcg, "recall@50": r50, "seed": 0}
        if rmse is not None:
            run["rmse"] = rmse
        return {**aggregate([run]), "runs": [run]}

    per_fold = {fold: {"results": {"joint": result(0.50, 0.52, rmse),
                                   "ease": result(0.47, 0.50, None)}} for fold in folds}
    return {"setup": {"dataset": "ml-100k"}, "folds": per_fold, "summary": summarize(per_fold)}


def test_targets_on_fewer_than_five_folds_are_labelled_a_reading_not_the_fold_mean():
    lines = target_verdicts(_folds_payload(["u1"], rmse=0.88512))
    assert lines[0] == "- NDCG@10 u1 only vs EASE + 0.02: 0.500 >= 0.490: met"
    # 0.8851 against 0.885 keeps a fourth decimal, so the miss does not read "0.000".
    assert "- RMSE u1 only: 0.8851 <= 0.8850: missed by 0.0001" in lines
    assert lines[-1] == ("- (1 of 5 folds: the targets are judged on the 5-fold mean, "
                         "quality_ml-100k_folds.md)")
    five = target_verdicts(_folds_payload(["u1", "u2", "u3", "u4", "u5"], rmse=0.87))
    assert five[0].startswith("- NDCG@10 fold mean vs EASE + 0.02")
    assert "- RMSE fold mean: 0.870 <= 0.885: met" in five
    assert not any("of 5 folds" in line for line in five)
