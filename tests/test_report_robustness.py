"""The run report on awkward data: labels that look like markup or mathtext, scripts the
default font lacks, one epoch, a killed or failed run, a home copied elsewhere.

Plots are checked on their matplotlib figures (the SVG draws text as paths, so its
labels cannot be read back from the page).
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from ml_metadata.proto import metadata_store_pb2

from mtrec.contracts import pipeline as P
from mtrec.report import charts, page_training
from mtrec.report.page import render
from mtrec.run_state import NodeRun, output_uri
from tests.report_support import capture_figures
from tests.test_report import COMPONENTS, REPORT, parse_report


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return capture_figures(monkeypatch)

def test_dollar_signs_in_genres_and_user_ids_are_drawn_as_text_not_mathtext(figures):
    """A genre `a$\\foo$b` made matplotlib's mathtext parser raise (no report at all);
    `$5 & $10` turned into italics. Labels are the data's own strings."""
    interest = {"a$\\foo$b": 0.5, "x_1^2$$": 0.3, "<b>drama</b>": 0.2}
    examples = [{**REPORT["examples"][0], "user_id": "u$1$", "interest": interest}]
    page = render({**REPORT, "examples": examples})
    parse_report(page)
    ax = figures[-1]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(interest)
    assert ax.get_title().startswith("user u$1$:")
    assert "<h3>user u$1$</h3>" in page


