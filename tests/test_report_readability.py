"""The run report as a new user reads it: numbers written out, each rating RMSE and AUC
said to be the heads' own or the served one, a failed or first run in its own words,
byte-reproducible pages, and `mtrec report`'s errors before any work.
"""

from __future__ import annotations

import argparse
import base64
import re
from pathlib import Path
from typing import Any

import pytest

from mtrec.commands.report import run_report
from mtrec.pipeline.mlmd_store import open_store
from mtrec.report import charts
from mtrec.report.page import render
from mtrec.report.stopped_run import error_line, not_run
from mtrec.run_state import NodeRun
from tests.report_support import capture_figures
from tests.test_report import COMPONENTS, REPORT, parse_report

SAMPLE_METRICS = {"hit_rate@10": 0.0858, "popularity_hit_rate@10": 0.0603,
                  "hit_rate@50": 0.3649, "popularity_hit_rate@50": 0.2308,
                  "ndcg@10": 0.5235, "popularity_ndcg@10": 0.1445, "precision@10": 0.4065,
                  "popularity_precision@10": 0.1270, "coverage@10": 0.49, "novelty@10": 2.5884}


def _with(**sections: Any) -> dict:
    return {**REPORT, **sections}


def _retrieval(metrics: dict, thresholds: dict | None = None) -> dict:
    retrieval = {"metrics": metrics, "thresholds": thresholds or {}, "failed": {}}
    return {**REPORT["evaluation"], "retrieval": retrieval}



@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return capture_figures(monkeypatch)

def test_headline_numbers_are_written_out_and_the_data_source_is_named(figures):
    data = {**REPORT["data"], "report": {**REPORT["data"]["report"], "source": "ml-100k/u1",
                                         "split_rule": "official"}}
    training = {**REPORT["training"], "metrics": {
        **REPORT["training"]["metrics"], "eval_interest_auc": 0.8783, "eval_rating_rmse": 0.7203,
        "eval_relevance_auc": 0.8468, "eval_rating_loss": 0.5189}}
    page = render(_with(data=data, training=training, evaluation=_retrieval(SAMPLE_METRICS)))
    assert "data ml-100k/u1 &middot;" in page  # the header
    assert "<p>data: <code>ml-100k/u1</code> (eval split: official)</p>" in page
    # Model next to popularity, in a table and on the bars.
    assert "<td>ndcg@10</td><td>0.5235</td><td>0.1445</td>" in page
    assert "<td>precision@10</td><td>0.4065</td><td>0.1270</td>" in page
    assert "<td>hit_rate@50</td><td>0.3649</td><td>0.2308</td>" in page
    assert '<td>coverage@10</td><td>0.4900</td><td><span class="muted">&mdash;' in page
    assert "<th>random order</th>" not in page  # a run from before the chance metric
    chance = render(_with(evaluation=_retrieval({**SAMPLE_METRICS, "chance_ndcg@10": 0.0214})))
    assert "<th>popularity</th><th>random order</th>" in chance
    assert "<td>ndcg@10</td><td>0.5235</td><td>0.1445</td><td>0.0214</td>" in chance
    ranking = next(ax for ax in figures if ax.get_title().startswith("served top-10"))
    assert [t.get_text() for t in ranking.texts] == ["0.523", "0.406", "0.144", "0.127"]
    # The genre AUC and the heads' rating RMSE: written out, losses left out.
    assert "<th>interest_auc</th><th>rating_rmse</th><th>relevance_auc</th>" in page
    assert "<td>0.8783</td><td>0.7203</td><td>0.8468</td>" in page
    assert "<th>rating_loss</th>" not in page


def test_each_rmse_and_auc_says_whether_it_is_the_heads_or_the_served_one():
    page = render(_with(training={**REPORT["training"], "metrics": {
        **REPORT["training"]["metrics"], "eval_rating_rmse": 0.72}}))
    assert "TFMA (eval split): the served outputs" in page
    assert "the served rating (the rating head blended with a neighbour predictor" in page
    assert "rating_rmse and rating_mae of the raw rating head" in page
    assert "one sampled pair per rated one" in page  # why the relevance AUCs differ


def test_a_first_run_says_no_baseline_and_a_skipped_gate_and_directions_in_words():
    tfma = [{"output": "rating", "metric": "root_mean_squared_error", "value": 0.68,
             "upper_bound": 1.5, "max_change": 0.01, "direction": "LOWER_IS_BETTER"}]
    evaluation = {**_retrieval(SAMPLE_METRICS, {"ndcg@10_change": -0.01,
                                                "hit_rate@10": 0.05}), "tfma": tfma}
    page = render(_with(evaluation=evaluation))
    assert "change vs baseline +0.01 (lower is better)" in page
    assert "LOWER_IS_BETTER" not in page and "not recorded" not in page.split("TFMA")[1]
    assert ('<td><span class="muted">no baseline</span></td>'
            '<td><span class="muted">no baseline</span></td>') in page
    assert ("<td>ndcg@10_change</td><td>-0.0100</td><td><span class=\"muted\">&mdash;</span>"
            "</td>") in page
    row = re.search(r"<td>ndcg@10_change</td>.*?</tr>", page)
    assert row and row.group().endswith("<td>skipped (no baseline model yet)</td></tr>")
    assert "<td>hit_rate@10</td><td>0.0500</td><td>0.0858</td>" in page
    assert re.search(r"<td>hit_rate@10</td>.*?<td>yes</td></tr>", page)


