"""`mtrec run --beam-mode`: which DirectRunner mode a run gets (pipeline/local_runner.py)."""

import pytest

from mtrec.cli import build_parser
from mtrec.pipeline import configs
from mtrec.pipeline.local_runner import beam_args

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
    assert parser.parse_args(["run"]).beam_mode == "auto"
    assert parser.parse_args(["run"]).verbose is False
    assert parser.parse_args(["run", "--verbose"]).verbose is True
    assert parser.parse_args(["-v", "run"]).verbose is True
