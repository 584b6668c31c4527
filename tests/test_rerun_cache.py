"""Re-runs on the pipeline's evaluation topology (README): the cache and the baseline.

On the stand-in pipeline of tests/gated_pipeline.py, several runs in seconds
(tests/test_pipeline_e2e.py checks the second run of the real pipeline).
"""

from pathlib import Path

from mtrec.run_state import latest_pushed_run, latest_run
from tests.gated_pipeline import run_gated as _run


def _baseline_id(tmp: Path, gate: str = "Evaluator") -> int:
    blessing = latest_run(str(tmp / "metadata.sqlite"))[gate].outputs["blessing"][0]
    return blessing.custom_properties["baseline_model_id"].int_value


def _model_id(tmp: Path) -> int:
    return latest_run(str(tmp / "metadata.sqlite"))["Trainer"].outputs["model"][0].id


def _served_model_id(tmp: Path) -> int:
    return latest_pushed_run(str(tmp / "metadata.sqlite"))["Trainer"].outputs["model"][0].id


def test_second_run_re_evaluates_against_the_first_model_third_run_is_all_cached(
    tmp_path: Path,
) -> None:
    first = _run(tmp_path)
    assert set(first.values()) == {"COMPLETE"}
    assert _baseline_id(tmp_path) == 0  # no blessed model yet: no baseline

    second = _run(tmp_path)
    # The resolver now finds the first run's blessed model: both evaluators'
    # inputs changed (a baseline, which is the same model), so they run again,
    # and the Pusher, whose inputs include their new blessings, runs again too.
    assert second == {"Trainer": "CACHED", "RetrievalEvaluator": "COMPLETE",
                      "Evaluator": "COMPLETE", "AtomicPusher": "COMPLETE"}
    assert _baseline_id(tmp_path) == _model_id(tmp_path)

    third = _run(tmp_path)
    assert set(third.values()) == {"CACHED"}


def test_a_model_the_retrieval_gate_refused_never_becomes_the_baseline(tmp_path: Path) -> None:
    """The baseline is the model that was pushed, not a newer one that only one
    gate passed: a regression from the served model must not pass the change
    thresholds by comparing against a worse, unpushed model."""
    _run(tmp_path, version=1)
    pushed = _model_id(tmp_path)

    refused = _run(tmp_path, version=2, retrieval_bless=0)
    assert refused["RetrievalEvaluator"] == "COMPLETE"
    assert "Evaluator" not in refused and "AtomicPusher" not in refused  # skipped
    assert _baseline_id(tmp_path, "RetrievalEvaluator") == pushed
    assert _served_model_id(tmp_path) == pushed  # what `mtrec add-items` re-indexes

    third = _run(tmp_path, version=3)
    assert set(third.values()) == {"COMPLETE"}
    assert _model_id(tmp_path) not in (pushed, 0)
    assert _baseline_id(tmp_path, "RetrievalEvaluator") == pushed
    assert _baseline_id(tmp_path) == pushed
    assert _served_model_id(tmp_path) == _model_id(tmp_path)