def test_a_script_the_font_lacks_draws_without_a_warning_per_glyph():
    """東京物語 as a genre: one UserWarning per glyph and plot flooded `mtrec run`."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        charts.genre_interest("u1", {"東京物語": 0.5, "Amélie": 0.2})


def test_every_value_axis_is_labelled_and_small_counts_are_written_out(figures):
    render(REPORT)
    by_title = {ax.get_title(): ax for ax in figures}
    genre = by_title["user u1: genre interest (top 2)"]
    assert genre.get_xlabel() == "P(engages and likes)"  # was blank: one series, no legend
    hit_rate = next(ax for t, ax in by_title.items() if t.startswith("retrieval: hit rate"))
    assert hit_rate.get_ylabel()
    assert by_title["ratings per value"].get_xlabel() == "rating"
    rejects = by_title["ratings kept and rejected by reason"]
    # A reason with 1 row next to 40,000 kept is a bar too thin to see: its count is written.
    assert [t.get_text() for t in rejects.texts] == ["10", "1", "1"]


def test_the_timeline_keeps_its_labels_inside_the_plot(figures):
    render(REPORT)
    ax = next(ax for ax in figures if ax.get_title() == "pipeline timeline")
    last = COMPONENTS[-1]
    assert ax.get_xlim()[1] > last["start_s"] + last["seconds"] + 1  # room for " 0.2s"
    assert "(" not in ax.get_xlabel()  # the colour key was cut off at the figure's edge
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ran", "cached", "failed"]


def test_one_epoch_has_one_whole_epoch_tick_and_train_and_validation_differ(figures):
    one = {"train": {"loss": [2.0], "rating_loss": [1.0]},
           "validation": {"loss": [2.5], "rating_loss": [1.2], "rating_rmse": [1.1]}}
    render({**REPORT, "training": {**REPORT["training"], "curves": one}})
    loss = next(ax for ax in figures if ax.get_title().startswith("loss per epoch"))
    assert list(loss.get_xticks()) == [1]  # not 0.96, 0.98, ... under a single point
    train, val = loss.get_lines()
    assert train.get_color() == val.get_color() and train.get_marker() != val.get_marker()


def test_per_task_losses_leave_out_the_total_and_regularization_losses(figures):
    curves = {"train": {"loss": [2.0, 1.5], "rating_loss": [1.0, 0.9],
                        "total_loss": [2.1, 1.6], "regularization_loss": [0.1, 0.1]},
              "validation": {"loss": [2.5, 2.0], "rating_loss": [1.2, 1.1],
                             "total_loss": [2.6, 2.1]}}
    render({**REPORT, "training": {**REPORT["training"], "curves": curves}})
    ax = next(ax for ax in figures if ax.get_title().startswith("loss per task"))
    assert [line.get_label() for line in ax.get_lines()] == ["train rating", "validation rating"]


def test_counts_have_thousands_separators_and_tfma_example_count_is_whole():
    data = {**REPORT["data"], "report": {"n_users": 600, "n_items": 797,
                                         "rows": {"train": 32020, "eval": 7980}}}
    tfma = [{"output": "rating", "metric": "example_count", "value": 7980.0},
            *REPORT["evaluation"]["tfma"]]
    page = render({**REPORT, "data": data, "evaluation": {**REPORT["evaluation"],
                                                          "tfma": tfma}})
    assert "<td>32,020</td>" in page and "<td>7,980</td>" in page
    assert "7980.0000" not in page
    assert "<td>1.0000</td>" in page  # RMSE keeps its decimals


def test_a_killed_component_is_not_finished_and_a_failed_run_points_to_its_log():
    killed = [*COMPONENTS[:2], {"id": "Evaluator", "state": "RUNNING", "cached": False,
                                "start_s": 31.0, "seconds": 0.0}]
    page = render({**REPORT, "pipeline": {"components": killed, "pushed_to": None,
                                          "not_pushed": "the run stopped before the Pusher"}})
    assert "<td>RUNNING</td><td>no</td><td>not finished</td>" in page
    failed = [*COMPONENTS[:1], {**COMPONENTS[1], "state": "FAILED"}]
    page = render({**REPORT, "pipeline": {"components": failed, "pushed_to": None,
                                          "not_pushed": "component failed: Trainer",
                                          "log": "logs/run.log"}})
    assert "traceback: <code>logs/run.log</code>" in page


def test_no_baseline_does_not_call_an_unblessed_run_blessed():
    tfma = [{"output": "relevance", "metric": "auc", "value": 0.51, "lower_bound": 0.55}]
    page = render({**REPORT, "evaluation": {**REPORT["evaluation"], "tfma": tfma,
                                            "tfma_blessed": False}})
    assert "first blessed run" not in page and "no earlier run was blessed" in page


def _artifact(uri: str, **strings: str) -> metadata_store_pb2.Artifact:
    artifact = metadata_store_pb2.Artifact(uri=uri)
    for name, value in strings.items():
        artifact.custom_properties[name].string_value = value
    return artifact


def test_a_copied_home_reads_its_own_artifacts_not_the_original_ones(tmp_path: Path):
    """ML Metadata keeps absolute URIs: a home moved elsewhere read the old paths (TFMA's
    reader failed with an AssertionError) and named the old pushed model."""
    from mtrec.pipeline.home_paths import LocalPaths
    from mtrec.report.collect import rebase, rebase_nodes, recorded_home

    old, new = "/runs/a", str(tmp_path / "b")
    nodes = {
        P.TRAINER: NodeRun(P.TRAINER, "COMPLETE", {
            P.MODEL_RUN: [_artifact(f"{old}/pipeline_root/Trainer/model_run/7")]}),
        P.PUSHER: NodeRun(P.PUSHER, "COMPLETE", {P.PUSHED_MODEL: [_artifact(
            f"{old}/pipeline_root/Pusher/pushed_model/9",
            **{P.PUSHED_DESTINATION: f"{old}/serving_model/mtrec/123"})]}),
        "Other": NodeRun("Other", "COMPLETE", {"x": [_artifact("/elsewhere/file")]}),
    }
    assert recorded_home(nodes, LocalPaths(new)) == old
    rebase_nodes(nodes, old, new)
    assert nodes[P.TRAINER].outputs[P.MODEL_RUN][0].uri == (
        f"{new}/pipeline_root/Trainer/model_run/7")
    pushed = nodes[P.PUSHER].outputs[P.PUSHED_MODEL][0]
    assert pushed.custom_properties[P.PUSHED_DESTINATION].string_value == (
        f"{new}/serving_model/mtrec/123")
    assert nodes["Other"].outputs["x"][0].uri == "/elsewhere/file"  # not under the home
    assert rebase(f"{old}/rejects.csv", old, new) == os.path.join(new, "rejects.csv")
    assert rebase("/runs/ab/rejects.csv", old, new) == "/runs/ab/rejects.csv"


def test_output_uri_is_the_first_output_or_none():
    """The summary and the report find artifacts by node and key through one helper."""
    node = NodeRun(P.TRAINER, "COMPLETE", {
        P.MODEL_RUN: [_artifact("/a/model_run/7"), _artifact("/a/model_run/8")],
        P.MODEL: []})
    assert output_uri(node, P.MODEL_RUN) == "/a/model_run/7"
    assert output_uri(node, P.MODEL) is None  # the key, with no artifact
    assert output_uri(node, P.EXAMPLES) is None
    assert output_uri(None, P.MODEL_RUN) is None  # the node did not run


def test_report_on_a_home_whose_metadata_records_no_run_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A home killed before its first component registered: a message, exit 2, no page."""
    from ml_metadata import metadata_store

    from mtrec.commands.report import run_report

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "metadata.sqlite")
    metadata_store.MetadataStore(config)
    assert run_report(argparse.Namespace(home=str(tmp_path), output=None)) == 2
    assert "records no pipeline run" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


