"""The `mtrec run` console (mtrec/console.py): progress on the terminal, noise in the log.

A real LocalDagRunner runs a two-component stand-in pipeline (seconds): this
pins the TFX log records the console turns into component lines to the TFX in
the lock. tests/test_pipeline_e2e.py checks the console around the real pipeline.
"""

import fcntl
import io
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
import warnings
from pathlib import Path

import pytest
import tensorflow as tf
from absl import logging as absl_logging
from tfx import v1 as tfx
from tfx.types.standard_artifacts import Model

from mtrec import console as console_module
from mtrec.components.text_encoder.executor import encoding_progress
from mtrec.console import RunConsole, log_path
from mtrec.progress import report
from tests.tiny_components import Train

component = tfx.dsl.components.component
InputArtifact = tfx.dsl.components.InputArtifact


@component
def Check(model: InputArtifact[Model], fail: tfx.dsl.components.Parameter[int] = 0) -> None:
    if fail:
        raise ValueError("feature 'age' is out of range")


def _pipeline(home: Path, fail: int = 0) -> tfx.dsl.Pipeline:
    train = Train().with_id("Trainer")
    check = Check(model=train.outputs["model"], fail=fail).with_id("AnomalyGate")
    return tfx.dsl.Pipeline(
        pipeline_name="console",
        pipeline_root=str(home / "pipeline_root"),
        components=[train, check],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(home / "metadata.sqlite")
        ),
    )


def _run(home: Path, fail: int = 0) -> tuple[str, str | None]:
    terminal, error = io.StringIO(), None
    with RunConsole(str(home), terminal=terminal) as console:
        try:
            tfx.orchestration.LocalDagRunner().run(_pipeline(home, fail))
        except Exception as err:
            error = console.failure(err)
    return terminal.getvalue(), error


def test_one_line_per_component_start_and_finish_and_cached_on_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Components done within START_LINE_AFTER_SECONDS get their finish line only; raised
    # so far that no loaded machine makes the Trainer slow enough for a "started" line.
    monkeypatch.setattr(console_module, "START_LINE_AFTER_SECONDS", 3600.0)
    first, error = _run(tmp_path)
    assert error is None
    lines = first.splitlines()
    assert [line.split("] ", 1)[1].split(" in ")[0] for line in lines[1:]] == [
        "Trainer done", "AnomalyGate done"]
    assert lines[0].endswith(f"library output -> {log_path(str(tmp_path))} (--verbose streams it)")

    second, _ = _run(tmp_path)
    assert "Trainer CACHED in" in second and "AnomalyGate CACHED in" in second
    # TFX's own INFO records went to the log, not the terminal.
    assert "Component Trainer is running" in Path(log_path(str(tmp_path))).read_text()


def test_a_failing_component_is_named_with_its_error_and_the_traceback_is_logged(
    tmp_path: Path,
) -> None:
    out, error = _run(tmp_path, fail=1)
    assert error == ("AnomalyGate failed with ValueError (error above, traceback in "
                     f"{log_path(str(tmp_path))})")
    assert "AnomalyGate FAILED after" in out
    assert "error in AnomalyGate: ValueError: feature 'age' is out of range" in out
    assert "Traceback" not in out
    log = Path(log_path(str(tmp_path))).read_text()
    assert "Traceback" in log and "feature 'age' is out of range" in log


def test_library_noise_from_python_cxx_and_children_goes_to_the_log(tmp_path: Path) -> None:
    terminal = io.StringIO()
    with RunConsole(str(tmp_path), terminal=terminal):
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a library deprecation", FutureWarning, stacklevel=1)
        os.write(2, b"C++ chatter on fd 2\n")
        print("a stray print")
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('worker log\\n')"],
                       check=True)
        logging.getLogger("apache_beam").warning("worker chatter")
        report("Trainer epoch 1/2: loss 1.000", done=1, total=2, label="epochs")
    out = terminal.getvalue()
    log = Path(log_path(str(tmp_path))).read_text()
    for noise in ("a library deprecation", "C++ chatter", "a stray print", "worker log",
                  "worker chatter"):
        assert noise in log and noise not in out, noise
    # Progress lines reach the terminal; no progress bar on a non-terminal.
    assert out.splitlines()[-1].endswith("] Trainer epoch 1/2: loss 1.000")
    assert "\r" not in out


