"""`mtrec run --beam-mode`: which DirectRunner mode a run gets (pipeline/local_runner.py)."""

import pytest

from mtrec.cli import build_parser, main
from mtrec.pipeline import beam_portable, configs
from mtrec.pipeline.local_runner import beam_args, describe_beam

IN_PROCESS = ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
MULTI = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
         "--direct_num_workers=3"]


@pytest.mark.parametrize(("mode", "rows", "expected"), [
    ("auto", 40_000, IN_PROCESS),
    ("auto", configs.IN_PROCESS_MAX_ROWS - 1, IN_PROCESS),
    ("auto", configs.IN_PROCESS_MAX_ROWS, MULTI),
    ("auto", None, MULTI),  # size unknown (benchmarks/scale.py, tests): as before
    ("in_process", 10**7, IN_PROCESS),
    ("multi_processing", 10, MULTI),
])
def test_auto_runs_small_inputs_in_process(mode, rows, expected) -> None:
    assert beam_args(mode, workers=3, rows=rows) == expected


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="beam mode must be one of"):
        beam_args("threads")


def test_mtrec_run_flags_default_to_auto_and_quiet() -> None:
    parser = build_parser()
    assert parser.parse_args(["run"]).beam_mode is None  # auto (mtrec run gives it)
    assert parser.parse_args(["run"]).verbose is False
    assert parser.parse_args(["run", "--verbose"]).verbose is True
    assert parser.parse_args(["-v", "run"]).verbose is True


@pytest.mark.parametrize(("args", "says"), [
    (IN_PROCESS, "FnApiRunner, in-process"),
    (MULTI, "FnApiRunner, 3 worker processes"),
    (beam_portable.beam_args(8099), "portable runner: Beam's embedded job service, external "
     "SDK worker pool at localhost:8099, one SDK worker per job"),
])
def test_the_summary_says_what_ran_the_beam_stages(args, says) -> None:
    """Which runner ran was only in the run log: the summary's `beam` line says it."""
    assert describe_beam(args) == says


@pytest.mark.parametrize("flags", [["--workers", "4"], ["--beam-mode", "multi_processing"]])
def test_direct_runner_flags_with_the_portable_runner_are_refused(flags, tmp_path, capsys):
    """They were silently ignored (as --beam-workers was: the embedded job service runs
    one SDK worker per job whatever it asks)."""
    assert main(["run", "--home", str(tmp_path / "h"), "--beam-runner", "portable",
                 *flags]) == 2
    assert "--workers and --beam-mode set the direct runner's processes" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()