# What `mtrec run` logged when the Trainer failed (/tmp/probeA/failhome, abridged).
FAILED_LOG = """\
2026-12-07 07:30:01,000 ERROR absl: Execution 4 failed.
Traceback (most recent call last):
  File "x.py", line 1, in f
KeyError: 'an earlier run'
2026-12-07 07:39:20,348 INFO absl: MetadataStore with DB connection initialized
2026-12-07 07:39:20,363 ERROR absl: Execution 11 failed.
2026-12-07 07:39:20,363 INFO absl: Cleaning up stateless execution info.
Traceback (most recent call last):
  File "/work/main/models/towers.py", line 88, in _mlp
    raise ValueError(
ValueError: Invalid value 1.5 received for `rate`, expected a value between 0 and 1.
2026-12-07 07:39:20,384 INFO absl: MetadataStore with DB connection initialized
Traceback (most recent call last):
RuntimeError: a later, unrelated one
"""


def test_a_failed_components_error_is_read_from_the_log_by_its_execution_id():
    lines = FAILED_LOG.splitlines(keepends=True)
    assert error_line(lines, 11) == ("ValueError: Invalid value 1.5 received for `rate`, "
                                     "expected a value between 0 and 1.")
    assert error_line(lines, 4) == "KeyError: 'an earlier run'"
    assert error_line(lines, 1) is None  # "Execution 11" is not execution 1
    nodes = {"ImportExampleGen": NodeRun("ImportExampleGen", "COMPLETE", {}),
             "Trainer": NodeRun("Trainer", "FAILED", {})}
    assert not_run(nodes)[-3:] == ["RetrievalEvaluator", "Evaluator", "AtomicPusher"]
    assert "Trainer" not in not_run(nodes) and "ImportExampleGen" not in not_run(nodes)
    assert not_run({"Trainer": NodeRun("Trainer", "COMPLETE", {})}) == []  # not stopped


def test_a_failed_run_names_the_failure_and_what_did_not_run():
    failed = [*COMPONENTS[:1], {**COMPONENTS[1], "state": "FAILED"}]
    pipeline = {"components": failed, "pushed_to": None, "log": "logs/run.log",
                "not_pushed": "component failed: Trainer", "error": "ValueError: bad rate",
                "not_run": ["RetrievalEvaluator", "Evaluator", "AtomicPusher"]}
    page = render({"home": "/h", "generated": "now", "pipeline": pipeline,
                   "data": REPORT["data"]})
    assert '<p class="bad">Trainer failed: ValueError: bad rate</p>' in page
    assert "<td>Evaluator</td><td>did not run</td>" in page
    assert "traceback: <code>logs/run.log</code>" in page
    assert "training results: none, as Trainer failed." in page
    assert ("TFMA metrics: none, as Evaluator did not run (the run stopped when Trainer "
            "failed).") in page
    assert "retrieval metrics: none, as RetrievalEvaluator did not run" in page
    assert "example recommendations: none, as AtomicPusher did not run" in page
    assert "models trained before they were tracked" not in page
    assert "TFMA metrics: not recorded" not in page


def test_splits_are_listed_train_eval_catalog():
    page = render(REPORT)  # the data lists catalog first
    assert page.index("<td>train</td>") < page.index("<td>eval</td>") < page.index(
        "<td>catalog</td>")


def test_the_log_axis_of_per_task_losses_has_round_ticks_near_each_loss(figures):
    curves = {"train": {"retrieval_loss": [6.5, 6.2], "interest_loss": [0.12, 0.089],
                        "rating_loss": [0.6, 0.52]}, "validation": {}}
    render(_with(training={**REPORT["training"], "curves": curves}))
    ax = next(ax for ax in figures if ax.get_title().startswith("loss per task"))
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels == ["0.1", "0.2", "0.5", "1", "2", "5"]  # was "1e-01", "1"
    assert charts.log_ticks(0.3, 0.5) == [0.3, 0.4, 0.5]  # a narrow range: finer steps


def _svgs(page: str) -> list[bytes]:
    return [base64.b64decode(src.split(",", 1)[1]) for src, _ in parse_report(page).images]


def test_two_builds_of_a_report_differ_only_in_the_built_line():
    first = render(REPORT)
    second = render({**REPORT, "generated": "2026-12-02 00:00:00 UTC"})
    assert first.replace("2026-12-01", "2026-12-02") == second
    assert not any(b"<dc:date>" in svg for svg in _svgs(first))


def _run(home: Path, output: str | None = None) -> int:
    return run_report(argparse.Namespace(home=str(home), output=output))


def test_report_errors_say_what_is_wrong_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert _run(tmp_path / "missing") == 2
    assert capsys.readouterr().err == f"error: {tmp_path}/missing: no such folder\n"
    (tmp_path / "file").write_text("x")
    assert _run(tmp_path / "file") == 2
    err = capsys.readouterr().err
    assert "is a file, not an `mtrec run` output folder" in err and "mtrec run --home" not in err
    home = tmp_path / "home"
    home.mkdir()
    (home / "metadata.sqlite").touch()  # as tests/test_report.py makes a run's store
    open_store(str(home / "metadata.sqlite"), writable=True)
    if Path("/proc").is_dir():
        assert _run(home, "/proc/x.html") == 2
        assert capsys.readouterr().err.startswith(
            "error: --output /proc/x.html: cannot create a file in /proc (")


def test_the_pipeline_section_says_what_ran_the_beam_stages():
    """Only the run log said which Beam runner ran (the summary's `beam` line now)."""
    beam = "portable runner: Beam's embedded job service, one SDK worker per job"
    page = render(_with(pipeline={**REPORT["pipeline"], "beam": beam}))
    assert f"<p>Beam stages: {beam.replace(chr(39), '&#x27;')}</p>" in page
    assert "Beam stages" not in render(REPORT)  # a summary from before it: nothing
