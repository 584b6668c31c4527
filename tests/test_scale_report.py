"""benchmarks/scale_report.py: its tables, on hand-made results."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from scale_report import render, render_runners


def _run(runner: str, transform_s: float, rss: float, state: str = "COMPLETE") -> dict:
    return {
        "interactions": 1000, "users": 10, "items": 20, "epochs": 1, "workers": 2,
        "runner": runner, "text_encoder": False, "error": None, "cpus": 2,
        "pipeline_wall_s": transform_s + 1, "peak_rss_mb": rss,
        "load_avg_1m": {"start": 1.0, "end": 2.0},
        "stages": {
            "Transform": {"wall_s": transform_s, "peak_rss_mb": rss, "state": state},
            "SchemaGen": {"wall_s": 0.2, "peak_rss_mb": 100.0, "state": "COMPLETE"},
        },
    }


def test_each_stage_shows_both_runners_and_their_ratio():
    text = render_runners([_run("portable", 30.0, 2500.0), _run("direct", 12.0, 2000.0)])
    assert "1,000 interactions" in text and "text encoder off" in text
    assert "| Transform | 12.0 | 30.0 | 2.50 | 2,000 | 2,500 |" in text
    # Under MIN_WALL_S (start-up noise) no ratio is given.
    assert "| SchemaGen | 0.2 | 0.2 |  | 100 | 100 |" in text
    assert "overhead, not" in text  # 2 shared cores: no speed-up is claimed


def test_a_failed_stage_shows_its_state_and_the_error():
    failed = {**_run("portable", 5.0, 900.0, state="FAILED"), "error": "RuntimeError: boom"}
    text = render_runners([_run("direct", 12.0, 2000.0), failed])
    assert "**portable error:** RuntimeError: boom" in text
    assert "| Transform | 12.0 | FAILED |  | 2,000 | FAILED |" in text
    assert render_runners([]) == ""


def test_a_size_shows_the_trainers_phases_when_the_run_recorded_them():
    run = {**_run("direct", 12.0, 2000.0), "total_wall_s": 14.0,
           "trainer_phases_s": {"scan": 1.26, "fit": 1234.5, "export": 3.0}}
    text = render([run], {})
    assert "Trainer phases (its training_metrics.json): scan 1.3 s, fit 1,234.5 s, " \
        "export 3.0 s." in text
    # Results written before the field existed (or a run that failed before the
    # Trainer) render as they did.
    assert "Trainer phases" not in render([{**run, "trainer_phases_s": None}], {})
    older = {k: v for k, v in run.items() if k != "trainer_phases_s"}
    assert "Trainer phases" not in render([older], {})
