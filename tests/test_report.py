"""The run report page: every section and plot, offline, and it renders in a real browser.

The page is built from hand-made data of collect.py's shape (milliseconds);
tests/test_pipeline_e2e.py builds one from a real run's ML Metadata.
"""

from __future__ import annotations

import base64
import html.parser
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mtrec.cli import main
from mtrec.pipeline.mlmd_store import open_store
from mtrec.pipeline.output_paths import unwritable
from mtrec.report import write_report
from mtrec.report.markup import NOT_RECORDED
from mtrec.report.page import SECTIONS, render
from mtrec.summary import not_pushed_reason
from mtrec.summary import render as render_summary
from mtrec.tfma_results import tfma_failures

CHROMIUM = "/usr/bin/chromium"
COMPONENTS = [
    {"id": "ImportExampleGen", "state": "CACHED", "cached": True, "start_s": 0.0, "seconds": 0.1},
    {"id": "Trainer", "state": "COMPLETE", "cached": False, "start_s": 0.2, "seconds": 30.5},
    {"id": "AtomicPusher", "state": "COMPLETE", "cached": False, "start_s": 31.0, "seconds": 0.2},
]
REPORT = {
    "home": "/tmp/home", "generated": "2026-12-01 00:00:00 UTC",
    "data": {
        "counts": {"total": 12, "kept": 10, "rejected": 2, "bad_rating": 1, "duplicate": 1},
        "rejects_path": "/tmp/home/rejects.csv",
        "report": {"n_users": 3, "n_items": 4, "rows": {"train": 8, "eval": 2, "catalog": 4}},
        "tables": {"ratings": {"rows": 12, "kept": 10, "rejected": 2, "duplicate": 1}},
        "rating_histogram": {"train": {"1": 2, "5": 6}, "eval": {"4": 2}},
        "anomalies": {"train": ["age: out of range"], "eval": []},
    },
    "pipeline": {"components": COMPONENTS, "pushed_to": "/tmp/home/serving_model/mtrec/1",
                 "not_pushed": None},
    "training": {
        "metrics": {"train_examples": 8, "epochs": 2, "optimizer": "adam",
                    "train_seconds": 3.0, "catalog_size": 4, "like_calibration": [0.0, 1.25, -4.5],
                    "phase_seconds": {"scan": 0.5, "build": 0.25, "fit": 2.5, "evaluate": 0.5,
                                      "export": 1.25}},
        "curves": {"train": {"loss": [2.0, 1.5], "rating_rmse": [0.0, 0.0],
                             "retrieval_loss": [3.0, 2.5], "rating_loss": [1.2, 0.9]},
                   "validation": {"loss": [2.2, 1.9], "rating_rmse": [1.1, 1.0],
                                  "ranking_auc": [0.6, 0.7]}},
        "config": {"loss_weights": {"retrieval": 1.0, "rating": 0.5}, "tasks": ["retrieval"],
                   "uncertainty_weighting": False, "optimizer": "adam", "epochs": 2},
    },
    "evaluation": {
        "tfma": [{"output": "rating", "metric": "root_mean_squared_error", "value": 1.0,
                  "upper_bound": 1.5, "max_change": 0.05, "direction": "LOWER_IS_BETTER",
                  "baseline": 1.02, "diff": -0.02}],
        "tfma_blessed": True, "tfma_verdict": "blessed: every TFMA threshold passed",
        "retrieval": {"metrics": {"hit_rate@10": 0.2, "popularity_hit_rate@10": 0.1,
                                  "ndcg@10": 0.3, "popularity_ndcg@10": 0.2,
                                  "precision@10": 0.25},
                      "thresholds": {"hit_rate@10": 0.05, "ndcg@10_change": -0.01},
                      "failed": {}},
        "retrieval_blessed": True,
    },
    "text_encoder": {"mode": "pretrain", "params": 1000, "embedding_dim": 8, "num_items": 4,
                     "config": {"hidden_dim": 8, "learning_rate": None},
                     "mlm": {"steps": 10, "seconds": 1.0, "loss_before": 5.0, "loss_after": 3.0},
                     "seconds": {"encode": 0.5}},
    "examples": [{"user_id": "u1", "interest": {"drama": 0.6, "comedy": 0.2},
                  "items": [{"item_id": "i1", "title": "A <b> title", "score": 1.5,
                             "rating": 4.2}]}],
}
# One plot per: rejects, rating histogram, timeline, loss, per-task loss, per-task
# validation, loss weights, HR@K vs popularity, ranking vs popularity, MLM loss, one
# user's genre interest.
PLOTS = 11