def test_per_task_losses_of_different_scales_share_a_log_axis_unless_one_is_zero(figures):
    curves = {"train": {"loss": [7.0, 6.5], "retrieval_loss": [6.0, 5.8],
                        "interest_loss": [0.3, 0.1]},
              "validation": {"loss": [7.5, 7.0]}}
    render({**REPORT, "training": {**REPORT["training"], "curves": curves}})
    ax = next(ax for ax in figures if ax.get_title().startswith("loss per task"))
    assert ax.get_yscale() == "log" and "log scale" in ax.get_ylabel()
    ax.figure.canvas.draw()
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert "1" in labels and not any("$" in label for label in labels)  # not "$10^{0}$"
    figures.clear()
    curves["train"]["interest_loss"] = [0.3, 0.0]  # a log axis cannot draw 0
    render({**REPORT, "training": {**REPORT["training"], "curves": curves}})
    ax = next(ax for ax in figures if ax.get_title().startswith("loss per task"))
    assert ax.get_yscale() == "linear"


def test_a_validation_metric_worse_at_the_end_than_at_its_best_is_pointed_out():
    val = {"rating_rmse": [0.90, 0.857, 0.88, 0.953], "relevance_auc": [0.70, 0.767, 0.738],
           "interest_auc": [0.80, 0.85, 0.849], "loss": [7.5, 8.0, 9.2],
           "regularization_loss": [0.04, 0.05, 0.06]}
    notes = page_training.worse_at_the_end(val)
    assert notes == [
        "validation rating_rmse was best at epoch 2 (0.8570) and ends at 0.9530 (epoch 4)",
        "validation relevance_auc was best at epoch 2 (0.7670) and ends at 0.7380 (epoch 3)",
        "validation loss was best at epoch 1 (7.5000) and ends at 9.2000 (epoch 3)",
    ]  # interest_auc's 0.849 against 0.85 is within the slack
    curves = {"train": {"loss": [7.0, 6.0, 5.0]}, "validation": val}
    html = render({**REPORT, "training": {**REPORT["training"], "curves": curves}})
    assert "run again with --epochs N" in html
    assert "--epochs N" not in render(REPORT)


def test_a_task_left_out_has_no_weight_bar_and_no_genres_no_interest_plot(figures):
    """Data without genres: the run drops the interest task; the chart still drew its
    0.2 weight, and the example users' interest plot showed tf.Transform's placeholder."""
    config = {"loss_weights": {"retrieval": 1.0, "rating": 0.5, "interest": 0.2},
              "tasks": ["retrieval", "rating"]}
    examples = [{**REPORT["examples"][0], "interest": {}}]
    html = render({**REPORT, "training": {**REPORT["training"], "config": config},
                   "examples": examples})
    weights = next(ax for ax in figures if ax.get_title() == "loss weight per task")
    assert [t.get_text() for t in weights.get_xticklabels()] == ["retrieval", "rating"]
    assert not any(ax.get_title().startswith("user u1: genre interest") for ax in figures)
    assert "genre interest: none (the items have no genres, or one" in html