def test_verbose_streams_library_output(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    with RunConsole(str(tmp_path), verbose=True, terminal=io.StringIO()):
        os.write(2, b"C++ chatter on fd 2\n")
    assert "C++ chatter" in capfd.readouterr().err


def test_the_cli_on_bad_input_prints_one_error_line_and_exits_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n")
    done = subprocess.run(
        [sys.executable, "-m", "mtrec.cli", "run", "--source", "generic", "--path", str(data),
         "--home", str(tmp_path / "home")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) <= 2, done.stderr
    assert "Traceback" not in done.stderr


def test_a_component_with_progress_shows_its_start_line_first(tmp_path: Path) -> None:
    terminal = io.StringIO()
    with RunConsole(str(tmp_path), terminal=terminal) as console:
        console.component_started("Trainer")
        report("Trainer epoch 1/1: loss 1.000", done=1, total=1, label="epochs")
        console.component_finished("Trainer")
    texts = [line.split("] ", 1)[1] for line in terminal.getvalue().splitlines()[1:]]
    assert texts[:2] == ["Trainer started", "Trainer epoch 1/1: loss 1.000"]
    assert texts[2].startswith("Trainer done in ") and len(texts) == 3


def test_text_encoder_mlm_and_encoding_steps_are_shown_at_each_quarter(tmp_path: Path) -> None:
    terminal = io.StringIO()
    with RunConsole(str(tmp_path), terminal=terminal):
        absl_logging.info("TextEncoder: vocabulary %d tokens", 270)  # log only
        absl_logging.info("TextEncoder MLM before: loss=%.4f", 5.6)
        for step in range(100, 1501, 100):  # what the default 1500 steps log
            absl_logging.info("TextEncoder MLM step %d/%d loss=%.4f", step, 1500, 3.0)
        progress = encoding_progress("item texts", 9_742)  # a large catalogue: counted
        assert progress is not None and encoding_progress("item texts", 800) is None
        for done in range(64, 9_742 + 64, 64):
            progress(min(done, 9_742), 9_742)
        absl_logging.info("TextEncoder: encoded %d items in %.1fs", 800, 4.0)
    texts = [line.split("] ", 1)[1] for line in terminal.getvalue().splitlines()[1:]]
    assert texts == ["  TextEncoder MLM before: loss=5.6000"] + [
        f"  TextEncoder MLM step {s}/1500 loss=3.0000" for s in (400, 800, 1200, 1500)
    ] + [  # each quarter again, counted afresh after the MLM's four
        f"  TextEncoder encoding item texts {d}/9742" for d in (2496, 4928, 7360, 9742)
    ] + ["  TextEncoder: encoded 800 items in 4.0s"]


def test_component_lines_survive_a_savedmodel_export(tmp_path: Path) -> None:
    # tf's AutoTrackable resets absl's logger to absl's verbosity flag on every
    # SavedModel save; the console must still see TFX's INFO records after one.
    terminal = io.StringIO()
    with RunConsole(str(tmp_path), terminal=terminal) as console:
        tf.saved_model.save(tf.Module(), str(tmp_path / "saved"))
        absl_logging.info("Component %s is running.", "Trainer")
        absl_logging.info("Component %s is finished.", "Trainer")
        assert console.running is None
    assert "] Trainer done in " in terminal.getvalue()


def test_a_node_a_gate_skipped_says_so(tmp_path: Path) -> None:
    # TFX logs a skipped node (a false Cond: the gate chain) as running, then
    # skipped, then finished; "done in 0.0s" read as if TFMA had run.
    terminal = io.StringIO()
    with RunConsole(str(tmp_path), terminal=terminal):
        for node in ("Evaluator", "AtomicPusher"):
            absl_logging.info("Component %s is running.", node)
            absl_logging.info("Skipping execution for %s", node)
            absl_logging.info("Component %s is finished.", node)
        absl_logging.info("Component %s is running.", "Next")
        absl_logging.info("Component %s is finished.", "Next")
    out = terminal.getvalue()
    assert "] Evaluator skipped (a gate before it refused the model)" in out
    assert "] AtomicPusher skipped (" in out and "done" not in out.split("Next")[0]
    assert "] Next done in " in out  # the flag does not outlive its node


def _drain(leader: int) -> bytes:
    """Everything written to the pty. One os.read returns only what the line
    discipline has passed on so far (CI once saw two lines of five), so read
    until the closed follower reports EOF (EIO on Linux)."""
    chunks = []
    try:
        while chunk := os.read(leader, 65536):
            chunks.append(chunk)
    except OSError:  # EIO: the follower side is closed and everything was read
        pass
    finally:
        os.close(leader)
    return b"".join(chunks)


def test_a_terminal_gets_a_progress_bar_and_the_lines_above_it(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    with os.fdopen(follower, "w") as terminal, RunConsole(str(tmp_path), terminal=terminal):
        for epoch in (1, 2):
            report(f"Trainer epoch {epoch}/2: loss 1.000", done=epoch, total=2,
                   label="Trainer epochs")
    out = _drain(leader).decode()
    assert "Trainer epochs:  50%" in out and "\r" in out  # the bar, redrawn in place
    assert "Trainer epoch 1/2: loss 1.000" in out and "Trainer epoch 2/2: loss 1.000" in out