class _Page(html.parser.HTMLParser):
    """Sections (id -> heading) and images (src, alt) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.images: list[tuple[str, str]] = []
        self.tags: set[str] = set()
        self._section: str | None = None
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self._section = a["id"]
        elif tag == "h2":
            self._in_h2 = True
        elif tag == "img":
            self.images.append((a["src"], a.get("alt", "")))

    def handle_endtag(self, tag):
        self._in_h2 = self._in_h2 and tag != "h2"

    def handle_data(self, data):
        if self._in_h2 and self._section:
            self.sections[self._section] = data


def parse_report(page: str) -> _Page:
    """Parse a report; assert it is offline and every image is a decodable SVG."""
    parsed = _Page()
    parsed.feed(page)
    assert list(parsed.sections) == list(SECTIONS)
    assert "script" not in parsed.tags and "link" not in parsed.tags  # no CDN, no JS
    for src, alt in parsed.images:
        assert src.startswith("data:image/svg+xml;base64,"), alt
        svg = ET.fromstring(base64.b64decode(src.split(",", 1)[1]))
        assert svg.tag.endswith("svg") and alt, alt
    return parsed


def test_every_section_and_plot_is_in_the_page_and_text_is_escaped():
    page = render(REPORT)
    parsed = parse_report(page)
    assert len(parsed.images) == PLOTS
    assert "A &lt;b&gt; title" in page and "A <b> title" not in page
    assert "age: out of range" in page
    assert "&le; 1.5" in page and "+0.05" in page  # the RMSE bound and its change threshold
    assert "pushed: /tmp/home/serving_model/mtrec/1<" in page
    again = render({**REPORT, "pipeline": {**REPORT["pipeline"], "already_served": True}})
    assert "pushed: /tmp/home/serving_model/mtrec/1 (already served: no new version)" in again
    assert "skipped (no baseline model yet)" in page  # ndcg@10_change without a baseline
    assert "rating_rmse" not in _alts(parsed, "loss")  # all-zero train metrics are left out
    assert "per-task loss curves" in _alts(parsed, "per-task")
    assert "1,000" in page and "MLM steps" in page  # the scratch encoder's parameters, its MLM
    assert "<td>fit 2.5s + 2.5s scan, build, evaluate, export</td>" in page  # as the summary
    assert "<td>rating 1.250, shift -4.500</td>" in page  # the reported P(like)'s fit


def test_the_training_table_says_when_p_like_is_the_heads_own():
    def shown(fit):
        training = {**REPORT["training"], "metrics": {**REPORT["training"]["metrics"],
                                                      "like_calibration": fit}}
        return render({**REPORT, "training": training})

    assert "<td>none (the head&#x27;s own probability)</td>" in shown([1.0, 0.0, 0.0])
    assert "<td>logit 0.800, shift -1.000</td>" in shown([0.8, 0.0, -1.0])  # no rating head
    # Runs before 2026-12-07 recorded the logit's Platt fit as [scale, shift].
    assert "<td>logit 1.250, shift +0.500</td>" in shown([1.25, 0.5])
    assert "<td>none (the head&#x27;s own probability)</td>" in shown([1.0, 0.0])
    assert f'<td><span class="muted">{NOT_RECORDED}</span></td>' in shown(None)  # older runs


def test_a_frozen_encoder_shows_its_name_and_no_masked_lm():
    frozen = {**REPORT, "text_encoder": {
        "mode": "pretrained", "name": "sentence-transformers/all-MiniLM-L6-v2",
        "params": 22713216, "embedding_dim": 384, "num_items": 800, "encode_cached": True,
        "config": {"mode": "pretrained", "sequence_length": 40},
        "mlm": {"steps": 0, "loss_before": None}, "seconds": {"encode": 3.3}}}
    page = render(frozen)
    assert len(parse_report(page).images) == PLOTS - 1  # no MLM plot
    assert "sentence-transformers/all-MiniLM-L6-v2" in page and "22,713,216" in page
    assert "3.30 (cached)" in page and "trains no masked-LM steps" in page
    assert "MLM steps" not in page and "hidden_dim" not in page


def test_the_data_table_says_rated_items_are_a_part_of_the_catalogue():
    """n_items counts the items the kept ratings name (797 on the sample), not the
    catalogue (800): next to the ingest counts, a bare "items 797" read as items lost."""
    data = {**REPORT["data"], "report": {**REPORT["data"]["report"], "n_items": 3},
            "tables": {**REPORT["data"]["tables"],
                       "users": {"rows": 5, "kept": 5, "rejected": 0, "duplicate": 0}}}
    page = render({**REPORT, "data": data})
    assert "<th>items with ratings</th>" in page and "<th>users with ratings</th>" in page
    assert "3 of 4 in the catalogue" in page and "3 of 5 in the users table" in page


def test_the_data_section_shows_how_a_file_was_read():
    note = "items.csv is not UTF-8: read as Windows-1252"
    page = render({**REPORT, "data": {**REPORT["data"], "notes": [note]}})
    assert f"<p>note: {note}</p>" in page
    assert "note: items.csv" not in render(REPORT)


def test_report_output_in_a_missing_folder_creates_it_and_leaves_no_tmp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`mtrec report HOME --output new/dir/r.html` creates the folders; the page is
    still written to a .tmp file and renamed, so none is left behind."""
    monkeypatch.setattr("mtrec.report.collect.collect", lambda home: REPORT)
    output = tmp_path / "x" / "y" / "r.html"
    assert write_report(str(tmp_path / "home"), str(output)) == str(output)
    parse_report(output.read_text(encoding="utf-8"))
    assert os.listdir(output.parent) == ["r.html"]


