"""text_encoder.py --first-seed/--merge: seeds run later added to a committed result."""

from __future__ import annotations

import json

import pytest

import tests.transform_support  # noqa: F401  (puts benchmarks/ on sys.path)

# isort: split
from text_encoder_report import aggregate, merge_files, merged, verdicts

SETUP = {"dataset": "ml-100k", "split": "u1", "catalog": 1682, "host": "test",
         "warm": {"train_rows": 8, "eval_rows": 2, "test_users": 1},
         "cold": {"fraction": 0.1, "seed": 0, "items": 1, "rated_items": 9,
                  "removed_train_rows": 1, "test_interactions": 1, "test_users": 1}}  # fmt: skip
RANDOM = {"served_cold_hit_rate@100": 0.06}


def _payload(warm: dict, cold: dict, first_seed: int = 0) -> dict:
    return {"setup": {**SETUP, "variants": list(warm), "first_seed": first_seed},
            "config": {"model": {"epochs": 8}, "encoders": {}}, "encoders": {},
            "warm": warm, "cold": {"random": RANDOM, **cold}, "seconds": {"total": 5.0}}


def _runs(seeds: list[int], **values: list[float]) -> dict:
    runs = [{**{k: v[i] for k, v in values.items()}, "seconds": 10.0 * (i + 1), "seed": s}
            for i, s in enumerate(seeds)]  # fmt: skip
    return aggregate(runs)


def test_aggregate_is_the_mean_and_the_range_over_seeds():
    result = _runs([1, 2], rmse=[0.90, 0.88])
    assert result["rmse"] == pytest.approx(0.89)
    assert result["seconds"] == pytest.approx(15.0)
    assert result["spread"] == {"rmse": pytest.approx(0.02)}  # no spread of seconds
    assert "seed" not in result and [r["seed"] for r in result["runs"]] == [1, 2]
    assert "spread" not in aggregate(result["runs"][:1])


def test_a_committed_single_run_is_seed_0_and_gets_the_new_seeds(tmp_path):
    # The committed format before seeds were recorded: a bare mean, no runs.
    committed = _payload({"no_text": {"rmse": 0.90, "ndcg@10": 0.5, "seconds": 5.0},
                          "scratch": {"rmse": 0.95, "ndcg@10": 0.5, "seconds": 5.0}},
                         {"minilm": {"served_cold_hit_rate@100": 0.26, "seconds": 5.0}})
    cold = aggregate([{"served_cold_hit_rate@100": 0.18, "seconds": 1.0, "seed": 1}])
    warm = _runs([1, 2], rmse=[0.91, 0.86], **{"ndcg@10": [0.5, 0.5]})
    more = _payload({"no_text": warm}, {"no_text": cold},
                    first_seed=1)  # fmt: skip
    more["config"]["model"]["new_field"] = 1.0  # added since: not a different setup
    more["cold"]["random"] = {"served_cold_hit_rate@100": 0.5}
    path, more_path = tmp_path / "text_encoder_ml-100k.json", tmp_path / "more.json"
    path.write_text(json.dumps(committed))
    more_path.write_text(json.dumps(more))
    (tmp_path / "text_encoder_ml-100k_notes.md").write_text("## What was tried\n")

    assert merge_files(path, more_path) == 0
    payload = json.loads(path.read_text())
    no_text = payload["warm"]["no_text"]
    assert [r["seed"] for r in no_text["runs"]] == [0, 1, 2]
    assert no_text["rmse"] == pytest.approx(0.89)  # (0.90 + 0.91 + 0.86) / 3
    assert no_text["spread"]["rmse"] == pytest.approx(0.05)
    assert payload["warm"]["scratch"]["rmse"] == 0.95  # not in `more`: as committed
    assert payload["cold"]["no_text"]["runs"][0]["seed"] == 1  # new variant: added
    assert payload["cold"]["random"] == RANDOM  # baselines stay the committed ones
    markdown = (tmp_path / "text_encoder_ml-100k.md").read_text()
    assert "warm: no_text 0,1,2, scratch 0" in markdown
    assert markdown.endswith("## What was tried\n")  # the notes file survives re-runs


def test_a_seed_in_both_results_or_another_setup_is_refused():
    committed = _payload({"no_text": _runs([0, 1], rmse=[0.9, 0.9])}, {})
    with pytest.raises(SystemExit, match=r"warm no_text: seeds \[1\]"):
        merged(json.loads(json.dumps(committed)), _payload({"no_text": _runs([1], rmse=[1.0])}, {}))
    other = _payload({"no_text": _runs([2], rmse=[1.0])}, {})
    other["setup"]["split"] = "u2"
    other["config"]["model"] = {"epochs": 4}
    with pytest.raises(SystemExit, match=r"\['split', 'model config'\] differ"):
        merged(committed, other)


def test_verdict_pairs_the_runs_by_seed():
    """Means within the spread, but worse with text in every seed: both are said."""
    payload = _payload(
        {"no_text": _runs([0, 1, 2], rmse=[0.90, 0.91, 0.89], **{"ndcg@10": [0.5, 0.5, 0.5]}),
         "minilm": _runs([0, 1, 2], rmse=[0.905, 0.912, 0.893], **{"ndcg@10": [0.5, 0.5, 0.5]})},
        {},
    )  # fmt: skip
    payload["warm"]["scratch"] = _runs([1], rmse=[0.90], **{"ndcg@10": [0.5]})
    payload["setup"]["variants"].append("scratch")
    line, scratch = verdicts(payload)
    assert "RMSE 0.9000 -> 0.9033 (+0.0033, within the run-to-run spread" in line
    assert "same seed: +0.0033 ±0.0015, worse in 3 of 3 seeds" in line
    assert "NDCG@10 0.5000 -> 0.5000 (+0.0000, unchanged; same seed: +0.0000" in line
    # One seed of scratch: compared with no text's run of that seed, not its mean.
    assert "RMSE 0.9100 -> 0.9000 on seed 1 (-0.0100, better)" in scratch