def test_report_output_into_an_existing_folder_writes_report_html_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`--output DIR` ended in IsADirectoryError (the .tmp renamed onto the folder), and
    left DIR.tmp behind."""
    monkeypatch.setattr("mtrec.report.collect.collect", lambda home: REPORT)
    folder = tmp_path / "reports"
    folder.mkdir()
    assert write_report(str(tmp_path / "home"), str(folder)) == str(folder / "report.html")
    parse_report((folder / "report.html").read_text(encoding="utf-8"))
    assert sorted(os.listdir(tmp_path)) == ["reports"] and os.listdir(folder) == ["report.html"]


def test_report_output_naming_a_new_folder_writes_report_html_in_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`--output reports/new/` (a trailing slash, the folder missing) said "No such file
    or directory: 'reports/new/.tmp'"."""
    monkeypatch.setattr("mtrec.report.collect.collect", lambda home: REPORT)
    folder = tmp_path / "reports" / "new"
    assert write_report(str(tmp_path / "home"), f"{folder}/") == f"{folder}/report.html"
    assert os.listdir(folder) == ["report.html"]


def test_report_output_under_a_file_is_one_error_line_before_the_page_is_built(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """It was FileExistsError's traceback, after the page was built."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "metadata.sqlite").touch()
    open_store(str(home / "metadata.sqlite"), writable=True)
    page = home / "report.html"
    page.write_text("an earlier page")
    for output in (page / "x", page / "x" / "r.html"):
        assert unwritable("--output", str(output)) == (
            f"--output {output}: {page} is a file, so no folder can be made under it")
        assert main(["report", str(home), "--output", str(output)]) == 2
        assert capsys.readouterr().err == (
            f"error: --output {output}: {page} is a file, so no folder can be made under it\n")
    assert page.read_text() == "an earlier page"
    assert unwritable("--output", str(tmp_path / "new" / "r.html")) is None


def _alts(parsed: _Page, word: str) -> str:
    return " ".join(alt for _, alt in parsed.images if word in alt)


def test_missing_values_say_not_recorded_and_why_nothing_was_pushed():
    bare = {"home": "/h", "generated": "now",
            "pipeline": {"components": COMPONENTS, "pushed_to": None,
                         "not_pushed": "TFMA did not bless the model"}}
    page = render(bare)
    parsed = parse_report(page)
    assert len(parsed.images) == 1  # the timeline only
    assert page.count(NOT_RECORDED) >= 8
    assert "nothing pushed: TFMA did not bless the model" in page
    assert "No text encoder in this run (or nothing recorded)" in page
    data = {**REPORT["data"], "report": {**REPORT["data"]["report"], "n_items_with_text": 0}}
    assert ("No text encoder in this run: no item has a title, genres, a year or a "
            "description") in render({**bare, "data": data})  # mtrec run left it out


def test_a_model_the_retrieval_gate_refused_says_tfma_did_not_run_and_why():
    """TFMA runs only on models the retrieval gate passed (pipeline.py): the
    page, the not-pushed reason and the terminal summary say so."""
    failed = {"ndcg@10_lift": (0.01, 0.05)}
    retrieval = REPORT["evaluation"]["retrieval"]
    metrics = {**retrieval["metrics"], "ndcg@10_lift": 0.01, "ndcg@10_lift_stderr": 0.125,
               "eval_users": 8}
    evaluation = {"tfma": [], "tfma_blessed": None, "tfma_verdict": None,
                  "retrieval": {**retrieval, "metrics": metrics, "failed": failed,
                                "thresholds": {"hit_rate@10": 0.05, "ndcg@10_lift": 0.05}},
                  "retrieval_blessed": False}
    summary = {"components": {}, "pushed_to": None, "tfma_blessed": None,
               "retrieval_blessed": False, "retrieval": evaluation["retrieval"]}
    reason = not_pushed_reason(summary, {})
    assert reason.startswith("the retrieval gate refused the model (TFMA did not run)")
    page = render({**REPORT, "evaluation": evaluation,
                   "pipeline": {**REPORT["pipeline"], "pushed_to": None, "not_pushed": reason}})
    assert "TFMA did not run" in page and "retrieval gate failed: ndcg@10_lift" in page
    # The gate table: each bound's standard error over the eval users (HR@K has none).
    assert "<th>standard error (8 eval users)</th>" in page
    assert ("<td>ndcg@10_lift</td><td>0.0500</td><td>0.0100</td><td>0.1250</td><td>no</td>"
            in page)
    assert '<td>hit_rate@10</td><td>0.0500</td><td>0.2000</td><td><span class="muted">–' in page
    assert "nothing pushed: the retrieval gate refused the model" in page
    lines = render_summary(summary).splitlines()
    assert "blessed: TFMA=not run (retrieval gate refused) retrieval=False" in lines
    assert "blessed: TFMA=False retrieval=True" in render_summary(
        {**summary, "tfma_blessed": False, "retrieval_blessed": True}).splitlines()
    # A run that stopped before either gate printed Python's "None" for both.
    stopped = {k: v for k, v in summary.items() if k not in ("tfma_blessed", "retrieval_blessed")}
    assert "blessed: TFMA=not run retrieval=not run" in render_summary(stopped).splitlines()


def test_implicit_feedback_says_why_tfma_bounds_only_the_example_count():
    note = "Every rating is the same value (implicit feedback)"
    assert note not in render(REPORT)
    implicit = {**REPORT["evaluation"], "implicit_feedback": True}
    assert note in render({**REPORT, "evaluation": implicit})


def test_each_failed_tfma_threshold_is_named_with_its_value_and_bound(tmp_path: Path):
    """TFMA writes no message for a failed change threshold; the summary and
    the report name the metric, the measured value and the bound. The proto
    is what TFMA wrote on ML-100K u1 for a model 0.026 worse than the pushed one."""
    import tensorflow as tf
    import tensorflow_model_analysis as tfma
    from google.protobuf import text_format

    result = text_format.Parse("""
        validation_ok: false
        metric_validations_per_slice { slice_key {} failures {
          metric_key { name: "root_mean_squared_error" output_name: "rating"
                       model_name: "candidate" is_diff: true }
          metric_threshold { change_threshold { absolute { value: 0.01 }
                                                direction: LOWER_IS_BETTER } }
          metric_value { double_value { value: 0.025937 } } } }
        metric_validations_per_slice { slice_key {} failures {
          metric_key { name: "auc" output_name: "relevance" model_name: "candidate" }
          metric_threshold { value_threshold { lower_bound { value: 0.8 } } }
          metric_value { double_value { value: 0.7576 } } } }
    """, tfma.ValidationResult())
    with tf.io.TFRecordWriter(str(tmp_path / "validations.tfrecord")) as writer:
        writer.write(result.SerializeToString())
    failures = tfma_failures(str(tmp_path))
    assert failures == ["rating RMSE change +0.0259 > +0.01",
                        "relevance AUC (like vs not) 0.7576 < 0.8"]
    summary = {"components": {}, "pushed_to": None, "tfma_blessed": False,
               "tfma_failed": failures, "retrieval_blessed": True}
    assert "TFMA gate failed: rating RMSE change +0.0259 > +0.01, relevance AUC" in (
        render_summary(summary))
    assert not_pushed_reason(summary, {}) == (
        "TFMA did not bless the model (rating RMSE change +0.0259 > +0.01, "
        "relevance AUC (like vs not) 0.7576 < 0.8)")


@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason=f"{CHROMIUM} not installed (Debian: apt-get install chromium)")
def test_headless_chromium_renders_the_report_without_console_errors(tmp_path: Path):
    page = tmp_path / "report.html"
    page.write_text(render(REPORT), encoding="utf-8")
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", f"--screenshot={shot}", "--window-size=1000,3000", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
